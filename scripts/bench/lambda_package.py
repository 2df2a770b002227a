"""Size of the Lambda deployment zip, per architecture, against Lambda's package limits; with
its own boto3/botocore and without them (the runtime's copy then serves).

``python -m scripts.bench.lambda_package`` builds the zip the way a release does
(:mod:`scripts.package_lambdas`: the ``lambda`` dependency group as CPython 3.12 manylinux
wheels, ``aws/`` and the wire contract) for x86_64 and arm64, each twice from one install:
``bundled_sdk`` (the default build) and ``runtime_sdk`` (``--without-runtime-sdk``: no
:data:`~scripts.package_lambdas.RUNTIME_SDK`). It reports compressed and unpacked sizes, the
seconds to unpack the zip here (a stand-in for what Lambda does with the package before the
first cold start of a new version), and, for x86_64 where a CPython 3.12 is installed, the API
handler's cold import from the unpacked zip (``python3.12 -S``: the zip's files only, as on
Lambda; median of 5). For ``runtime_sdk`` the left-out packages come from a directory after the
zip's on the path, as ``/var/runtime`` comes after ``/var/task`` on Lambda.

One zip serves all four functions, so these are also each function's sizes. Lambda refuses a
direct upload over 50 MB and an unpacked package over 250 MB.
"""

from __future__ import annotations

import glob
import shutil
import statistics
import subprocess
import tempfile
import time
import zipfile
from pathlib import Path

from scripts.bench.results import save
from scripts.package_lambdas import (
    install_dependencies,
    installed_files,
    lambda_requirements,
    source_files,
    write_zip,
)

DIRECT_UPLOAD_LIMIT = 50 * 1000 * 1000
UNPACKED_LIMIT = 250 * 1000 * 1000
FUNCTIONS = ("api", "callbacks", "reconciler", "batch_submit")
VARIANTS = {"bundled_sdk": True, "runtime_sdk": False}
RUNS = 5
IMPORT_SNIPPET = """
import time
started = time.perf_counter()
import aws.lambda_proxy.handlers.api
print(time.perf_counter() - started)
"""


def python312() -> str | None:
    """A CPython 3.12 (the Lambda runtime's version: the wheels are cp312), if installed."""
    candidates = [
        shutil.which("python3.12"),
        *sorted(glob.glob("/root/.pyenv/versions/3.12*/bin/python3.12")),
    ]
    for candidate in filter(None, candidates):
        probe = subprocess.run(
            [candidate, "-c", "import sys; print(sys.version_info[:2])"],
            capture_output=True,
            text=True,
            check=False,
        )
        if probe.returncode == 0 and probe.stdout.strip() == "(3, 12)":
            return candidate
    return None


def _unpack_s(archive: Path, work: Path) -> tuple[float, Path]:
    """Median seconds to unpack ``archive``; returns them and the last unpacked directory."""
    durations = []
    for run in range(RUNS):
        target = work / f"unpacked-{archive.stem}-{run}"
        started = time.perf_counter()
        with zipfile.ZipFile(archive) as opened:
            opened.extractall(target)
        durations.append(time.perf_counter() - started)
    return round(statistics.median(durations), 3), target


def _runtime_standin(site: Path, work: Path) -> Path:
    """The packages a ``runtime_sdk`` zip leaves out, alone in a directory: the runtime's copy."""
    lean = {name for _, name in installed_files(site, bundle_sdk=False)}
    runtime = work / "runtime"
    for path, name in installed_files(site):
        if name not in lean:
            (runtime / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, runtime / name)
    return runtime


def _api_import_s(python: str, path: list[Path]) -> float:
    env = {
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": ":".join(str(p) for p in path),
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    runs = [
        float(
            subprocess.run(
                [python, "-S", "-c", IMPORT_SNIPPET],
                env=env,
                cwd=path[0],
                capture_output=True,
                text=True,
                check=True,
            ).stdout.split()[-1]
        )
        for _ in range(RUNS)
    ]
    return round(statistics.median(runs), 3)


def measure(arch: str, python: str | None) -> dict[str, dict[str, float | int]]:
    figures: dict[str, dict[str, float | int]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-zip-") as work:
        site = Path(work) / "site"
        install_dependencies(site, lambda_requirements(), arch)
        runtime = _runtime_standin(site, Path(work))
        for variant, bundle_sdk in VARIANTS.items():
            output = Path(work) / f"{variant}.zip"
            entries = installed_files(site, bundle_sdk=bundle_sdk) + source_files()
            write_zip(entries, output)
            with zipfile.ZipFile(output) as archive:
                unpacked = sum(info.file_size for info in archive.infolist())
            zipped = output.stat().st_size
            unpack_s, directory = _unpack_s(output, Path(work))
            figures[variant] = {
                "files": len(entries),
                "zip_mb": round(zipped / 1e6, 2),
                "unpacked_mb": round(unpacked / 1e6, 2),
                "share_of_direct_upload_limit": round(zipped / DIRECT_UPLOAD_LIMIT, 3),
                "share_of_unpacked_limit": round(unpacked / UNPACKED_LIMIT, 3),
                "unpack_s_median": unpack_s,
            }
            if python and arch == "x86_64":
                path = [directory] if bundle_sdk else [directory, runtime]
                figures[variant]["api_cold_import_s_median"] = _api_import_s(python, path)
    return figures


def main() -> None:
    python = python312()
    save(
        "lambda_package",
        {
            "functions_sharing_the_zip": list(FUNCTIONS),
            "python_for_the_import": python or "none here: import not measured",
            "x86_64": measure("x86_64", python),
            "arm64": measure("arm64", python),
        },
        "python -m scripts.bench.lambda_package",
    )


if __name__ == "__main__":
    main()
