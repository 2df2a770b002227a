"""Download the 14B presets' weights into a directory (a Modal Volume in production).

    python -m scripts.download_weights --dest /weights [--models PRESET ...]
        [--turbo-lora REPO:FILE] [--check]

``--models`` names the presets to fetch (default ``multitalk-14b``); they share the base and
wav2vec2, and each adds its audio adapter. The layout it writes is the one
``modal_service.multitalk.weights`` reads:

    <dest>/Wan2.1-I2V-14B-480P-Diffusers/{model_index.json,tokenizer,text_encoder,image_encoder,
           image_processor,transformer,vae,scheduler}/...
    <dest>/MeiGen-MultiTalk/multitalk.safetensors                 (multitalk-14b)
    <dest>/InfiniteTalk/single/infinitetalk.safetensors           (infinitetalk-14b)
    <dest>/InfiniteTalk/multi/infinitetalk.safetensors            (infinitetalk-14b-multi)
    <dest>/chinese-wav2vec2-base/{config.json,preprocessor_config.json,model.safetensors}
    <dest>/loras/<file>.safetensors            (only with --turbo-lora)

Every file's size is compared with the hub's listing: files already complete are skipped, partial
ones are resumed, and a file whose final size differs is an error naming it. Only the standard
library and ``huggingface_hub`` are imported, so it runs in a bare CPU container.
"""

from __future__ import annotations

import argparse
import fnmatch
import logging
import shutil
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

logger = logging.getLogger("download_weights")


@dataclass(frozen=True)
class Artifact:
    """Files matching ``patterns`` in ``repo_id@revision`` go to ``<dest>/<subdir>/``."""

    repo_id: str
    revision: str
    subdir: str
    patterns: tuple[str, ...]
    required: tuple[str, ...]


# Revisions: the branches the research was done against. Pin commit SHAs here for production
# reproducibility once they have been checked (the hub is not reachable from this machine).
SHARED = (
    Artifact(
        repo_id="Wan-AI/Wan2.1-I2V-14B-480P-Diffusers",
        revision="main",
        subdir="Wan2.1-I2V-14B-480P-Diffusers",
        patterns=(
            "model_index.json",
            "tokenizer/*",
            "text_encoder/*",
            "image_encoder/*",
            "image_processor/*",
            "transformer/*",
            "vae/*",
            "scheduler/*",
        ),
        required=("transformer/config.json", "vae/config.json", "text_encoder/config.json"),
    ),
    Artifact(
        # MultiTalk reads model.safetensors from this repo's PR #1 (the main branch has .bin only).
        repo_id="TencentGameMate/chinese-wav2vec2-base",
        revision="refs/pr/1",
        subdir="chinese-wav2vec2-base",
        patterns=("config.json", "preprocessor_config.json", "model.safetensors"),
        required=("config.json", "preprocessor_config.json", "model.safetensors"),
    ),
)


def _adapter(repo_id: str, subdir: str, path: str) -> Artifact:
    """One file of ``repo_id`` (main) at ``<dest>/<subdir>/<path>``."""
    return Artifact(
        repo_id=repo_id, revision="main", subdir=subdir, patterns=(path,), required=(path,)
    )


ADAPTERS = {
    "multitalk-14b": _adapter(
        "MeiGen-AI/MeiGen-MultiTalk", "MeiGen-MultiTalk", "multitalk.safetensors"
    ),
    "infinitetalk-14b": _adapter(
        "MeiGen-AI/InfiniteTalk", "InfiniteTalk", "single/infinitetalk.safetensors"
    ),
    "infinitetalk-14b-multi": _adapter(
        "MeiGen-AI/InfiniteTalk", "InfiniteTalk", "multi/infinitetalk.safetensors"
    ),
}
"""Each 14B preset's audio adapter, on top of the shared artifacts."""
DEFAULT_MODELS = ("multitalk-14b",)
LORA_SUBDIR = "loras"


def artifacts_for(models: Sequence[str]) -> list[Artifact]:
    """The shared base and wav2vec2, then each named preset's adapter."""
    return [*SHARED, *(ADAPTERS[model] for model in dict.fromkeys(models))]


ARTIFACTS = tuple(artifacts_for(DEFAULT_MODELS))


class DownloadError(RuntimeError):
    """The hub's content does not match the expected layout or sizes."""


class Hub(Protocol):
    def list_files(self, repo_id: str, revision: str) -> dict[str, int]:
        """Every file of the repository with its size in bytes."""

    def fetch(self, repo_id: str, revision: str, path: str, target: Path) -> None:
        """Write ``path`` to ``target``, resuming a partial download if there is one."""


