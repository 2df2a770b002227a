"""Evaluate a Terraform configuration offline with tfparse and print it as JSON.

tfparse (the Trivy HCL evaluator) resolves variables, locals, ``for_each``/``count``,
``jsonencode`` and local module calls without any provider, so IAM documents built from names
come out as the JSON AWS would receive. Computed attributes stay placeholders and
``templatefile`` yields nothing: checks must not rely on those. Runs in ``.venv-tf``::

    .venv-tf/bin/python scripts/terraform/evaluate.py terraform/modules/core --var-file x.tfvars
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import tfparse


def evaluate(directory: Path, var_files: list[Path]) -> dict[str, object]:
    # tfparse resolves var files relative to the configuration directory.
    relative = [os.path.relpath(f.resolve(), directory.resolve()) for f in var_files]
    return tfparse.load_from_path(str(directory), vars_paths=relative or None)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directory", type=Path)
    parser.add_argument("--var-file", type=Path, action="append", default=[])
    args = parser.parse_args(argv)
    json.dump(evaluate(args.directory, args.var_file), sys.stdout, default=str, sort_keys=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
