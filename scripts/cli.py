"""``multitalk``: the command line for any deployment of the MultiTalk video API.

It speaks the public API over HTTPS with a JWT (``--api-url``/``--token`` or the environment
variables ``MULTITALK_API_URL``/``MULTITALK_TOKEN``), starts and follows batches through Step
Functions with the caller's own AWS credentials, and drives the local stack for development.
"""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from aws.lambda_proxy.config import PublicModel
from modal_service.contracts import SpeedProfile

app = typer.Typer(help=__doc__, no_args_is_help=True, add_completion=False)
local_app = typer.Typer(help="The local development stack.", no_args_is_help=True)
batch_app = typer.Typer(help="Batches: a whole S3 prefix or manifest.", no_args_is_help=True)
app.add_typer(local_app, name="local")
app.add_typer(batch_app, name="batch")
console = Console()
FINAL_STATES = {"succeeded", "failed", "cancelled"}

ApiUrl = Annotated[str, typer.Option(envvar="MULTITALK_API_URL", help="Base URL of the API")]
Token = Annotated[
    str, typer.Option(envvar="MULTITALK_TOKEN", help="JWT (Bearer)", show_default=False)
]


class ApiError(Exception):
    """A problem+json answer from the API, or no answer at all."""


def _client(api_url: str, token: str) -> httpx.Client:
    return httpx.Client(
        base_url=api_url.rstrip("/"),
        headers={"Authorization": f"Bearer {token}", "User-Agent": "multitalk-cli"},
        timeout=httpx.Timeout(30.0, connect=10.0),
    )


def _call(client: httpx.Client, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
    try:
        response = client.request(method, path, **kwargs)
    except httpx.HTTPError as error:
        raise ApiError(f"cannot reach {client.base_url}: {error}") from error
    body = response.json() if response.content else {}
    if response.is_error:
        code = body.get("code", response.status_code)
        detail = body.get("detail") or body.get("title") or response.text[:300]
        raise ApiError(f"{response.status_code} {code}: {detail}")
    return body


def _fail(error: Exception) -> typer.Exit:
    console.print(f"[red]error:[/red] {error}")
    return typer.Exit(code=1)


def _follow(client: httpx.Client, job_id: str, poll_s: float) -> dict[str, Any]:
    """Poll a job with a progress bar until it reaches a final state."""
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
    )
    with Progress(*columns, TimeElapsedColumn(), console=console, transient=False) as progress:
        task = progress.add_task("queued", total=100)
        while True:
            job = _call(client, "GET", f"/jobs/{job_id}")
            stage = (job.get("progress") or {}).get("stage") or job["status"]
            percent = float((job.get("progress") or {}).get("percent") or 0)
            progress.update(task, description=f"{job['status']}: {stage}", completed=percent)
            if job["status"] in FINAL_STATES:
                if job["status"] == "succeeded":
                    progress.update(task, completed=100)
                return job
            time.sleep(poll_s)


@app.command()
def submit(
    audio: Annotated[list[str], typer.Argument(help="s3:// audio, one per speaker (1 or 2)")],
    output_bucket: Annotated[str, typer.Option(help="Bucket for the MP4")],
    api_url: ApiUrl,
    token: Token,
    image: Annotated[str | None, typer.Option(help="s3:// reference portrait")] = None,
    video: Annotated[
        str | None,
        typer.Option(
            help="s3:// video to dub instead of a portrait (InfiniteTalk models only)",
            show_default=False,
        ),
    ] = None,
    output_prefix: Annotated[str, typer.Option(help="Key prefix for the MP4")] = "",
    filename: Annotated[str | None, typer.Option(help="Defaults to <job_id>.mp4")] = None,
    prompt: Annotated[str | None, typer.Option()] = None,
    resolution: Annotated[str, typer.Option(help="480p or 720p")] = "480p",
    length: Annotated[float, typer.Option(help="Maximum video length in seconds")] = 15.0,
    speed: Annotated[
        SpeedProfile | None,
        typer.Option(
            help="Speed profile: quality (the reference sampler), balanced (cached steps) or "
            "turbo (4 distilled steps); the deployment's default when omitted",
            show_default=False,
        ),
    ] = None,
    audio_type: Annotated[str, typer.Option(help="Two speakers: add or para")] = "add",
    seed: Annotated[int | None, typer.Option()] = None,
    steps: Annotated[int | None, typer.Option(help="Sampling steps")] = None,
    model: Annotated[
        PublicModel,
        typer.Option(
            help="multitalk-14b (a clip-length talking head; two speakers on one portrait), "
            "infinitetalk (long videos, dubbing --video), or tiny / tiny-infinitetalk (noise, "
            "for tests)"
        ),
    ] = "multitalk-14b",
    webhook_url: Annotated[str | None, typer.Option(help="https URL for the result")] = None,
    idempotency_key: Annotated[str | None, typer.Option(help="Makes retries safe")] = None,
    wait: Annotated[bool, typer.Option(help="Follow the job to the end")] = False,
    poll: Annotated[float, typer.Option(help="Seconds between polls with --wait")] = 2.0,
) -> None:
    """Ask for a talking-head video; print the job (and follow it with --wait)."""
    if image and video:
        raise typer.BadParameter(
            "give --image (a portrait) or --video (a video to dub), not both", param_hint="--video"
        )
    request: dict[str, Any] = {
        "input": {
            **({"audio_s3_url": audio[0]} if len(audio) == 1 else {"audio_s3_urls": audio}),
            **({"reference_image_s3_url": image} if image else {}),
            **({"video_s3_url": video} if video else {}),
            **({"prompt": prompt} if prompt else {}),
            **({"audio_type": audio_type} if len(audio) > 1 else {}),
        },
        "output": {
            "s3_bucket": output_bucket,
            "s3_prefix": output_prefix,
            **({"filename": filename} if filename else {}),
        },
        "options": {
            "resolution": resolution,
            "video_length": length,
            "model": model,
            **({"speed": speed} if speed is not None else {}),
            **({"seed": seed} if seed is not None else {}),
            **({"sample_steps": steps} if steps is not None else {}),
            **({"webhook_url": webhook_url} if webhook_url else {}),
        },
    }
    headers = {"Idempotency-Key": idempotency_key or str(uuid.uuid4())}
    try:
        with _client(api_url, token) as client:
            job = _call(client, "POST", "/generate-video", json=request, headers=headers)
            console.print_json(data=job)
            if wait:
                final = _follow(client, job["job_id"], poll)
                console.print_json(data=final)
                if final["status"] != "succeeded":
                    raise typer.Exit(code=1)
    except ApiError as error:
        raise _fail(error) from error


