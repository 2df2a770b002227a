"""Session-wide fixtures: the local AWS stack starts once per test run and stops at the end."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from scripts.local_stack import LocalStack, StackInfo


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackInfo]:
    """A running local stack in a private state directory (never the developer's own stack)."""
    local_stack = LocalStack(tmp_path_factory.mktemp("local-stack"))
    try:
        yield local_stack.up()
    finally:
        local_stack.down()
