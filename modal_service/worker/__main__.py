"""``python -m modal_service.worker --outcome PATH [--call-id ID]``: one job in a subprocess.

The request (with its callback secret) arrives on stdin, never on the command line or on disk.
The outcome is written atomically to ``--outcome``. SIGTERM asks the job to stop: it reports
itself cancelled and cleans up; the runner kills the process if that takes too long.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from pathlib import Path
from types import FrameType

from pydantic import ValidationError

from modal_service.config import WorkerSettings
from modal_service.contracts import CreateJobRequest
from modal_service.worker.control import JobControl
from modal_service.worker.job import run_job
from modal_service.worker.renderers import RendererCache

MAX_REQUEST_BYTES = 256 * 1024

AWS_CREDENTIAL_VARIABLES = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_SHARED_CREDENTIALS_FILE",
)
"""The worker refuses to start when any of these is set: it must work from URLs alone."""

EXIT_REFUSED = 3


def hide_aws_sdk() -> None:
    """Make boto3/botocore unimportable in this process, as they are in the Modal image.

    Nothing here imports them, but some dependencies load them on their own when installed
    (accelerate does, for its SageMaker commands). A development environment has them for the
    AWS side; the worker process must not carry them either way.
    """
    for name in ("boto3", "botocore"):
        sys.modules[name] = None  # type: ignore[assignment]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m modal_service.worker")
    parser.add_argument("--outcome", type=Path, required=True)
    parser.add_argument("--call-id", default=None)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    log = logging.getLogger("modal_service.worker")

    hide_aws_sdk()
    leaked = [name for name in AWS_CREDENTIAL_VARIABLES if os.environ.get(name)]
    if leaked:
        log.error("refusing to run with AWS credential variables set: %s", ", ".join(leaked))
        return EXIT_REFUSED

    raw = sys.stdin.buffer.read(MAX_REQUEST_BYTES + 1)
    if len(raw) > MAX_REQUEST_BYTES:
        log.error("the job request is larger than %d bytes", MAX_REQUEST_BYTES)
        return EXIT_REFUSED
    try:
        request = CreateJobRequest.model_validate_json(raw)
    except ValidationError as error:
        log.error("invalid job request (%d errors)", error.error_count())
        return EXIT_REFUSED

    settings = WorkerSettings.from_env()
    control = JobControl(request.deadline)

    def on_sigterm(_signum: int, _frame: FrameType | None) -> None:
        control.cancel()

    signal.signal(signal.SIGTERM, on_sigterm)
    renderers = RendererCache(
        weights_dir=settings.weights_dir,
        device=settings.device,
        gpus=settings.gpus_per_container,
    )
    outcome = run_job(
        request, renderers=renderers.get, settings=settings, control=control, call_id=args.call_id
    )
    partial = args.outcome.with_suffix(".partial")
    partial.write_text(outcome.model_dump_json())
    partial.replace(args.outcome)
    return 0


if __name__ == "__main__":
    sys.exit(main())
