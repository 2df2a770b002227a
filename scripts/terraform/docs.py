"""Inputs and outputs tables of a module's README, generated from its variables and outputs.

terraform-docs cannot be installed here, so this does its one job for this repository: the
tables between ``<!-- BEGIN_TF_DOCS -->`` and ``<!-- END_TF_DOCS -->`` are rendered from the
``variable`` and ``output`` blocks (description, type and default as written)::

    python -m scripts.terraform.docs terraform            # rewrite terraform/README.md
    python -m scripts.terraform.docs terraform --check    # exit 1 when it is out of date
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import textwrap
from pathlib import Path

from .hcl_structure import Block, parse_file

BEGIN = "<!-- BEGIN_TF_DOCS -->"
END = "<!-- END_TF_DOCS -->"
_HEREDOC = re.compile(r"^<<-?([A-Za-z_]\w*)\n(.*)\n\s*\1$", re.DOTALL)


def _text(expression: str) -> str:
    """The value of a literal string expression (quoted or heredoc), on one line."""
    heredoc = _HEREDOC.match(expression)
    if heredoc:
        return " ".join(textwrap.dedent(heredoc.group(2)).split())
    return json.loads(expression)


def _code(expression: str) -> str:
    compact = " ".join(expression.split())
    return f"`{compact}`".replace("|", "\\|")


def _blocks(module: Path, kind: str) -> list[Block]:
    return [
        block
        for path in sorted(module.glob("*.tf"))
        for block in parse_file(path).blocks
        if block.type == kind
    ]


def render(module: Path) -> str:
    """The markdown that belongs between the markers."""
    lines = ["## Inputs", "", "| Name | Description | Type | Default |", "|---|---|---|---|"]
    for variable in _blocks(module, "variable"):
        attrs = variable.attributes
        default = _code(attrs["default"].expression) if "default" in attrs else "required"
        lines.append(
            f"| `{variable.labels[0]}` | {_text(attrs['description'].expression)} "
            f"| {_code(attrs['type'].expression)} | {default} |"
        )
    lines += ["", "## Outputs", "", "| Name | Description |", "|---|---|"]
    for output in _blocks(module, "output"):
        description = _text(output.attributes["description"].expression)
        lines.append(f"| `{output.labels[0]}` | {description} |")
    return "\n".join(lines)


def update(module: Path, check: bool) -> bool:
    """Rewrite (or, with ``check``, compare) the README; True when it was already current."""
    readme = module / "README.md"
    text = readme.read_text()
    start, end = text.index(BEGIN) + len(BEGIN), text.index(END)
    current = text[start:end]
    wanted = f"\n{render(module)}\n"
    if current == wanted:
        return True
    if not check:
        readme.write_text(text[:start] + wanted + text[end:])
    return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("modules", nargs="+", type=Path)
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args(argv)
    stale = [m for m in args.modules if not update(m, args.check)]
    for module in stale:
        verb = "is out of date: run python -m scripts.terraform.docs" if args.check else "updated"
        print(f"{module / 'README.md'} {verb}")
    return 1 if stale and args.check else 0


if __name__ == "__main__":
    sys.exit(main())
