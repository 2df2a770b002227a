"""Session-wide fixtures and the reliability count.

The local AWS stack starts once per test run and stops at the end; the product on top of it
(gateway, internal API, batch event source) starts the first time a test asks for it.

Tests marked ``bad_input(boundary)`` or ``fault(scenario)`` are counted at the end of the run, so
every ``make test`` says how many bad inputs and fault scenarios it tried, and how many held.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from scripts import samples
from scripts.local_stack import LocalStack, StackInfo, product


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackInfo]:
    """A running local stack in a private state directory (never the developer's own stack)."""
    local_stack = LocalStack(tmp_path_factory.mktemp("local-stack"))
    try:
        yield local_stack.up()
    finally:
        local_stack.down()


@pytest.fixture(scope="session")
def running_product(stack: StackInfo) -> product.ProductInfo:
    """The whole product on the session's stack; it stops with the stack."""
    return product.up(stack)


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Sample inputs made once: short, long (more than one clip) and a second voice."""
    directory = tmp_path_factory.mktemp("media")
    samples.write_speech_wav(directory / "short.wav", duration_s=2.0, seed=1)
    samples.write_speech_wav(directory / "second.wav", duration_s=2.0, seed=2)
    samples.write_speech_wav(directory / "long.wav", duration_s=7.0, seed=3)
    samples.draw_portrait(directory / "portrait.png", size=(320, 320))
    samples.draw_portrait(directory / "two.png", size=(480, 320), people=2)
    samples.write_talking_video(directory / "talk.mp4", duration_s=1.5)  # shorter than long.wav
    return directory


@pytest.fixture
def upload(stack: StackInfo, media_dir: Path):
    """Upload a sample under the tenant's input prefix; returns its s3:// URL."""

    def _upload(name: str, tenant: str = "acme") -> str:
        bucket = stack.buckets["data"]
        key = f"tenants/{tenant}/inputs/e2e/{uuid.uuid4().hex[:8]}-{name}"
        content_type = {".wav": "audio/wav", ".mp4": "video/mp4"}.get(
            Path(name).suffix, "image/png"
        )
        stack.s3_client().upload_file(
            str(media_dir / name), bucket, key, ExtraArgs={"ContentType": content_type}
        )
        return f"s3://{bucket}/{key}"

    return _upload


@pytest.fixture
def api(stack: StackInfo, running_product: product.ProductInfo) -> Iterator[httpx.Client]:
    """An HTTP client for the public API with a read+write token for tenant ``acme``."""
    token = stack.mint_token("acme", ["videos:read", "videos:write"])
    with httpx.Client(
        base_url=running_product.api_url,
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    ) as client:
        yield client


_COUNTED = ("bad_input", "fault")
_tried: dict[str, Counter[str]] = {kind: Counter() for kind in _COUNTED}
_held: dict[str, Counter[str]] = {kind: Counter() for kind in _COUNTED}
_kinds_of: dict[str, list[tuple[str, str]]] = {}
_burst: list[dict[str, int]] = []
_corpus: list[dict[str, object]] = []
_bombs: list[dict[str, object]] = []


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        _kinds_of[item.nodeid] = [
            (kind, str(marker.args[0])) for kind in _COUNTED for marker in item.iter_markers(kind)
        ]


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when != "call":
        return
    for kind, label in _kinds_of.get(report.nodeid, []):
        _tried[kind][label] += 1
        _held[kind][label] += int(report.passed)
    _burst.extend(value for name, value in report.user_properties if name == "burst")
    _corpus.extend(
        {**value, "held": report.passed}
        for name, value in report.user_properties
        if name == "corpus"
    )
    _bombs.extend(value for name, value in report.user_properties if name == "bomb")


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not any(_tried[kind] for kind in _COUNTED) and not (_burst or _corpus or _bombs):
        return
    write = terminalreporter.write_line
    terminalreporter.section("reliability")
    for kind, title in (("bad_input", "bad inputs"), ("fault", "fault scenarios")):
        tried, held = sum(_tried[kind].values()), sum(_held[kind].values())
        write(f"{title}: {tried} tried, {held} held")
        for label in sorted(_tried[kind]):
            write(f"  {label}: {_held[kind][label]}/{_tried[kind][label]}")
    for burst in _burst:
        write(
            "burst: {submitted} submissions at concurrency {concurrency}: {accepted} accepted, "
            "{throttled} refused with 429, {accounted} accepted jobs accounted for".format(**burst)
        )
    if _corpus or _bombs:
        _write_corpus(write)


def _write_corpus(write: Callable[[str], None]) -> None:
    """The input corpus: files per kind and outcome, and how fast the worst refusals came."""
    for kind in ("audio", "image"):
        cases = [case for case in _corpus if case["kind"] == kind]
        accepted = [case for case in cases if case["expect"] == "accept"]
        refused = Counter(str(case["expect"]) for case in cases if case["expect"] != "accept")
        held = sum(bool(case["held"]) for case in cases)
        write(
            f"input corpus, {kind}: {len(cases)} files, {held} held: {len(accepted)} accepted "
            f"and rendered; refused: "
            + ", ".join(f"{code} {count}" for code, count in sorted(refused.items()))
        )
    bombs = [case for case in _corpus if case["expect"] == "decompression_bomb"]
    for bomb in bombs:
        write(f"  bomb {bomb['name']}: refused {bomb['where']} in {bomb['seconds']} s")
    for bomb in _bombs:
        write(
            f"  {bomb['name']} alone in a fresh worker process: {bomb['outcome']} in "
            f"{bomb['seconds']} s, peak {bomb['peak_rss_sum_mb']} MB (the process and its ffmpeg)"
        )
