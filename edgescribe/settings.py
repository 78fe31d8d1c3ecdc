"""One place for every name the platform uses.

The Pulumi program (`infra/`), the cloud functions (`functions/`) and the local stack
(`edgescribe.local`) all read bucket, queue and table names from here, so the stack that tests run
against on one machine has exactly the shape of the one `pulumi up` creates.

Names are derived from a *stack name* (``local`` on one machine, the Pulumi stack name in the
cloud). At run time a function reads its names from environment variables that infra sets from the
same functions below, so nothing is guessed twice.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

PROJECT = "edgescribe"

#: Hard limits on input audio. The batch path splits long audio into chunks; the synchronous API
#: path only accepts short clips (see ``SYNC_MAX_SECONDS``).
MAX_UPLOAD_BYTES = 200 * 1024 * 1024
MAX_AUDIO_SECONDS = 4 * 60 * 60
SYNC_MAX_SECONDS = 30.0
SYNC_MAX_BYTES = 6 * 1024 * 1024  # API Gateway / Lambda synchronous payload limit

#: Audio the model expects: mono float32 in [-1, 1] at this rate.
SAMPLE_RATE = 16_000

#: SQS: after this many failed receives a message moves to the dead-letter queue.
MAX_RECEIVE_COUNT = 3


@dataclass(frozen=True)
class ResourceNames:
    """Physical names of every bucket, queue and table for one stack."""

    stack: str = "local"
    recordings_bucket: str = field(init=False)
    transcripts_bucket: str = field(init=False)
    models_bucket: str = field(init=False)
    feedback_bucket: str = field(init=False)
    transcription_queue: str = field(init=False)
    transcription_dlq: str = field(init=False)
    idempotency_table: str = field(init=False)
    jobs_table: str = field(init=False)
    devices_table: str = field(init=False)

    def __post_init__(self) -> None:
        prefix = f"{PROJECT}-{self.stack}"
        values = {
            "recordings_bucket": f"{prefix}-recordings",
            "transcripts_bucket": f"{prefix}-transcripts",
            "models_bucket": f"{prefix}-models",
            "feedback_bucket": f"{prefix}-feedback",
            "transcription_queue": f"{prefix}-transcription",
            "transcription_dlq": f"{prefix}-transcription-dlq",
            "idempotency_table": f"{prefix}-idempotency",
            "jobs_table": f"{prefix}-jobs",
            "devices_table": f"{prefix}-devices",
        }
        for name, value in values.items():
            object.__setattr__(self, name, value)

    def as_environment(self) -> dict[str, str]:
        """The environment variables a function reads its names from (set by infra and local)."""
        return {
            "EDGESCRIBE_STACK": self.stack,
            "RECORDINGS_BUCKET": self.recordings_bucket,
            "TRANSCRIPTS_BUCKET": self.transcripts_bucket,
            "MODELS_BUCKET": self.models_bucket,
            "FEEDBACK_BUCKET": self.feedback_bucket,
            "TRANSCRIPTION_QUEUE": self.transcription_queue,
            "IDEMPOTENCY_TABLE": self.idempotency_table,
            "JOBS_TABLE": self.jobs_table,
            "DEVICES_TABLE": self.devices_table,
        }


def names_from_environment() -> ResourceNames:
    """Names for the stack this process runs in (``EDGESCRIBE_STACK``, default ``local``)."""
    return ResourceNames(stack=os.environ.get("EDGESCRIBE_STACK", "local"))


@dataclass(frozen=True)
class TableKeys:
    """Key schema of one DynamoDB table: every attribute named here is a string (``S``).

    The local stack and the Pulumi program both build tables from ``TABLE_KEYS``, and the functions
    read and write items with these attribute names, so a key can never drift between them.
    """

    partition_key: str
    sort_key: str | None = None
    #: Attribute DynamoDB's TTL sweeps expired items by (epoch seconds), if the table has one.
    ttl_attribute: str | None = None


#: Key schemas by the ``ResourceNames`` field that names the table.
#: The idempotency table uses the attribute names of powertools' ``DynamoDBPersistenceLayer``
#: (``id`` and ``expiration``), so its defaults and this schema agree.
TABLE_KEYS: dict[str, TableKeys] = {
    "idempotency_table": TableKeys(partition_key="id", ttl_attribute="expiration"),
    "jobs_table": TableKeys(partition_key="job_id", ttl_attribute="expires_at"),
    "devices_table": TableKeys(partition_key="device_id"),
}


#: One cloud function per handler. Infra names each ``edgescribe-<stack>-<function>``; a CLI that
#: invokes one in the cloud (e.g. model distribution) derives the same name from here.
FUNCTIONS: tuple[str, ...] = (
    "batch-transcription",
    "api",
    "retraining-trigger",
    "model-distribution",
)


def function_name(stack: str, function: str) -> str:
    """Physical name of one cloud function (``function`` is one of ``FUNCTIONS``)."""
    if function not in FUNCTIONS:
        raise ValueError(f"unknown function {function!r}; expected one of {FUNCTIONS}")
    return f"{PROJECT}-{stack}-{function}"
