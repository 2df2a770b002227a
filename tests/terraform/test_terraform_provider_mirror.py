"""The root module, its examples and its mock-provider tests, run against a real AWS provider
binary where this machine's image carries one in a local mirror (``/opt/tf-plugins``).

The registry is unreachable here, and the mirror holds hashicorp/aws **5.100.0**, not the 6.x
this module targets. So a copy of the module is checked with two substitutions, and only
these: the version constraint admits the mirrored provider, and ``data.aws_region``'s 6.x
``region`` attribute is read as 5.x ``name``. Everything else (argument types, block nesting,
references, the ``mock_provider`` test file) is checked by the provider's own schema. 6.x-only
names are covered by the 6.25.0 schema lint. Without a mirror these tests skip.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from scripts.terraform.derive_aws_schema import load
from scripts.terraform.hcl_structure import parse_file
from scripts.terraform.schema_lint import lint, tf_files
from tests.terraform.tooling import ROOT, TERRAFORM_DIR, terraform

MIRROR = Path(os.environ.get("TF_PROVIDER_MIRROR", "/opt/tf-plugins"))
AWS_PLUGINS = MIRROR / "registry.terraform.io" / "hashicorp" / "aws"
TEMPLATE = ROOT / "aws" / "step_functions" / "batch.asl.json.tftpl"


def _mirrored_version() -> str:
    versions = sorted(p.name for p in AWS_PLUGINS.iterdir()) if AWS_PLUGINS.is_dir() else []
    if not versions:
        pytest.skip(f"no hashicorp/aws provider in a local mirror ({AWS_PLUGINS})")
    return versions[-1]


def _patch(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new))


def _run(*args: str, cwd: Path, env: dict[str, str]) -> str:
    done = terraform(*args, "-no-color", cwd=cwd, timeout=300, extra_env=env)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    return done.stdout


@pytest.fixture(scope="module")
def mirrored_copy(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    version = _mirrored_version()
    base = tmp_path_factory.mktemp("tf-mirror")
    copy = base / "terraform"
    shutil.copytree(TERRAFORM_DIR, copy, ignore=shutil.ignore_patterns(".terraform*"))
    for versions in [copy / "versions.tf", *copy.glob("examples/*/versions.tf")]:
        _patch(versions, 'version = "~> 6.0"', f'version = ">= {version}"')
    if int(version.split(".")[0]) < 6:
        _patch(copy / "main.tf", "data.aws_region.current.region", "data.aws_region.current.name")
        _patch(
            copy / "tests" / "module.tftest.hcl",
            'defaults = { region = "eu-west-1" }',
            'defaults = { name = "eu-west-1" }',
        )
    config = base / "mirror.tfrc"
    config.write_text(
        f'provider_installation {{\n  filesystem_mirror {{\n    path = "{MIRROR}"\n  }}\n}}\n'
    )
    env = {"TF_SHIM_CLI_CONFIG": str(config)}
    _run("init", "-backend=false", "-input=false", cwd=copy, env=env)
    return copy, env


@pytest.mark.slow
@pytest.mark.parametrize("where", [".", "examples/minimal", "examples/complete"])
def test_validates_with_the_provider_schema(
    where: str, mirrored_copy: tuple[Path, dict[str, str]]
) -> None:
    copy, env = mirrored_copy
    if where != ".":
        _run("init", "-backend=false", "-input=false", cwd=copy / where, env=env)
    assert "The configuration is valid" in _run("validate", cwd=copy / where, env=env)


@pytest.mark.slow
def test_mock_provider_tests_pass(mirrored_copy: tuple[Path, dict[str, str]]) -> None:
    copy, env = mirrored_copy
    out = _run("test", f"-var=state_machine_template_path={TEMPLATE}", cwd=copy, env=env)
    assert re.search(r"Success! \d+ passed, 0 failed", out), out


def _lint_body(block: dict[str, Any]) -> dict[str, Any]:
    """A provider schema block in the lint's shape (arguments only: computed-only is dropped)."""
    attributes = {
        name: bool(attr.get("required"))
        for name, attr in block.get("attributes", {}).items()
        if attr.get("required") or attr.get("optional")
    }
    blocks = {
        name: {"required": nested.get("min_items", 0) > 0, **_lint_body(nested["block"])}
        for name, nested in block.get("block_types", {}).items()
    }
    return {"attributes": attributes, "blocks": blocks}


def _disagreements(derived: dict[str, Any], provider: dict[str, Any], path: str) -> list[str]:
    found = []
    for name in derived["attributes"].keys() & provider["attributes"].keys():
        if derived["attributes"][name] != provider["attributes"][name]:
            found.append(f"{path}.{name}: required differs")
    for name in derived["attributes"].keys() & provider["blocks"].keys():
        found.append(f"{path}.{name}: an argument here, a block in the provider")
    for name in derived["blocks"].keys() & provider["attributes"].keys():
        found.append(f"{path}.{name}: a block here, an argument in the provider")
    for name in derived["blocks"].keys() & provider["blocks"].keys():
        if derived["blocks"][name]["required"] != provider["blocks"][name]["required"]:
            found.append(f"{path}.{name}: block required differs")
        found += _disagreements(derived["blocks"][name], provider["blocks"][name], f"{path}.{name}")
    return found


@pytest.mark.slow
def test_derived_schema_agrees_with_the_provider_binary(
    mirrored_copy: tuple[Path, dict[str, str]],
) -> None:
    """The jsii-derived 6.25.0 schema and the mirrored provider's own schema agree on every
    argument both know, for every type this module uses; and the lint, fed the provider's
    schema instead, accepts the module too (it uses no 6.x-only argument)."""
    copy, env = mirrored_copy
    done = terraform("providers", "schema", "-json", cwd=copy, timeout=300, extra_env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    provider = json.loads(done.stdout)["provider_schemas"]["registry.terraform.io/hashicorp/aws"]
    converted = {
        "version": _mirrored_version(),
        "resource": {t: _lint_body(s["block"]) for t, s in provider["resource_schemas"].items()},
        "data": {t: _lint_body(s["block"]) for t, s in provider["data_source_schemas"].items()},
    }
    derived = load()
    used = {
        (block.type, block.labels[0])
        for path in tf_files([TERRAFORM_DIR])
        for block in parse_file(path).blocks
        if block.type in ("resource", "data") and block.labels[0].startswith("aws_")
    }
    assert len(used) > 30
    for kind, type_name in sorted(used):
        assert _disagreements(derived[kind][type_name], converted[kind][type_name], type_name) == []
    assert lint([TERRAFORM_DIR], converted) == []
