"""Check every ``aws_*`` resource and data source against the hashicorp/aws 6.25.0 schema.

For each resource type, argument and nested block the configuration uses, the lint asks the
compact schema (see :mod:`.derive_aws_schema`) whether it exists and whether it is written as
the right kind (attribute or block), and it reports every required argument or block that is
missing. ``dynamic "x"`` blocks count as ``x`` and are checked through their ``content``.

What it cannot see: values (types, enums, conflicts between optional arguments) and arguments
that are required only in combination. Those need the provider binary (``terraform validate``).

    python -m scripts.terraform.schema_lint terraform/
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .derive_aws_schema import load
from .hcl_structure import Block, parse_file

# Terraform's own meta-arguments, valid on every resource or data source.
_META_ATTRIBUTES = frozenset({"count", "for_each", "depends_on", "provider"})
_META_BLOCKS = {
    "resource": frozenset({"lifecycle", "provisioner", "connection"}),
    "data": frozenset({"lifecycle"}),
}
_PROVIDER_PREFIX = "aws_"
_SKIPPED_DIRS = frozenset({".terraform"})


@dataclass(frozen=True)
class Finding:
    path: Path
    line: int
    address: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.address}: {self.message}"


def _check_body(
    body: Block, schema: dict[str, Any], path: Path, address: str, top: str | None
) -> list[Finding]:
    findings: list[Finding] = []
    attributes, blocks = schema["attributes"], schema["blocks"]
    meta_attributes = _META_ATTRIBUTES if top else frozenset()
    meta_blocks = _META_BLOCKS[top] if top else frozenset()

    for name, attr in body.attributes.items():
        if name in attributes or name in meta_attributes:
            continue
        hint = " (it is a block: write `name { ... }`)" if name in blocks else ""
        findings.append(Finding(path, attr.line, address, f"unknown argument {name!r}{hint}"))

    present_blocks: set[str] = set()
    for block in body.blocks:
        if block.type in meta_blocks:
            continue
        name, content = block.type, block
        if block.type == "dynamic":
            name = block.labels[0] if block.labels else ""
            content = next(
                (b for b in block.blocks if b.type == "content"), Block("content", [], 0)
            )
        present_blocks.add(name)
        if name not in blocks:
            hint = " (it is an argument: write `name = ...`)" if name in attributes else ""
            findings.append(Finding(path, block.line, address, f"unknown block {name!r}{hint}"))
            continue
        findings += _check_body(content, blocks[name], path, f"{address}.{name}", None)

    for name, required in attributes.items():
        if required and name not in body.attributes:
            findings.append(
                Finding(path, body.line, address, f"missing required argument {name!r}")
            )
    for name, nested in blocks.items():
        if nested["required"] and name not in present_blocks:
            findings.append(Finding(path, body.line, address, f"missing required block {name!r}"))
    return findings


def lint_file(path: Path, schema: dict[str, Any]) -> list[Finding]:
    findings: list[Finding] = []
    for block in parse_file(path).blocks:
        if block.type not in ("resource", "data") or len(block.labels) != 2:
            continue
        type_name, name = block.labels
        if not type_name.startswith(_PROVIDER_PREFIX):
            continue
        address = f"{'data.' if block.type == 'data' else ''}{type_name}.{name}"
        known = schema[block.type]
        if type_name not in known:
            kind = "data source" if block.type == "data" else "resource type"
            findings.append(Finding(path, block.line, address, f"unknown {kind} {type_name!r}"))
            continue
        findings += _check_body(block, known[type_name], path, address, block.type)
    return findings


def tf_files(roots: list[Path]) -> list[Path]:
    files: list[Path] = []
    for root in roots:
        candidates = [root] if root.is_file() else sorted(root.rglob("*.tf"))
        files += [f for f in candidates if not _SKIPPED_DIRS.intersection(f.parts)]
    return files


def lint(roots: list[Path], schema: dict[str, Any] | None = None) -> list[Finding]:
    """Findings for every ``.tf`` file under ``roots`` (directories are searched recursively)."""
    schema = schema or load()
    return [finding for path in tf_files(roots) for finding in lint_file(path, schema)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="+", type=Path)
    args = parser.parse_args(argv)
    schema = load()
    files = tf_files(args.paths)
    findings = lint(args.paths, schema)
    for finding in findings:
        print(finding)
    print(
        f"{len(files)} files checked against hashicorp/aws {schema['version']}: "
        f"{len(findings)} findings"
    )
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
