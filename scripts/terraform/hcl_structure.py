"""The block/attribute structure of HCL native syntax, without evaluating any expression.

The schema lint needs to know, for every resource, which names are written as attributes
(``name = expr``) and which as nested blocks (``name { ... }``), with line numbers. Expression
parsers either blur that difference (python-hcl2 wraps both in lists) or evaluate the config and
drop resources whose ``count`` is 0 (tfparse), so this module reads only the structure: it
skips each expression by tracking brackets, quoted templates, heredocs and comments.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass, field
from pathlib import Path

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
_HEREDOC = re.compile(r"<<-?([A-Za-z_][A-Za-z0-9_-]*)[ \t]*\r?\n")
_OPEN = "([{"
_CLOSE = ")]}"


class HclSyntaxError(ValueError):
    """The file is not structurally valid HCL."""


@dataclass
class Attribute:
    name: str
    line: int
    expression: str = ""
    """The expression's source text, unevaluated (for checks on how values are wired)."""


@dataclass
class Block:
    type: str
    labels: list[str]
    line: int
    attributes: dict[str, Attribute] = field(default_factory=dict)
    blocks: list[Block] = field(default_factory=list)


class _Scanner:
    def __init__(self, text: str, filename: str) -> None:
        self.text = text
        self.filename = filename
        self.pos = 0
        self._newlines = [i for i, c in enumerate(text) if c == "\n"]

    def line(self, pos: int | None = None) -> int:
        return bisect.bisect_left(self._newlines, self.pos if pos is None else pos) + 1

    def error(self, message: str) -> HclSyntaxError:
        return HclSyntaxError(f"{self.filename}:{self.line()}: {message}")

    def peek(self, n: int = 1) -> str:
        return self.text[self.pos : self.pos + n]

    def at_end(self) -> bool:
        return self.pos >= len(self.text)

    def skip_comment(self) -> bool:
        if self.peek() == "#" or self.peek(2) == "//":
            end = self.text.find("\n", self.pos)
            self.pos = len(self.text) if end < 0 else end
            return True
        if self.peek(2) == "/*":
            end = self.text.find("*/", self.pos + 2)
            if end < 0:
                raise self.error("unterminated /* comment")
            self.pos = end + 2
            return True
        return False

    def skip_space(self, newlines: bool) -> None:
        while not self.at_end():
            c = self.peek()
            if c in " \t\r" or (newlines and c == "\n"):
                self.pos += 1
            elif not self.skip_comment():
                return

    def identifier(self) -> str | None:
        match = _IDENT.match(self.text, self.pos)
        if match is None:
            return None
        self.pos = match.end()
        return match.group()

    def skip_quoted(self) -> str:
        """Skip a quoted template starting at ``"``; return its raw text."""
        start = self.pos
        self.pos += 1
        while not self.at_end():
            c = self.peek()
            if c == "\\":
                self.pos += 2
            elif c == '"':
                self.pos += 1
                return self.text[start + 1 : self.pos - 1]
            elif self.peek(3) in ("$${", "%%{"):
                self.pos += 3
            elif self.peek(2) in ("${", "%{"):
                self.pos += 2
                self.skip_interpolation()
            elif c == "\n":
                raise self.error("newline inside a quoted string")
            else:
                self.pos += 1
        raise self.error("unterminated string")

    def skip_interpolation(self) -> None:
        depth = 1
        while not self.at_end():
            c = self.peek()
            if c == '"':
                self.skip_quoted()
                continue
            if c == "{":
                depth += 1
            elif c == "}":
                depth -= 1
                if depth == 0:
                    self.pos += 1
                    return
            self.pos += 1
        raise self.error("unterminated ${ interpolation")

    def skip_heredoc(self) -> bool:
        match = _HEREDOC.match(self.text, self.pos)
        if match is None:
            return False
        marker = match.group(1)
        self.pos = match.end()
        while not self.at_end():
            end = self.text.find("\n", self.pos)
            end = len(self.text) if end < 0 else end
            if self.text[self.pos : end].strip() == marker:
                self.pos = end
                return True
            self.pos = end + 1
        raise self.error(f"unterminated heredoc <<{marker}")

    def skip_expression(self) -> None:
        """Skip to the end of an attribute's expression: a newline (or a closing ``}`` of the
        enclosing one-line block) outside any bracket."""
        stack: list[str] = []
        while not self.at_end():
            c = self.peek()
            if c == '"':
                self.skip_quoted()
            elif self.skip_heredoc() or self.skip_comment():
                continue
            elif c in _OPEN:
                stack.append(_CLOSE[_OPEN.index(c)])
                self.pos += 1
            elif c in _CLOSE:
                if not stack:
                    if c == "}":
                        return
                    raise self.error(f"unbalanced {c!r}")
                if stack.pop() != c:
                    raise self.error(f"mismatched {c!r}")
                self.pos += 1
            elif c == "\n" and not stack:
                return
            else:
                self.pos += 1
        if stack:
            raise self.error("unclosed bracket at end of file")


def _parse_body(scan: _Scanner, body: Block, closing: bool) -> None:
    while True:
        scan.skip_space(newlines=True)
        if scan.at_end():
            if closing:
                raise scan.error(f"block {body.type!r} opened at line {body.line} is not closed")
            return
        if scan.peek() == "}":
            if not closing:
                raise scan.error("unexpected '}'")
            scan.pos += 1
            return
        line = scan.line()
        name = scan.identifier()
        if name is None:
            raise scan.error(f"expected an argument or block name, found {scan.peek()!r}")
        scan.skip_space(newlines=False)
        if scan.peek() == "=" and scan.peek(2) != "==":
            scan.pos += 1
            if name in body.attributes:
                raise scan.error(f"argument {name!r} is set twice")
            start = scan.pos
            scan.skip_expression()
            body.attributes[name] = Attribute(name, line, scan.text[start : scan.pos].strip())
            continue
        labels: list[str] = []
        while scan.peek() != "{":
            if scan.peek() == '"':
                labels.append(scan.skip_quoted())
            elif (label := scan.identifier()) is not None:
                labels.append(label)
            else:
                raise scan.error(f"expected '=' or '{{' after {name!r}")
            scan.skip_space(newlines=False)
        scan.pos += 1
        block = Block(name, labels, line)
        _parse_body(scan, block, closing=True)
        body.blocks.append(block)


def parse(text: str, filename: str = "<string>") -> Block:
    """The structure of one HCL file, as a root block whose ``blocks`` are the top-level ones."""
    root = Block("<file>", [filename], 1)
    _parse_body(_Scanner(text, filename), root, closing=False)
    return root


def parse_file(path: Path) -> Block:
    return parse(path.read_text(), str(path))
