"""The model-distribution function: publish, promote, rollback, status and refresh as events.

The retraining pipeline invokes it after a candidate passes its evaluation gate; an EventBridge
schedule invokes it daily with no action, which means ``refresh`` (re-sign manifests and rollback
directives before they expire, so devices never see a frozen feed). Operators use the same
operations through ``edgescribe model ...``; both call ``functions.distribution.service``.

Events (JSON)::

    {"action": "publish", "source_bucket": "...", "source_prefix": "candidates/run-42/"}
    {"action": "promote", "channel": "canary", "version": 7, "rollout_percent": 10, "reason": "..."}
    {"action": "rollback", "channel": "canary", "reason": "CER regression on device fleet"}
    {"action": "status"}
    {"action": "refresh"}
    {"action": "advance"}                      # every active training job one step (scheduled)
    {"action": "advance", "job_id": "retrain-2026-11-25"}

``advance`` is the learning loop's promotion decision (``functions.learning.promotion``): a
candidate that passed its gate goes to shadow, then canary, then stable — or is rejected and
rolled back. Its schedule (``ADVANCE_SCHEDULE``) sends it; ``edgescribe loop run-once`` does the same.

A malformed event raises ``InvalidEventError`` naming the problem; the invocation fails visibly.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, TypeAdapter, ValidationError

from functions.distribution.channels import Channel
from functions.distribution.service import service_from_environment

FUNCTION_ACTOR = "edgescribe-model-distribution"
#: The schedule whose runs advance candidates (``infra.program.SCHEDULED_FUNCTIONS``); any other
#: schedule, such as the daily one, means ``refresh``.
ADVANCE_SCHEDULE = "advance-candidates"


class InvalidEventError(ValueError):
    """The event is not one of the documented shapes."""


class PublishEvent(BaseModel):
    action: Literal["publish"]
    source_bucket: str
    #: A folder holding ``model.onnx`` and ``manifest.json`` (a training job's output).
    source_prefix: str
    version: int | None = Field(default=None, ge=1)


class PromoteEvent(BaseModel):
    action: Literal["promote"]
    channel: Channel
    version: int = Field(ge=1)
    rollout_percent: float | None = Field(default=None, ge=0, le=100)
    name: str | None = None
    reason: str = ""
    actor: str = FUNCTION_ACTOR


class RollbackEvent(BaseModel):
    action: Literal["rollback"]
    channel: Channel
    to_version: int | None = Field(default=None, ge=1)
    reason: str = ""
    actor: str = FUNCTION_ACTOR


class StatusEvent(BaseModel):
    action: Literal["status"]


class RefreshEvent(BaseModel):
    action: Literal["refresh"]


class AdvanceEvent(BaseModel):
    action: Literal["advance"]
    #: One job; by default every active one.
    job_id: str | None = None


DistributionEvent = Annotated[
    PublishEvent | PromoteEvent | RollbackEvent | StatusEvent | RefreshEvent | AdvanceEvent,
    Field(discriminator="action"),
]
_EVENT = TypeAdapter(DistributionEvent)


def parse_event(
    event: Any,
) -> PublishEvent | PromoteEvent | RollbackEvent | StatusEvent | RefreshEvent | AdvanceEvent:
    if isinstance(event, dict) and "action" not in event:
        # schedules (EventBridge) send {"source": "edgescribe.schedule", "schedule": <name>}
        if event.get("schedule") == ADVANCE_SCHEDULE:
            return AdvanceEvent(action="advance")
        return RefreshEvent(action="refresh")
    try:
        return _EVENT.validate_python(event)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "event"
        raise InvalidEventError(f"invalid distribution event: {where}: {first['msg']}") from exc


def handler(event: Any, context: Any = None) -> dict[str, Any]:
    request = parse_event(event)
    service = service_from_environment()
    if isinstance(request, PublishEvent):
        with tempfile.TemporaryDirectory(prefix="edgescribe-publish-") as folder:
            model_dir = _download_candidate(request, Path(folder))
            published = service.publish(model_dir, version=request.version)
        return {"action": "publish", **published.__dict__, "expires_at": str(published.expires_at)}
    if isinstance(request, PromoteEvent):
        state = service.promote(
            request.channel,
            request.version,
            actor=request.actor,
            rollout_percent=request.rollout_percent,
            name=request.name,
            reason=request.reason,
        )
        return {"action": "promote", "state": state.model_dump(mode="json")}
    if isinstance(request, RollbackEvent):
        states = service.rollback(
            request.channel,
            actor=request.actor,
            to_version=request.to_version,
            reason=request.reason,
        )
        return {"action": "rollback", "states": [s.model_dump(mode="json") for s in states]}
    if isinstance(request, AdvanceEvent):
        from functions.learning.promotion import advance_jobs_from_environment

        decisions = advance_jobs_from_environment(service, job_id=request.job_id)
        return {"action": "advance", "decisions": [d.as_dict() for d in decisions]}
    if isinstance(request, RefreshEvent):
        return {"action": "refresh", "refreshed": service.refresh(actor=FUNCTION_ACTOR)}
    return {"action": "status", "status": service.status().model_dump(mode="json")}


def _download_candidate(request: PublishEvent, folder: Path) -> Path:
    """Copy ``model.onnx`` and ``manifest.json`` from the candidate's folder into ``folder``."""
    from botocore.exceptions import ClientError

    from functions.common.aws_clients import s3_client

    prefix = request.source_prefix.rstrip("/") + "/"
    s3 = s3_client()
    for filename in ("manifest.json", "model.onnx"):
        try:
            s3.download_file(request.source_bucket, prefix + filename, str(folder / filename))
        except ClientError as exc:
            raise InvalidEventError(
                f"cannot read s3://{request.source_bucket}/{prefix}{filename}: "
                f"{exc.response.get('Error', {}).get('Code', 'error')}"
            ) from exc
    return folder