@app.command()
def status(job_id: str, api_url: ApiUrl, token: Token) -> None:
    """Show one job."""
    try:
        with _client(api_url, token) as client:
            console.print_json(data=_call(client, "GET", f"/jobs/{job_id}"))
    except ApiError as error:
        raise _fail(error) from error


@app.command("list")
def list_jobs(
    api_url: ApiUrl,
    token: Token,
    limit: Annotated[int, typer.Option(min=1, max=100)] = 20,
    next_token: Annotated[str | None, typer.Option(help="From the previous page")] = None,
) -> None:
    """List your tenant's jobs, newest first."""
    params: dict[str, Any] = {"limit": limit} | ({"next_token": next_token} if next_token else {})
    try:
        with _client(api_url, token) as client:
            page = _call(client, "GET", "/jobs", params=params)
    except ApiError as error:
        raise _fail(error) from error
    table = Table("job", "status", "created", "output")
    for job in page.get("jobs", []):
        table.add_row(
            job["job_id"], job["status"], str(job.get("created_at", "")), job.get("output_url", "")
        )
    console.print(table)
    if page.get("next_token"):
        console.print(f"more: --next-token {page['next_token']}")


@app.command()
def cancel(job_id: str, api_url: ApiUrl, token: Token) -> None:
    """Cancel a queued or running job."""
    try:
        with _client(api_url, token) as client:
            console.print_json(data=_call(client, "DELETE", f"/jobs/{job_id}"))
    except ApiError as error:
        raise _fail(error) from error


@app.command()
def token(
    tenant: Annotated[str, typer.Option(help="Tenant the token is for")],
    scope: Annotated[list[str] | None, typer.Option(help="Repeatable")] = None,
    lifetime: Annotated[int, typer.Option(help="Seconds")] = 3600,
) -> None:
    """Mint a development token from the local stack's issuer."""
    info = _running_stack()
    typer.echo(
        info.mint_token(
            tenant, scope or ["videos:read", "videos:write"], exp=int(time.time()) + lifetime
        )
    )


def _running_stack() -> Any:
    from scripts.local_stack import LocalStack

    info = LocalStack().info()
    if info is None:
        raise _fail(RuntimeError("the local stack is not running: `multitalk local up`"))
    return info


@local_app.command("up")
def local_up() -> None:
    """Start the local stack (idempotent)."""
    from scripts.local_stack import LocalStack, StackStartError

    try:
        info = LocalStack().up()
    except StackStartError as error:
        raise _fail(error) from error
    console.print_json(info.model_dump_json(exclude={"s3_secret_key"}))


@local_app.command("down")
def local_down() -> None:
    """Stop every process of the local stack; keep its data."""
    from scripts.local_stack import LocalStack

    stopped = LocalStack().down()
    console.print(f"stopped: {', '.join(stopped) or 'nothing was running'}")


@local_app.command("status")
def local_status() -> None:
    """Show the local stack's endpoints."""
    console.print_json(_running_stack().model_dump_json(exclude={"s3_secret_key"}))


def _stepfunctions() -> Any:
    import boto3

    return boto3.client("stepfunctions")


@batch_app.command("start")
def batch_start(
    state_machine_arn: Annotated[str, typer.Option(envvar="MULTITALK_STATE_MACHINE_ARN")],
    input_file: Annotated[Path, typer.Argument(help="JSON input of the batch")],
    name: Annotated[str | None, typer.Option(help="Execution name (idempotent)")] = None,
) -> None:
    """Start a batch execution with your AWS credentials."""
    document = json.loads(input_file.read_text())
    started = _stepfunctions().start_execution(
        stateMachineArn=state_machine_arn,
        name=name or f"batch-{uuid.uuid4().hex[:12]}",
        input=json.dumps(document),
    )
    console.print_json(data={"executionArn": started["executionArn"]})


@batch_app.command("status")
def batch_status(execution_arn: str) -> None:
    """Show a batch execution and its summary once it is done."""
    execution = _stepfunctions().describe_execution(executionArn=execution_arn)
    view = {
        key: execution.get(key) for key in ("status", "startDate", "stopDate", "error", "cause")
    }
    if execution.get("output"):
        view["summary"] = json.loads(execution["output"])
    console.print_json(data=json.loads(json.dumps(view, default=str)))


if __name__ == "__main__":
    app()
