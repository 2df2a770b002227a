"""checkov over the module, submodule and examples: no failure, and every skip has a reason."""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.terraform.tooling import TERRAFORM_DIR, checkov

# A reason must say why, not just that: a few words are not enough.
MIN_REASON_LENGTH = 40


def test_checkov_passes_and_every_skip_is_explained() -> None:
    report = checkov(TERRAFORM_DIR)
    results = report["results"]
    failed = [(c["check_id"], c["resource"], c["file_path"]) for c in results["failed_checks"]]
    assert failed == []
    assert report["summary"]["passed"] >= 50
    for skipped in results["skipped_checks"]:
        reason = skipped["check_result"].get("suppress_comment", "")
        assert len(reason) >= MIN_REASON_LENGTH, (skipped["check_id"], skipped["resource"], reason)


def test_checkov_run_fails_on_a_regression(tmp_path: Path) -> None:
    copy = tmp_path / "terraform"
    shutil.copytree(TERRAFORM_DIR, copy, ignore=shutil.ignore_patterns(".terraform"))
    kms = copy / "kms.tf"
    kms.write_text(
        kms.read_text().replace("enable_key_rotation     = true", "enable_key_rotation     = false")
    )
    failed = {c["check_id"] for c in checkov(copy)["results"]["failed_checks"]}
    assert failed == {"CKV_AWS_7"}
