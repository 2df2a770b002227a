"""The SQS -> Lambda event source mapping, for the local stack.

AWS delivers the batch queue's messages to the ``batch_submit`` function in batches of up to ten,
and with ``ReportBatchItemFailures`` deletes every message the function did not list in
``batchItemFailures``; the rest become visible again after the visibility timeout and are
redelivered (then dead-lettered after ``maxReceiveCount``). :class:`SqsEventSource` does the same
against the local SQS, calling the real handler in process.

``python -m scripts.local_stack.sqs_event_source --queue-url URL --handler module.function`` runs
it as a process of the local product, long-polling until SIGTERM; tests drive
:meth:`SqsEventSource.poll` themselves.
"""

from __future__ import annotations

import argparse
import logging
import signal
import threading
from typing import Any

import boto3
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError

from .gateway import Handler, LambdaContext, load_handler

logger = logging.getLogger("sqs-event-source")
READY_LINE = "delivering messages"


class SqsEventSource:
    """Receives from one queue and hands each batch to ``handler`` as an SQS event."""

    def __init__(self, sqs: Any, queue_url: str, handler: Handler, function_name: str) -> None:
        self.sqs = sqs
        self.queue_url = queue_url
        self.handler = handler
        self.function_name = function_name
        self.region = sqs.meta.region_name
        self.queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]

    def poll(self, wait_s: int = 1) -> int:
        """Deliver one batch of messages to the handler; returns how many it processed."""
        answer = self.sqs.receive_message(
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=10,
            WaitTimeSeconds=wait_s,
            AttributeNames=["All"],
        )
        messages = answer.get("Messages", [])
        if not messages:
            return 0
        event = {"Records": [self._record(message) for message in messages]}
        try:
            result = self.handler(event, LambdaContext(function_name=self.function_name))
            failed = {entry["itemIdentifier"] for entry in result["batchItemFailures"]}
        except BatchProcessingError:
            # Every record failed: the invocation errors and SQS redelivers them all.
            failed = {message["MessageId"] for message in messages}
        for message in messages:
            if message["MessageId"] not in failed:
                self.sqs.delete_message(
                    QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"]
                )
        return len(messages) - len(failed)

    def run(self, stop: threading.Event, wait_s: int = 2) -> None:
        """Poll until ``stop`` is set; a failing poll is logged and retried, as AWS would."""
        while not stop.is_set():
            try:
                self.poll(wait_s)
            except Exception:
                logger.exception("delivery to %s failed; polling on", self.function_name)
                stop.wait(1.0)

    def _record(self, message: dict[str, Any]) -> dict[str, Any]:
        return {
            "messageId": message["MessageId"],
            "receiptHandle": message["ReceiptHandle"],
            "body": message["Body"],
            "attributes": message.get("Attributes", {}),
            "messageAttributes": {},
            "md5OfBody": message["MD5OfBody"],
            "eventSource": "aws:sqs",
            "eventSourceARN": self.queue_arn,
            "awsRegion": self.region,
        }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queue-url", required=True)
    parser.add_argument("--handler", required=True, help="package.module.function")
    parser.add_argument("--function-name", default="batch-submit")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    source = SqsEventSource(
        boto3.client("sqs"), args.queue_url, load_handler(args.handler), args.function_name
    )
    logger.info("%s from %s to %s", READY_LINE, args.queue_url, args.handler)
    source.run(stop)


if __name__ == "__main__":
    main()
