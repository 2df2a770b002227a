"""The batch on the local stack: real internal API (held runner), real gateway and Lambdas."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from aws.lambda_proxy.services import set_services
from aws.step_functions.handlers import batch_submit
from modal_service.api.app import create_app as create_internal_api
from modal_service.config import ServiceSettings
from scripts.local_stack import StackInfo
from scripts.local_stack.gateway import create_app as create_gateway
from scripts.local_stack.processes import free_port
from scripts.local_stack.product import lambda_environment
from scripts.local_stack.sqs_event_source import SqsEventSource

from .harness import HeldRunner, ServerThread, WorkerStandIn

pytestmark = pytest.mark.stack


@dataclass
class BatchWorld:
    stack: StackInfo
    runner: HeldRunner
    worker: WorkerStandIn
    queue: SqsEventSource
    gateway_url: str


@pytest.fixture(scope="module")
def world(stack: StackInfo) -> Iterator[BatchWorld]:
    """Environment as Terraform sets it on the Lambdas; handlers run in this process."""
    # A queue of its own: the local product's event source consumes the stack's batch queue.
    sqs = stack.client("sqs")
    queue_url = sqs.create_queue(QueueName=f"batch-submit-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    runner = HeldRunner()
    token = json.loads((stack.state_dir / "secrets.json").read_text())["modal_proxy_token"]
    settings = ServiceSettings.model_validate(
        {
            "mode": "local",
            "local_proxy_key": token["token_id"],
            "local_proxy_secret": token["token_secret"],
        }
    )
    internal = ServerThread(create_internal_api(settings, runner), free_port())
    gateway = ServerThread(create_gateway(), free_port())
    environment = lambda_environment(stack, api_url=gateway.url, internal_api_url=internal.url)
    with pytest.MonkeyPatch.context() as patch, internal, gateway:
        for name, value in environment.items():
            patch.setenv(name, value)
        set_services(None)
        try:
            yield BatchWorld(
                stack=stack,
                runner=runner,
                worker=WorkerStandIn(),
                queue=SqsEventSource(sqs, queue_url, batch_submit.handler, "batch-submit"),
                gateway_url=gateway.url,
            )
        finally:
            set_services(None)
