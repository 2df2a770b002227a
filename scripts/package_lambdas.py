"""Build the Lambda deployment zip: the ``lambda`` dependency group, ``aws/`` and the wire contract.

    python -m scripts.package_lambdas [--output dist/lambda.zip] [--arch x86_64|arm64]
        [--without-runtime-sdk]

One zip serves all four functions (Terraform points each at its handler). Dependencies are
resolved for the Lambda runtime, not for this machine: CPython 3.12 wheels for manylinux on the
chosen architecture (``pip --platform --only-binary``), so a build anywhere yields what Lambda
runs. The GPU side is not in it: of ``modal_service`` only the pure-pydantic ``contracts.py``
and the standard-library ``sniff.py``, ``image_rules.py``, ``audio_rules.py`` and
``video_rules.py`` go in, with the job estimates' data file. The zip is deterministic (sorted
entries, fixed timestamps and modes), so Terraform's ``source_code_hash`` changes only when the
content does.

The zip carries its own boto3 and botocore by default, pinned by the ``lambda`` group: the
runtime's copy changes when AWS updates the runtime, not when this project does.
``--without-runtime-sdk`` leaves out boto3 and what it brings (:data:`RUNTIME_SDK`), so the
runtime's copy is used; ``python -m scripts.bench.lambda_package`` measures both.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import tomllib
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUTPUT = ROOT / "dist" / "lambda.zip"
LAMBDA_PYTHON = "3.12"
_PLATFORMS = {"x86_64": "manylinux2014_x86_64", "arm64": "manylinux2014_aarch64"}
# The only GPU-side files the AWS side imports (pure pydantic or standard library, no torch, no
# Modal): the wire contract and the content sniffing both sides judge inputs by.
_CONTRACT_FILES = (
    "modal_service/__init__.py",
    "modal_service/contracts.py",
    "modal_service/sniff.py",
    "modal_service/image_rules.py",
    "modal_service/audio_rules.py",
    "modal_service/video_rules.py",
)
# Data the proxy reads at run time: the job estimates' figures (scripts/bench/speed_model.py).
_DATA_FILES = ("aws/lambda_proxy/jobs/speed_model.json",)
_SKIPPED_PARTS = frozenset({"__pycache__", "node_modules", "tests"})
RUNTIME_SDK = frozenset(
    {"boto3", "botocore", "s3transfer", "jmespath", "python_dateutil", "six", "urllib3"}
)
"""boto3 and its dependencies (normalized distribution names): what the Lambda Python runtime
ships in /var/runtime, and so what a zip may leave out."""
_FIXED_TIME = (1980, 1, 1, 0, 0, 0)


def lambda_requirements(pyproject: Path = ROOT / "pyproject.toml") -> list[str]:
    """The ``lambda`` dependency group, as pip requirement strings."""
    groups = tomllib.loads(pyproject.read_text())["dependency-groups"]
    requirements = groups["lambda"]
    if not all(isinstance(r, str) for r in requirements):
        raise ValueError("the lambda group must list plain requirements (no include-group)")
    return list(requirements)


def source_files(root: Path = ROOT) -> list[tuple[Path, str]]:
    """(file, name in the zip) for the AWS-side code and the wire contract."""
    files = [
        (path, path.relative_to(root).as_posix())
        for path in sorted((root / "aws").rglob("*.py"))
        if not _SKIPPED_PARTS.intersection(path.relative_to(root).parts)
    ]
    files += [(root / name, name) for name in _CONTRACT_FILES]
    files += [(root / name, name) for name in _DATA_FILES]
    return files


def install_dependencies(target: Path, requirements: list[str], arch: str) -> None:
    """pip-install ``requirements`` into ``target`` as Lambda's runtime needs them."""
    subprocess.run(
        [
            sys.executable, "-m", "pip", "install", "--quiet", "--no-compile",
            "--target", str(target),
            "--platform", _PLATFORMS[arch],
            "--implementation", "cp",
            "--python-version", LAMBDA_PYTHON,
            "--only-binary=:all:",
            *requirements,
        ],
        check=True,
    )  # fmt: skip


def _distribution_files(site: Path, names: frozenset[str]) -> set[str]:
    """Every file pip installed in ``site`` for the distributions ``names``, by their RECORDs."""
    files: set[str] = set()
    for dist_info in site.glob("*.dist-info"):
        if dist_info.name.split("-")[0].lower() in names:
            record = (dist_info / "RECORD").read_text().splitlines()
            files.update(line.split(",")[0] for line in record if line)
    return files


def installed_files(site: Path, *, bundle_sdk: bool = True) -> list[tuple[Path, str]]:
    """(file, name in the zip) for what pip installed in ``site``; without :data:`RUNTIME_SDK`
    unless ``bundle_sdk``."""
    left_out = set() if bundle_sdk else _distribution_files(site, RUNTIME_SDK)
    return [
        (path, name)
        for path in sorted(site.rglob("*"))
        if path.is_file()
        and "__pycache__" not in path.parts
        # pip's own console-script shims point at this machine's interpreter.
        and path.relative_to(site).parts[0] != "bin"
        and (name := path.relative_to(site).as_posix()) not in left_out
    ]


def write_zip(entries: list[tuple[Path, str]], output: Path) -> None:
    """A reproducible zip: sorted names, fixed time, 0644 files (0755 when executable)."""
    names = [name for _, name in entries]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"two files would share a name in the zip: {duplicates[:5]}")
    output.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(output, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for path, name in sorted(entries, key=lambda entry: entry[1]):
            info = zipfile.ZipInfo(name, date_time=_FIXED_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            mode = 0o755 if path.stat().st_mode & 0o111 else 0o644
            info.external_attr = (0o100000 | mode) << 16
            archive.writestr(info, path.read_bytes())


def build(
    output: Path = DEFAULT_OUTPUT, arch: str = "x86_64", *, bundle_sdk: bool = True
) -> list[str]:
    """Build the zip; returns the names it holds."""
    with tempfile.TemporaryDirectory(prefix="lambda-site-") as site:
        site_dir = Path(site)
        install_dependencies(site_dir, lambda_requirements(), arch)
        entries = installed_files(site_dir, bundle_sdk=bundle_sdk) + source_files()
        write_zip(entries, output)
    return sorted(name for _, name in entries)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    parser.add_argument("--arch", choices=sorted(_PLATFORMS), default="x86_64")
    parser.add_argument(
        "--without-runtime-sdk",
        action="store_true",
        help="leave out boto3, botocore and their dependencies: use the Lambda runtime's copy",
    )
    args = parser.parse_args(argv)
    names = build(args.output, args.arch, bundle_sdk=not args.without_runtime_sdk)
    size = args.output.stat().st_size
    print(f"{args.output}: {len(names)} files, {size / 1e6:.1f} MB ({args.arch}, CPython 3.12)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
