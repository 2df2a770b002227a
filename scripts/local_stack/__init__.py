"""The local AWS stack: strict S3, DynamoDB, SQS, executing Step Functions and a JWT issuer.

``python -m scripts.local_stack up|down|status|token`` from the command line; tests and the demo use
:class:`LocalStack` and the :class:`StackInfo` it returns.
"""

from .config import ResourceConfig, StackInfo
from .processes import StackStartError
from .stack import DEFAULT_STATE_DIR, LocalStack

__all__ = ["DEFAULT_STATE_DIR", "LocalStack", "ResourceConfig", "StackInfo", "StackStartError"]
