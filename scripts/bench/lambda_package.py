"""Size of the Lambda deployment zip, per architecture, against Lambda's package limits.

``python -m scripts.bench.lambda_package`` builds the zip the way a release does
(:mod:`scripts.package_lambdas`: the ``lambda`` dependency group as CPython 3.12 manylinux
wheels, ``aws/`` and the wire contract) for x86_64 and arm64, and reports compressed and
unpacked sizes. One zip serves all four functions, so these are also each function's sizes.
Lambda refuses a direct upload over 50 MB and an unpacked package over 250 MB.
"""

from __future__ import annotations

import tempfile
import zipfile
from pathlib import Path

from scripts.bench.results import save
from scripts.package_lambdas import build

DIRECT_UPLOAD_LIMIT = 50 * 1000 * 1000
UNPACKED_LIMIT = 250 * 1000 * 1000
FUNCTIONS = ("api", "callbacks", "reconciler", "batch_submit")


def measure(arch: str) -> dict[str, float | int]:
    with tempfile.TemporaryDirectory(prefix="bench-zip-") as work:
        output = Path(work) / "lambda.zip"
        names = build(output, arch)
        with zipfile.ZipFile(output) as archive:
            unpacked = sum(info.file_size for info in archive.infolist())
        zipped = output.stat().st_size
    return {
        "files": len(names),
        "zip_mb": round(zipped / 1e6, 2),
        "unpacked_mb": round(unpacked / 1e6, 2),
        "share_of_direct_upload_limit": round(zipped / DIRECT_UPLOAD_LIMIT, 3),
        "share_of_unpacked_limit": round(unpacked / UNPACKED_LIMIT, 3),
    }


def main() -> None:
    save(
        "lambda_package",
        {
            "functions_sharing_the_zip": list(FUNCTIONS),
            "x86_64": measure("x86_64"),
            "arm64": measure("arm64"),
        },
        "python -m scripts.bench.lambda_package",
    )


if __name__ == "__main__":
    main()
