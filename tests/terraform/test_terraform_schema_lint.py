"""The schema lint against hashicorp/aws 6.25.0: the module passes, and broken copies fail."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from scripts.terraform.derive_aws_schema import SCHEMA_FILE, derive, load
from scripts.terraform.hcl_structure import HclSyntaxError, parse
from scripts.terraform.schema_lint import lint, tf_files
from tests.terraform.tooling import TERRAFORM_DIR


@pytest.fixture(scope="module")
def schema() -> dict:
    return load()


def _copy(tmp_path: Path) -> Path:
    target = tmp_path / "terraform"
    shutil.copytree(TERRAFORM_DIR, target, ignore=shutil.ignore_patterns(".terraform"))
    return target


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1))


def _messages(findings: list) -> list[str]:
    return [f"{f.path.name}: {f.address}: {f.message}" for f in findings]


def test_module_submodule_and_examples_match_the_schema(schema: dict) -> None:
    files = tf_files([TERRAFORM_DIR])
    assert {"lambda.tf", "s3.tf", "apigateway.tf"} <= {f.name for f in files}
    assert lint([TERRAFORM_DIR], schema) == []


def test_schema_file_is_compact_and_pinned(schema: dict) -> None:
    assert SCHEMA_FILE.stat().st_size < 4 * 1024 * 1024
    assert schema["version"] == "6.25.0"
    function = schema["resource"]["aws_lambda_function"]
    assert function["attributes"]["function_name"] is True
    assert function["attributes"]["reserved_concurrent_executions"] is False
    assert function["blocks"]["tracing_config"]["attributes"]["mode"] is True
    assert "aws_caller_identity" in schema["data"]


def test_renamed_argument_fails(tmp_path: Path, schema: dict) -> None:
    copy = _copy(tmp_path)
    _edit(copy / "lambda.tf", "reserved_concurrent_executions =", "reserved_concurrency =")
    assert _messages(lint([copy], schema)) == [
        "lambda.tf: aws_lambda_function.this: unknown argument 'reserved_concurrency'"
    ]


def test_missing_required_argument_fails(tmp_path: Path, schema: dict) -> None:
    copy = _copy(tmp_path)
    _edit(copy / "lambda.tf", "  role          = aws_iam_role.lambda[each.key].arn\n", "")
    assert _messages(lint([copy], schema)) == [
        "lambda.tf: aws_lambda_function.this: missing required argument 'role'"
    ]


def test_missing_required_nested_argument_and_block_fail(tmp_path: Path, schema: dict) -> None:
    copy = _copy(tmp_path)
    _edit(copy / "s3.tf", '    id     = "expire-temporary-objects"\n', "")
    _edit(copy / "s3.tf", '  versioning_configuration {\n    status = "Enabled"\n  }\n', "")
    assert sorted(_messages(lint([copy], schema))) == [
        "s3.tf: aws_s3_bucket_lifecycle_configuration.data.rule: missing required argument 'id'",
        "s3.tf: aws_s3_bucket_versioning.data: missing required block 'versioning_configuration'",
    ]


def test_block_written_as_argument_and_misspelled_dynamic_block_fail(
    tmp_path: Path, schema: dict
) -> None:
    copy = _copy(tmp_path)
    _edit(
        copy / "stepfunctions.tf",
        "  tracing_configuration {\n    enabled = true\n  }",
        "  tracing_configuration = { enabled = true }",
    )
    _edit(copy / "lambda.tf", 'dynamic "dead_letter_config"', 'dynamic "dead_letter_configuration"')
    assert sorted(_messages(lint([copy], schema))) == [
        "lambda.tf: aws_lambda_function.this: unknown block 'dead_letter_configuration'",
        "stepfunctions.tf: aws_sfn_state_machine.batch: unknown argument 'tracing_configuration'"
        " (it is a block: write `name { ... }`)",
    ]


def test_unknown_resource_type_and_data_source_fail(tmp_path: Path, schema: dict) -> None:
    copy = _copy(tmp_path)
    (copy / "extra.tf").write_text(
        'resource "aws_s3_bucket_versionning" "x" {}\ndata "aws_caller_identities" "y" {}\n'
    )
    assert sorted(_messages(lint([copy], schema))) == [
        "extra.tf: aws_s3_bucket_versionning.x: unknown resource type 'aws_s3_bucket_versionning'",
        "extra.tf: data.aws_caller_identities.y: unknown data source 'aws_caller_identities'",
    ]


def test_structure_parser_skips_expressions_it_cannot_misread() -> None:
    root = parse(
        "locals {\n"
        '  a = "text with { and } and ${jsonencode({ k = "}" })}" # trailing {\n'
        "  b = <<-EOT\n    a heredoc with } and {\n    EOT\n"
        '  c = [\n    for k, v in var.m : k\n    if v != "{"\n  ]\n'
        "  /* a comment with { */\n"
        "}\n"
        'resource "aws_x" "y" { lifecycle { ignore_changes = [tags] } }\n'
    )
    local, resource = root.blocks
    assert list(local.attributes) == ["a", "b", "c"]
    assert local.attributes["c"].line == 6
    assert resource.labels == ["aws_x", "y"]
    assert [b.type for b in resource.blocks] == ["lifecycle"]
    assert list(resource.blocks[0].attributes) == ["ignore_changes"]


@pytest.mark.parametrize(
    "source",
    ['locals {\n  a = "unterminated\n}\n', "locals {\n  a = [1, 2\n", "locals {\n  a = 1\n"],
)
def test_structure_parser_refuses_broken_files(source: str) -> None:
    with pytest.raises(HclSyntaxError):
        parse(source)


def test_derivation_reads_names_required_flags_and_blocks_from_a_jsii_manifest() -> None:
    link = "{@link https://registry.terraform.io/providers/hashicorp/aws/6.25.0/docs/resources/"
    anchor = f"Docs at Terraform Registry: {link}thing#for_each Thing#for_each}}."
    prefix = "@cdktf/provider-aws.thing."
    manifest = {
        "types": {
            prefix + "Thing": {
                "kind": "class",
                "base": "cdktf.TerraformResource",
                "fqn": prefix + "Thing",
                "docs": {"summary": f"Represents a {link}thing aws_thing}}."},
                "initializer": {
                    "parameters": [{"name": "config", "type": {"fqn": prefix + "ThingConfig"}}]
                },
            },
            prefix + "ThingConfig": {
                "kind": "interface",
                "properties": [
                    {"name": "bucketName", "type": {"primitive": "string"}, "docs": {}},
                    {
                        "name": "forEachAttribute",
                        "optional": True,
                        "type": {"primitive": "string"},
                        "docs": {"summary": anchor},
                    },
                    {
                        "name": "rule",
                        "optional": True,
                        "type": {
                            "union": {
                                "types": [
                                    {"fqn": "cdktf.IResolvable"},
                                    {
                                        "collection": {
                                            "kind": "array",
                                            "elementtype": {"fqn": prefix + "ThingRule"},
                                        }
                                    },
                                ]
                            }
                        },
                        "docs": {"summary": "rule block."},
                    },
                ],
            },
            prefix + "ThingRule": {
                "kind": "interface",
                "properties": [{"name": "daysAfter", "type": {"primitive": "number"}, "docs": {}}],
            },
        }
    }
    assert derive(manifest) == {
        "provider": "hashicorp/aws",
        "version": "6.25.0",
        "resource": {
            "aws_thing": {
                "attributes": {"bucket_name": True, "for_each": False},
                "blocks": {
                    "rule": {"required": False, "attributes": {"days_after": True}, "blocks": {}}
                },
            }
        },
        "data": {},
    }
