"""The ``context`` object Lambda passes a handler, for running handlers on one machine.

powertools reads ``function_name``, ``memory_limit_in_mb``, ``invoked_function_arn`` and
``aws_request_id`` (Logger) and ``get_remaining_time_in_millis`` (idempotency: an in-progress record
expires when the invocation would have timed out, so a crashed run does not block retries forever).
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field


@dataclass
class LocalLambdaContext:
    """A fresh one per invocation; ``timeout_seconds`` is the function's configured timeout."""

    function_name: str = "edgescribe-local-function"
    timeout_seconds: float = 900.0
    memory_limit_in_mb: int = 3008
    function_version: str = "$LATEST"
    region: str = "us-east-1"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    _started: float = field(default_factory=time.monotonic, repr=False)

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:{self.region}:000000000000:function:{self.function_name}"

    @property
    def log_group_name(self) -> str:
        return f"/aws/lambda/{self.function_name}"

    @property
    def log_stream_name(self) -> str:
        return f"local/{self.aws_request_id}"

    def get_remaining_time_in_millis(self) -> int:
        elapsed = time.monotonic() - self._started
        return max(0, int((self.timeout_seconds - elapsed) * 1000))
