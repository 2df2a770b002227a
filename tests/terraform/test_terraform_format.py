"""`terraform fmt -check` over the module, its submodule and examples (embedded Terraform)."""

from __future__ import annotations

from pathlib import Path

from tests.terraform.tooling import TERRAFORM_DIR, terraform


def test_every_terraform_file_is_canonically_formatted() -> None:
    done = terraform("fmt", "-check", "-recursive", "-diff", "-no-color", cwd=TERRAFORM_DIR)
    assert done.returncode == 0, f"run `tf.py -chdir=terraform fmt -recursive`:\n{done.stdout}"


def test_fmt_check_flags_a_misformatted_file(tmp_path: Path) -> None:
    (tmp_path / "misformatted.tf").write_text('locals {\n a="x"\n}\n')
    done = terraform("fmt", "-check", "-no-color", cwd=tmp_path)
    assert done.returncode != 0
    assert "misformatted.tf" in done.stdout
