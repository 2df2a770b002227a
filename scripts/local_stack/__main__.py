"""Command line for the local stack: ``python -m scripts.local_stack up|down|status|env|token``."""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

from .config import StackInfo
from .processes import StackStartError
from .product import ProductInfo
from .stack import LocalStack, default_state_dir


def shell_exports(info: StackInfo) -> str:
    """``export`` lines for the stack (a local emulator's key pair, nothing real) and, when the
    product runs, its API URL and batch state machine for the ``multitalk`` CLI."""
    values = dict(info.env())
    running = ProductInfo.read(info.state_dir)
    if running is not None:
        values["MULTITALK_API_URL"] = running.api_url
        values["MULTITALK_STATE_MACHINE_ARN"] = running.state_machine_arn
    return "\n".join(f"export {name}={shlex.quote(value)}" for name, value in values.items())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scripts.local_stack", description=__doc__)
    parser.add_argument("--state-dir", type=Path, default=None, help="default: .local/stack")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("up", help="start every part and provision resources (idempotent)")
    commands.add_parser("down", help="stop every process the stack started; keep its data")
    commands.add_parser("status", help="print the running stack's endpoints as JSON")
    commands.add_parser(
        "env",
        help="print `export` lines that point the AWS CLI and SDKs (and the multitalk CLI) "
        "at the running stack and product",
    )
    token = commands.add_parser("token", help="mint a development JWT")
    token.add_argument("--tenant", required=True)
    token.add_argument(
        "--scope",
        action="append",
        dest="scopes",
        help="repeatable; default: videos:read and videos:write",
    )
    token.add_argument("--lifetime", type=int, default=3600, help="seconds (default 3600)")
    args = parser.parse_args(argv)

    stack = LocalStack(args.state_dir or default_state_dir())
    if args.command == "up":
        started = time.monotonic()
        try:
            info = stack.up()
        except StackStartError as error:
            print(error, file=sys.stderr)
            return 1
        print(info.model_dump_json(indent=2, exclude={"s3_secret_key"}))
        print(f"local stack ready in {time.monotonic() - started:.1f} s", file=sys.stderr)
        return 0
    if args.command == "down":
        stopped = stack.down()
        print(f"stopped: {', '.join(stopped) or 'nothing was running'}", file=sys.stderr)
        return 0
    info = stack.info()
    if info is None:
        print("local stack is not running (python -m scripts.local_stack up)", file=sys.stderr)
        return 1
    if args.command == "status":
        print(info.model_dump_json(indent=2, exclude={"s3_secret_key"}))
        return 0
    if args.command == "env":
        print(shell_exports(info))
        return 0
    scopes = args.scopes or ["videos:read", "videos:write"]
    print(info.mint_token(args.tenant, scopes, exp=int(time.time()) + args.lifetime))
    return 0


if __name__ == "__main__":
    sys.exit(main())
