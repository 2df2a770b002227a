"""moto server for DynamoDB, SQS, Step Functions and Secrets Manager, with five adjustments.

1. Step Functions executes definitions for real (``execute_state_machine``), instead of returning
   canned histories.
2. ``SendTaskFailure`` passes its ``cause`` on to the waiting task (moto 5.2.5 drops it), so a
   Catch sees the same ``{"Error", "Cause"}`` it would see on AWS.
3. A task whose ``HeartbeatSeconds`` pass without a heartbeat fails with
   ``States.HeartbeatTimeout``, as on AWS (moto 5.2.5 reports ``States.Timeout``).
4. Step Functions' own S3 calls (Distributed Map ``ItemReader``/``ResultWriter``, ``aws-sdk:s3``
   tasks) go to the strict S3 emulator with real SigV4 credentials, so a batch reads the very
   objects the API wrote and its results land where callers look. moto's engine would otherwise
   read moto's own (empty, unsigned) S3.
5. DynamoDB writes are serialized, as DynamoDB applies each conditional write and transaction
   atomically: moto's threaded server checks a condition and then writes, so two concurrent
   requests could both pass ``active < :limit`` (seen: 4 jobs admitted under a limit of 3).

Run as a process by :mod:`scripts.local_stack.stack`; S3 credentials arrive by environment, never
on the command line (where ``ps`` would show them).
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import pkgutil
import sys
from pathlib import Path
from typing import Any


def _redirect_step_functions_s3(endpoint: str, access_key: str, secret_key: str) -> None:
    import boto3
    from botocore.config import Config
    from moto.stepfunctions import parser as sfn_parser
    from moto.stepfunctions.parser.asl.utils import boto_client as moto_boto_client

    original = moto_boto_client.boto_client_for

    def boto_client_for(region: str, service: str, state_credentials: Any = None) -> Any:
        if service != "s3":
            return original(region=region, service=service, state_credentials=state_credentials)
        return boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name=region,
            aws_access_key_id=access_key,
            aws_secret_access_key=secret_key,
            config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
        )

    # Modules bind the function by name at import, so rebind it in every module that imports it
    # (found by source, because importing the whole parser package fails on optional modules).
    for module_info in pkgutil.walk_packages(sfn_parser.__path__, sfn_parser.__name__ + "."):
        spec = importlib.util.find_spec(module_info.name)
        if spec is None or spec.origin is None or not spec.origin.endswith(".py"):
            continue
        if "import boto_client_for" not in Path(spec.origin).read_text():
            continue
        module = importlib.import_module(module_info.name)
        if getattr(module, "boto_client_for", None) is original:
            module.boto_client_for = boto_client_for  # type: ignore[attr-defined]


def _keep_task_failure_cause() -> None:
    from moto.core.responses import EmptyResult
    from moto.stepfunctions.responses import StepFunctionResponse

    def send_task_failure(self: StepFunctionResponse) -> EmptyResult:
        self.stepfunction_backend.send_task_failure(  # type: ignore[call-arg]
            self._get_param("taskToken"),
            error=self._get_param("error"),
            cause=self._get_param("cause"),
        )
        return EmptyResult()

    StepFunctionResponse.send_task_failure = send_task_failure  # type: ignore[method-assign]


def _name_heartbeat_timeouts() -> None:
    from moto.stepfunctions.parser.api import HistoryEventType, TaskTimedOutEventDetails
    from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import (
        FailureEvent,
    )
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import (
        StatesErrorName,
    )
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import (
        StatesErrorNameType,
    )
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
        state_task_service_callback as callback_service,
    )
    from moto.stepfunctions.parser.asl.eval.callback.callback import HeartbeatTimeoutError
    from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails

    service = callback_service.StateTaskServiceCallback
    original = service._from_error

    def _from_error(self: Any, env: Any, ex: Exception) -> Any:
        if not isinstance(ex, HeartbeatTimeoutError):
            return original(self, env=env, ex=ex)
        name = StatesErrorNameType.StatesHeartbeatTimeout
        return FailureEvent(
            env=env,
            error_name=StatesErrorName(typ=name),
            event_type=HistoryEventType.TaskTimedOut,
            event_details=EventDetails(
                taskTimedOutEventDetails=TaskTimedOutEventDetails(
                    resourceType=self._get_sfn_resource_type(),
                    resource=self._get_sfn_resource(),
                    error=name.to_name(),
                )
            ),
        )

    service._from_error = _from_error  # type: ignore[method-assign]


def _serialize_dynamodb_writes() -> None:
    import functools
    import threading

    from moto.dynamodb.models import DynamoDBBackend

    lock = threading.RLock()
    for name in ("put_item", "update_item", "delete_item", "transact_write_items"):
        original = getattr(DynamoDBBackend, name)

        @functools.wraps(original)
        def locked(*args: Any, _original: Any = original, **kwargs: Any) -> Any:
            with lock:
                return _original(*args, **kwargs)

        setattr(DynamoDBBackend, name, locked)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)

    os.environ["MOTO_PORT"] = str(args.port)
    from moto.core.config import default_user_config
    from moto.server import main as moto_main

    default_user_config["stepfunctions"]["execute_state_machine"] = True
    _keep_task_failure_cause()
    _name_heartbeat_timeouts()
    _serialize_dynamodb_writes()
    _redirect_step_functions_s3(
        endpoint=os.environ["LOCAL_S3_ENDPOINT"],
        access_key=os.environ["LOCAL_S3_ACCESS_KEY"],
        secret_key=os.environ["LOCAL_S3_SECRET_KEY"],
    )
    sys.stdout.flush()
    moto_main(["-H", "127.0.0.1", "-p", str(args.port)])


if __name__ == "__main__":
    main()
