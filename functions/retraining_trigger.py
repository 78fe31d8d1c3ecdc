"""The retraining-trigger function: feedback → assessments → (maybe) one training job per window.

Events (JSON)::

    {"source": "edgescribe.schedule", "schedule": "retraining"}   EventBridge Scheduler (infra)
    {"source": "aws.events", "detail-type": "Scheduled Event", ...} an EventBridge rule
    {}  or  {"action": "run"}                                       the same, by hand
    {"force": true}                                                 start a job even below the
                                                                    thresholds (still one per window)
    {"action": "ingest"}                                            assess new feedback, decide nothing

Anything else raises ``InvalidTriggerEventError`` naming the problem, so the invocation fails
visibly (after Lambda's retries the event lands in the schedules' dead-letter queue).

The work is ``functions.learning.trigger.run_trigger``; this module parses the event, reads names
and thresholds from the environment, picks the launcher (SageMaker when infra configured a training
image, else a local process), and returns the run's summary as JSON. No torch, no numpy: it runs in
the small control image.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from pydantic import BaseModel, ConfigDict, StrictBool, ValidationError

from functions.common import aws_clients
from functions.common.environment import resource_name
from functions.learning.launchers import launcher_from_environment
from functions.learning.trigger import TriggerPolicy, TriggerRun, run_trigger

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

SERVICE = "retraining-trigger"
METRICS_NAMESPACE = "EdgeScribe"
#: ``source`` values of scheduled invocations (the Scheduler's input, an EventBridge rule's event).
SCHEDULE_SOURCES = frozenset({"edgescribe.schedule", "aws.events"})

logger = Logger(service=SERVICE)
metrics = Metrics(namespace=METRICS_NAMESPACE, service=SERVICE)


class InvalidTriggerEventError(ValueError):
    """The event is not one of the documented shapes."""


class TriggerEvent(BaseModel):
    model_config = ConfigDict(extra="forbid")

    action: Literal["run", "ingest"] = "run"
    force: StrictBool = False


def parse_event(event: Any) -> TriggerEvent:
    if not isinstance(event, dict):
        raise InvalidTriggerEventError(
            f"invalid retraining event: expected a JSON object, got {type(event).__name__}"
        )
    if event.get("source") in SCHEDULE_SOURCES:
        return TriggerEvent()
    try:
        request = TriggerEvent.model_validate(event)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "event"
        raise InvalidTriggerEventError(
            f"invalid retraining event: {where}: {first['msg']}"
        ) from exc
    if request.force and request.action == "ingest":
        raise InvalidTriggerEventError(
            "invalid retraining event: force applies to action 'run', not 'ingest'"
        )
    return request


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(event: Any, context: LambdaContext) -> dict[str, Any]:
    try:
        request = parse_event(event)
    except InvalidTriggerEventError:
        metrics.add_metric(name="InvalidEvents", unit=MetricUnit.Count, value=1)
        raise
    run = run_trigger(
        aws_clients.s3_client(),
        feedback_bucket=resource_name("FEEDBACK_BUCKET"),
        models_bucket=resource_name("MODELS_BUCKET"),
        recordings_bucket=resource_name("RECORDINGS_BUCKET"),
        launcher=launcher_from_environment(),
        now=datetime.now(UTC),
        policy=TriggerPolicy.from_environment(),
        force=request.force,
        ingest_only=request.action == "ingest",
    )
    _record_metrics(run)
    summary: dict[str, Any] = run.model_dump(mode="json")
    summary["action"] = request.action
    logger.info("retraining trigger run", extra={"summary": summary})
    return summary


def _record_metrics(run: TriggerRun) -> None:
    if run.ingest is not None:
        for name, value in (
            ("FeedbackAssessed", run.ingest.assessed),
            ("FeedbackAccepted", run.ingest.accepted),
            ("FeedbackRejected", run.ingest.rejected),
        ):
            metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
    metrics.add_metric(name="TrainingJobsStarted", unit=MetricUnit.Count, value=int(bool(run.job)))
    if run.settled:
        metrics.add_metric(name="TrainingJobsLost", unit=MetricUnit.Count, value=len(run.settled))
