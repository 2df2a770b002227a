"""Derive the compact hashicorp/aws schema the lint reads from the CDKTF jsii manifest.

No provider binary can be downloaded here, but ``@cdktf/provider-aws@21.22.1`` on npm carries a
jsii manifest (``package/.jsii``, ~130 MB) generated from hashicorp/aws 6.25.0: one config
interface per resource and data source, with every argument, nested block and its optional flag.
This script keeps only what the lint needs (names, required flags, block nesting) and writes it
gzipped and deterministic, so the committed file changes only when the provider version does::

    npm pack @cdktf/provider-aws@21.22.1
    python -m scripts.terraform.derive_aws_schema cdktf-provider-aws-21.22.1.tgz

Output shape (``SCHEMA_FILE``)::

    {"provider": ..., "version": ..., "resource": {type: Body}, "data": {type: Body}}
    Body = {"attributes": {name: required}, "blocks": {name: {"required": bool, **Body}}}

Framework-style nested *attributes* (``x = [{...}]``) are attributes here: their contents are
expressions the lint does not look into.
"""

from __future__ import annotations

import argparse
import gzip
import json
import re
import tarfile
from pathlib import Path
from typing import Any

SCHEMA_FILE = Path(__file__).with_name("aws-provider-schema.json.gz")
PROVIDER_VERSION = "6.25.0"
_PACKAGE = "@cdktf/provider-aws"
_TYPE_LINK = re.compile(
    r"\{@link https://registry\.terraform\.io/providers/hashicorp/aws/([\d.]+)/docs/"
    r"(resources|data-sources)/\w+ (\w+)\}"
)
_ARG_ANCHOR = re.compile(r"/docs/(?:resources|data-sources)/\w+#(\w+) ")
_KIND = {"cdktf.TerraformResource": "resource", "cdktf.TerraformDataSource": "data"}

Body = dict[str, Any]


def _snake(camel: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", camel).lower()


def _argument_name(prop: dict[str, Any]) -> str:
    docs = prop.get("docs", {})
    match = _ARG_ANCHOR.search(docs.get("summary", "") + " " + docs.get("remarks", ""))
    # The registry anchor is the provider's own spelling; CDKTF renames some properties
    # (reserved words), so the camelCase name is only the fallback.
    return match.group(1) if match else _snake(prop["name"])


def _nested_fqn(type_ref: dict[str, Any]) -> str | None:
    if "fqn" in type_ref:
        return type_ref["fqn"] if type_ref["fqn"].startswith(_PACKAGE + ".") else None
    if "collection" in type_ref:
        return _nested_fqn(type_ref["collection"]["elementtype"])
    if "union" in type_ref:
        for member in type_ref["union"]["types"]:
            if found := _nested_fqn(member):
                return found
    return None


def _body(types: dict[str, Any], fqn: str) -> Body:
    attributes: dict[str, bool] = {}
    blocks: dict[str, Body] = {}
    for prop in types[fqn].get("properties", []):
        name = _argument_name(prop)
        required = not prop.get("optional", False)
        nested = _nested_fqn(prop["type"])
        if nested and prop.get("docs", {}).get("summary", "").endswith(" block."):
            blocks[name] = {"required": required, **_body(types, nested)}
        else:
            attributes[name] = required
    return {"attributes": dict(sorted(attributes.items())), "blocks": dict(sorted(blocks.items()))}


def derive(manifest: dict[str, Any]) -> dict[str, Any]:
    """The compact schema of every resource and data source in a CDKTF jsii manifest."""
    types = manifest["types"]
    out: dict[str, Any] = {"provider": "hashicorp/aws", "version": None, "resource": {}, "data": {}}
    for cls in types.values():
        kind = _KIND.get(cls.get("base", ""))
        if cls["kind"] != "class" or kind is None:
            continue
        match = _TYPE_LINK.search(cls["docs"]["summary"])
        if match is None:
            raise ValueError(f"no registry link on {cls['fqn']}")
        version, _, type_name = match.groups()
        if out["version"] not in (None, version):
            raise ValueError(f"mixed provider versions: {out['version']} and {version}")
        out["version"] = version
        config = next(p for p in cls["initializer"]["parameters"] if p["name"] == "config")
        out[kind][type_name] = _body(types, config["type"]["fqn"])
    out["resource"] = dict(sorted(out["resource"].items()))
    out["data"] = dict(sorted(out["data"].items()))
    return out


def _read_manifest(source: Path) -> dict[str, Any]:
    if source.suffix == ".tgz" or source.name.endswith(".tar.gz"):
        with tarfile.open(source) as archive:
            member = archive.extractfile("package/.jsii")
            if member is None:
                raise ValueError(f"{source} has no package/.jsii")
            return json.load(member)
    return json.loads(source.read_text())


def write(schema: dict[str, Any], target: Path = SCHEMA_FILE) -> None:
    data = json.dumps(schema, separators=(",", ":"), sort_keys=True).encode()
    # mtime=0 and no file name in the header: the same input always gives the same bytes.
    with (
        target.open("wb") as raw,
        gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, filename="") as gz,
    ):
        gz.write(data)


def load(path: Path = SCHEMA_FILE) -> dict[str, Any]:
    """The committed compact schema."""
    with gzip.open(path, "rt") as fh:
        return json.load(fh)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path, help="npm pack tarball or an extracted .jsii file")
    parser.add_argument("--output", type=Path, default=SCHEMA_FILE)
    args = parser.parse_args(argv)
    schema = derive(_read_manifest(args.source))
    if schema["version"] != PROVIDER_VERSION:
        raise SystemExit(
            f"manifest is for hashicorp/aws {schema['version']}, not {PROVIDER_VERSION}"
        )
    write(schema, args.output)
    print(
        f"hashicorp/aws {schema['version']}: {len(schema['resource'])} resources, "
        f"{len(schema['data'])} data sources -> {args.output} ({args.output.stat().st_size} bytes)"
    )


if __name__ == "__main__":
    main()
