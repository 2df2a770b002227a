"""``--without-runtime-sdk``: the zip leaves out boto3 and what it brings, and nothing else.

Files are chosen by the installed distributions' own RECORDs, so a package whose name merely
resembles one of them stays, and so do the SDK's neighbours in the same directory.
"""

from __future__ import annotations

from pathlib import Path

from scripts.package_lambdas import installed_files


def _install(site: Path, distribution: str, version: str, files: list[str]) -> None:
    """What pip leaves for one distribution: its files and a dist-info whose RECORD lists them."""
    dist_info = f"{distribution}-{version}.dist-info"
    for name in [*files, f"{dist_info}/METADATA"]:
        (site / name).parent.mkdir(parents=True, exist_ok=True)
        (site / name).write_text(name)
    record = [*files, f"{dist_info}/METADATA", f"{dist_info}/RECORD"]
    (site / dist_info / "RECORD").write_text("".join(f"{n},sha256=x,1\n" for n in record))


def test_the_runtime_sdk_is_left_out_by_its_records(tmp_path: Path) -> None:
    site = tmp_path / "site"
    _install(site, "boto3", "1.40.0", ["boto3/__init__.py", "boto3/session.py"])
    _install(site, "botocore", "1.40.0", ["botocore/__init__.py", "botocore/data/s3.json"])
    _install(site, "python_dateutil", "2.9.0", ["dateutil/__init__.py"])
    _install(site, "six", "1.17.0", ["six.py"])
    _install(site, "httpx", "0.28.1", ["httpx/__init__.py"])
    _install(site, "boto3_stubs_lite", "1.0.0", ["boto3_stubs_lite/__init__.py"])
    bundled = {name for _, name in installed_files(site)}
    lean = {name for _, name in installed_files(site, bundle_sdk=False)}
    assert {"boto3/session.py", "botocore/data/s3.json", "six.py"} <= bundled
    assert bundled - lean == {
        "boto3/__init__.py",
        "boto3/session.py",
        "boto3-1.40.0.dist-info/METADATA",
        "boto3-1.40.0.dist-info/RECORD",
        "botocore/__init__.py",
        "botocore/data/s3.json",
        "botocore-1.40.0.dist-info/METADATA",
        "botocore-1.40.0.dist-info/RECORD",
        "dateutil/__init__.py",
        "python_dateutil-2.9.0.dist-info/METADATA",
        "python_dateutil-2.9.0.dist-info/RECORD",
        "six.py",
        "six-1.17.0.dist-info/METADATA",
        "six-1.17.0.dist-info/RECORD",
    }
    assert {"httpx/__init__.py", "boto3_stubs_lite/__init__.py"} <= lean
