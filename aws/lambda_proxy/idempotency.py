"""Powertools idempotency on the DynamoDB idempotency table, shared by the submit path
(``Idempotency-Key``) and the callback handler (``webhook-id``).

Handlers call :func:`register_lambda_context` on every invocation so powertools knows the time
left: a record stuck "in progress" by a Lambda that timed out then expires with that
invocation instead of blocking retries for the whole record lifetime.

Powertools' idempotency utility (and boto3 with it) is imported by :func:`make_idempotent`, when
a route first needs it: reads and the cold import never do.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.idempotency import (
        IdempotencyConfig,
        IdempotentHookFunction,
    )
    from aws_lambda_powertools.utilities.typing import LambdaContext

    from aws.lambda_proxy.services import Services

_configs: list[IdempotencyConfig] = []
_context: LambdaContext | None = None


def make_idempotent(
    services: Services,
    function: Callable[..., Any],
    *,
    data_keyword_argument: str,
    key_jmespath: str,
    validation_jmespath: str = "",
    expires_after_seconds: int,
    response_hook: IdempotentHookFunction | None = None,
) -> Callable[..., Any]:
    """``function`` made idempotent on the key ``key_jmespath`` selects from its data argument."""
    from aws_lambda_powertools.utilities.idempotency import (
        DynamoDBPersistenceLayer,
        IdempotencyConfig,
        idempotent_function,
    )

    persistence = DynamoDBPersistenceLayer(
        table_name=services.settings.idempotency_table_name, boto3_client=services.dynamodb
    )
    config = IdempotencyConfig(
        event_key_jmespath=key_jmespath,
        payload_validation_jmespath=validation_jmespath,
        expires_after_seconds=expires_after_seconds,
        raise_on_no_idempotency_key=True,
        response_hook=response_hook,
        lambda_context=_context,
    )
    _configs.append(config)
    return idempotent_function(
        function,
        data_keyword_argument=data_keyword_argument,
        persistence_store=persistence,
        config=config,
    )


def register_lambda_context(context: LambdaContext) -> None:
    """Tell every idempotent function about the current invocation."""
    global _context
    _context = context
    for config in _configs:
        config.register_lambda_context(context)