class HuggingFaceHub:
    """The real hub through ``huggingface_hub`` (which resumes interrupted downloads itself)."""

    def __init__(self, token: str | None = None) -> None:
        from huggingface_hub import HfApi

        self._api = HfApi(token=token)
        self._token = token

    def list_files(self, repo_id: str, revision: str) -> dict[str, int]:
        entries = self._api.list_repo_tree(repo_id, revision=revision, recursive=True)
        return {e.path: e.size for e in entries if getattr(e, "size", None) is not None}

    def fetch(self, repo_id: str, revision: str, path: str, target: Path) -> None:
        from huggingface_hub import hf_hub_download

        root = target.parents[len(Path(path).parts) - 1]
        hf_hub_download(repo_id, path, revision=revision, local_dir=root, token=self._token)


class LocalHub:
    """A directory standing in for the hub: ``<root>/<repo_id>/<path>`` (revisions ignored)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def list_files(self, repo_id: str, revision: str) -> dict[str, int]:
        repo = self.root / repo_id
        if not repo.is_dir():
            raise DownloadError(f"repository {repo_id} not found")
        return {
            p.relative_to(repo).as_posix(): p.stat().st_size for p in repo.rglob("*") if p.is_file()
        }

    def fetch(self, repo_id: str, revision: str, path: str, target: Path) -> None:
        partial = target.with_name(target.name + ".partial")
        offset = partial.stat().st_size if partial.exists() else 0
        with (self.root / repo_id / path).open("rb") as src, partial.open("ab") as dst:
            src.seek(offset)
            shutil.copyfileobj(src, dst, length=1 << 20)
        partial.replace(target)


@dataclass
class Report:
    fetched: list[str]
    skipped: list[str]


def _selected(listing: dict[str, int], artifact: Artifact) -> dict[str, int]:
    chosen = {
        p: s
        for p, s in listing.items()
        if any(fnmatch.fnmatch(p, pat) for pat in artifact.patterns)
    }
    missing = [r for r in artifact.required if r not in chosen]
    if missing:
        raise DownloadError(f"{artifact.repo_id}@{artifact.revision} lacks {', '.join(missing)}")
    return chosen


def sync(
    hub: Hub, dest: Path, artifacts: Sequence[Artifact] = ARTIFACTS, check_only: bool = False
) -> Report:
    """Bring ``dest`` to the layout, fetching only what is missing or incomplete.

    With ``check_only`` nothing is fetched and any missing or wrong-sized file is an error.
    """
    report = Report(fetched=[], skipped=[])
    for artifact in artifacts:
        files = _selected(hub.list_files(artifact.repo_id, artifact.revision), artifact)
        for path, size in sorted(files.items()):
            target = dest / artifact.subdir / path
            name = f"{artifact.subdir}/{path}"
            if target.is_file() and target.stat().st_size == size:
                report.skipped.append(name)
                continue
            if check_only:
                state = (
                    "missing" if not target.exists() else f"{target.stat().st_size} of {size} bytes"
                )
                raise DownloadError(f"{name}: {state}")
            target.parent.mkdir(parents=True, exist_ok=True)
            if target.exists():  # wrong size: a corrupt or truncated copy, start over
                target.unlink()
            logger.info("fetching %s (%.1f MB)", name, size / 1e6)
            hub.fetch(artifact.repo_id, artifact.revision, path, target)
            got = target.stat().st_size if target.exists() else -1
            if got != size:
                raise DownloadError(f"{name}: got {got} bytes, the hub lists {size}")
            report.fetched.append(name)
    return report


def lora_artifact(spec: str) -> Artifact:
    """``REPO:FILE`` -> an artifact that puts FILE under ``loras/``."""
    repo_id, sep, path = spec.partition(":")
    if not sep or not path.endswith(".safetensors"):
        raise argparse.ArgumentTypeError("--turbo-lora takes REPO:FILE.safetensors")
    return _adapter(repo_id, LORA_SUBDIR, path)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--dest", type=Path, required=True, help="weights directory (the Volume mount)"
    )
    parser.add_argument(
        "--models",
        nargs="+",
        choices=sorted(ADAPTERS),
        default=list(DEFAULT_MODELS),
        help="the presets to fetch (default: multitalk-14b)",
    )
    parser.add_argument(
        "--turbo-lora", type=lora_artifact, help="optional distillation LoRA, REPO:FILE"
    )
    parser.add_argument("--check", action="store_true", help="verify only; exit 1 if incomplete")
    parser.add_argument(
        "--local-hub", type=Path, help="read from this directory instead of the hub"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    hub: Hub = LocalHub(args.local_hub) if args.local_hub else HuggingFaceHub()
    artifacts = artifacts_for(args.models)
    if args.turbo_lora:
        artifacts.append(args.turbo_lora)
    try:
        report = sync(hub, args.dest, artifacts, check_only=args.check)
    except DownloadError as exc:
        logger.error("weights incomplete: %s", exc)
        return 1
    logger.info("%d files fetched, %d already complete", len(report.fetched), len(report.skipped))
    return 0


if __name__ == "__main__":
    sys.exit(main())
