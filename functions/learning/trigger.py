"""The retraining trigger: decide whether to train, and if so write the job's inputs and start it.

One run (``run_trigger``; the Lambda handler, the local stack's schedule and ``edgescribe loop`` all
call it): ingest new feedback → settle jobs whose runner died → ``decide`` → ``start_job``.

``decide`` is pure. It starts a job when, in this order, none of the refusals apply and one of the
reasons does:

- refused while another job is active (status not in ``FINAL_STATUSES``): ``"job X still running"``;
- refused when this window already has a job (one job per window: ``retrain-<window>``);
- refused without a base model (nothing published) or without new trainable corrections;
- started when forced, when ``min_new_corrections`` new trainable corrections wait, or on drift:
  the mean CER of corrections accepted since the last job is at least ``drift_cer`` over at least
  ``min_drift_samples`` of them.

"New" means accepted, trainable (has audio) and not yet *consumed*: every job lists the feedback ids
it used in its ``finetune.jsonl`` / ``distill.jsonl`` / ``domain-eval.jsonl``, and consumed is their
union over all jobs that have a ``job.json`` (so nothing is trained on twice, and a window whose
start crashed half-way releases its examples to the next window).

``start_job`` writes, in order: ``spec.json`` with ``If-None-Match: *`` (the claim on the window: of
two concurrent runs only one gets past it), the data manifests, ``job.json`` (status ``started``,
also create-only), then launches and records the runner. A launch that fails marks the job
``failed`` with the reason. A crash between the claim and ``job.json`` leaves the window without a
job; the next window starts afresh.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Final

from pydantic import BaseModel, ValidationError

from functions.distribution.channels import ChannelStore
from functions.distribution.model_store import ModelStore
from functions.learning.ingest import IngestReport, ingest
from functions.learning.job_store import JobStatusConflictError, JobStore
from functions.learning.launchers import Launcher, runner_ended
from functions.learning.quality import DEFAULT_POLICY, QualityPolicy
from functions.learning.records import (
    FINAL_STATUSES,
    Assessment,
    JobRecord,
    Route,
    TrainingExample,
    TrainingJobSpec,
)
from models.runtime import storage_layout
from models.runtime.artifacts import CLOUD_MODEL_NAME, DEFAULT_MODEL_NAME
from models.runtime.transcript import ModelRef

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

logger = logging.getLogger(__name__)

JOB_ID_PREFIX: Final = "retrain-"
DATASET_FILES: Final[dict[Route, str]] = {"finetune": "finetune.jsonl", "distill": "distill.jsonl"}
DOMAIN_EVAL_FILE: Final = "domain-eval.jsonl"
SPEC_FILE: Final = "spec.json"

# Environment overrides of ``TriggerPolicy`` (each optional).
MIN_CORRECTIONS_VARIABLE: Final = "EDGESCRIBE_RETRAIN_MIN_CORRECTIONS"
DRIFT_CER_VARIABLE: Final = "EDGESCRIBE_RETRAIN_DRIFT_CER"
MIN_DRIFT_SAMPLES_VARIABLE: Final = "EDGESCRIBE_RETRAIN_MIN_DRIFT_SAMPLES"
WINDOW_FORMAT_VARIABLE: Final = "EDGESCRIBE_RETRAIN_WINDOW_FORMAT"
MAX_STEPS_VARIABLE: Final = "EDGESCRIBE_RETRAIN_MAX_STEPS"


class TriggerConfigurationError(ValueError):
    """A ``TriggerPolicy`` value (usually from an environment variable) that makes no sense."""


@dataclass(frozen=True)
class TriggerPolicy:
    """When to retrain; every field has an ``EDGESCRIBE_RETRAIN_*`` override (``from_environment``)."""

    #: New trainable corrections that justify a job on their own: a fine-tune on fewer mostly
    #: memorizes them, and the gate's domain set (a fifth of them) would be too small to measure.
    min_new_corrections: int = 50
    #: Mean CER of recently accepted corrections that means the deployed model has drifted from
    #: what users say (the released model scores 0.17 on read speech, see its manifest).
    drift_cer: float = 0.35
    #: Corrections needed before a mean CER is trusted as drift rather than a few bad clips.
    min_drift_samples: int = 20
    #: One job per window; hourly by default, so a schedule every 15 min starts at most one job an hour.
    window_format: str = "%Y%m%dT%H"
    #: A ``started`` job with no runner this long after creation was never launched (a crashed run).
    launch_grace: timedelta = timedelta(minutes=15)
    #: Share of new fine-tuning examples held back as the gate's domain evaluation set.
    domain_eval_share: float = 0.2
    max_steps: int = 300
    seed: int = 1234

    def __post_init__(self) -> None:
        if self.min_new_corrections < 1 or self.min_drift_samples < 1 or self.max_steps < 1:
            raise TriggerConfigurationError(
                "min_new_corrections, min_drift_samples and max_steps must be at least 1"
            )
        if not 0.0 < self.drift_cer <= 1.0:
            raise TriggerConfigurationError(f"drift_cer={self.drift_cer} must be in (0, 1]")
        if not 0.0 <= self.domain_eval_share < 1.0:
            raise TriggerConfigurationError("domain_eval_share must be in [0, 1)")
        sample = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
        window = sample.strftime(self.window_format)
        try:
            storage_layout.validate_id(f"{JOB_ID_PREFIX}{window}", "training job id")
        except storage_layout.InvalidKeyError as exc:
            raise TriggerConfigurationError(
                f"window_format {self.window_format!r} makes job ids like {window!r}: {exc}"
            ) from exc
        if window == (sample + timedelta(days=400)).strftime(self.window_format):
            raise TriggerConfigurationError(
                f"window_format {self.window_format!r} does not change over time"
            )

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> TriggerPolicy:
        environ = os.environ if environ is None else environ
        overrides: dict[str, object] = {}
        for variable, name, parse in (
            (MIN_CORRECTIONS_VARIABLE, "min_new_corrections", int),
            (DRIFT_CER_VARIABLE, "drift_cer", float),
            (MIN_DRIFT_SAMPLES_VARIABLE, "min_drift_samples", int),
            (WINDOW_FORMAT_VARIABLE, "window_format", str),
            (MAX_STEPS_VARIABLE, "max_steps", int),
        ):
            raw = environ.get(variable, "").strip()
            if not raw:
                continue
            try:
                overrides[name] = parse(raw)
            except ValueError as exc:
                raise TriggerConfigurationError(
                    f"{variable}={raw!r} is not a {parse.__name__}"
                ) from exc
        try:
            return cls(**overrides)  # type: ignore[arg-type]
        except TriggerConfigurationError as exc:
            raise TriggerConfigurationError(f"{exc} (from EDGESCRIBE_RETRAIN_* variables)") from exc

    def window(self, now: datetime) -> str:
        return now.astimezone(UTC).strftime(self.window_format)

    def job_id(self, now: datetime) -> str:
        return f"{JOB_ID_PREFIX}{self.window(now)}"


@dataclass(frozen=True)
class LoopState:
    """What ``decide`` looks at, read once per run (``load_state``)."""

    assessments: list[Assessment]
    #: Every job record, newest first.
    jobs: list[JobRecord]
    #: Feedback ids some job already used (training, distillation or domain evaluation).
    consumed: frozenset[str]
    #: The model the next candidate starts from (the stable channel's), if any is published.
    base_model: ModelRef | None
    #: The fp32 teacher for distillation, if published.
    teacher_model: ModelRef | None
    #: Job folders that exist without a ``job.json`` (a claimed window whose start did not finish).
    claimed_windows: frozenset[str] = field(default_factory=frozenset)


class TriggerDecision(BaseModel):
    start: bool
    reason: str
    window: str
    job_id: str
    forced: bool = False
    new_finetune: int = 0
    new_distill: int = 0
    drift_samples: int = 0
    drift_cer: float | None = None
    blocking_job: str | None = None


class StartedJob(BaseModel):
    job_id: str
    runner: str
    spec: TrainingJobSpec


class TriggerRun(BaseModel):
    """What one run did (the Lambda handler returns it as JSON)."""

    ingest: IngestReport | None = None
    #: Jobs found with a dead runner and marked ``failed`` (id and reason).
    settled: dict[str, str] = {}
    decision: TriggerDecision | None = None
    job: StartedJob | None = None
    #: Set when the decision was to start but another run claimed the window first.
    note: str | None = None


def decide(
    state: LoopState, policy: TriggerPolicy, now: datetime, *, force: bool = False
) -> TriggerDecision:
    """Whether to start a job now, and why (rules in the module docstring). Pure."""
    job_id = policy.job_id(now)
    new = new_examples(state)
    last_job = max((job.created_at for job in state.jobs), default=None)
    drift = [
        a.cer
        for a in state.assessments
        if a.accepted and a.cer is not None and (last_job is None or a.assessed_at > last_job)
    ]
    drift_cer = round(sum(drift) / len(drift), 4) if drift else None
    decision = TriggerDecision(
        start=False,
        reason="",
        window=policy.window(now),
        job_id=job_id,
        forced=force,
        new_finetune=sum(a.route == "finetune" for a in new),
        new_distill=sum(a.route == "distill" for a in new),
        drift_samples=len(drift),
        drift_cer=drift_cer,
    )

    def refuse(reason: str, blocking: str | None = None) -> TriggerDecision:
        return decision.model_copy(update={"reason": reason, "blocking_job": blocking})

    def start(reason: str) -> TriggerDecision:
        return decision.model_copy(update={"start": True, "reason": reason})

    active = [job for job in state.jobs if job.status not in FINAL_STATUSES]
    if active:
        job = active[0]
        return refuse(f"job {job.job_id} still running (status {job.status})", job.job_id)
    this_window = next((job for job in state.jobs if job.job_id == job_id), None)
    if this_window is not None or job_id in state.claimed_windows:
        return refuse(f"job {job_id} already started in this window", job_id)
    if state.base_model is None:
        return refuse(
            f"no published {DEFAULT_MODEL_NAME} model to fine-tune (publish one first: "
            "edgescribe model publish)"
        )
    if not new:
        return refuse("no new trainable corrections (accepted, with audio, not used by a job)")
    if force:
        return start(f"forced by an operator with {len(new)} new trainable corrections")
    if len(new) >= policy.min_new_corrections:
        return start(
            f"{len(new)} new trainable corrections (threshold {policy.min_new_corrections})"
        )
    drifted = drift_cer is not None and drift_cer >= policy.drift_cer
    if drifted and len(drift) >= policy.min_drift_samples:
        return start(
            f"error rate drift: mean CER {drift_cer:.1%} of {len(drift)} corrections since "
            f"the last job (threshold {policy.drift_cer:.0%})"
        )
    drift_text = (
        f"mean CER {drift_cer:.1%} over {len(drift)} corrections"
        if drift_cer is not None
        else "no corrections"
    )
    return refuse(
        f"{len(new)} new trainable corrections (threshold {policy.min_new_corrections}); "
        f"{drift_text} since the last job (drift threshold {policy.drift_cer:.0%} over at least "
        f"{policy.min_drift_samples})"
    )


def new_examples(state: LoopState) -> list[Assessment]:
    """Accepted, trainable assessments no job has used yet, oldest first."""
    new = [
        a
        for a in state.assessments
        if a.accepted
        and a.trainable
        and a.route is not None
        and a.feedback_id not in state.consumed
    ]
    return sorted(new, key=lambda a: (a.received_at, a.feedback_id))


def load_state(s3: S3Client, models_bucket: str, assessments: list[Assessment]) -> LoopState:
    """Jobs, consumed feedback ids and the current models, read from the models bucket."""
    store = JobStore(s3, models_bucket)
    jobs = store.list_jobs(limit=None)
    with_record = {job.job_id for job in jobs}
    consumed: set[str] = set()
    for job in jobs:
        consumed |= consumed_by(store, job.job_id)
    base, teacher = current_models(s3, models_bucket)
    return LoopState(
        assessments=assessments,
        jobs=jobs,
        consumed=frozenset(consumed),
        base_model=base,
        teacher_model=teacher,
        claimed_windows=frozenset(
            job_id
            for job_id in store.job_ids()
            if job_id not in with_record and store.read_file(job_id, SPEC_FILE) is not None
        ),
    )


def consumed_by(store: JobStore, job_id: str) -> set[str]:
    """The feedback ids a job's data manifests list."""
    ids: set[str] = set()
    for filename in (*DATASET_FILES.values(), DOMAIN_EVAL_FILE):
        body = store.read_file(job_id, filename)
        for line in (body or b"").decode("utf-8", errors="replace").splitlines():
            if not line.strip():
                continue
            try:
                ids.add(TrainingExample.model_validate_json(line).feedback_id)
            except ValidationError:
                logger.warning("unreadable training example", extra={"job_id": job_id})
    return ids


def current_models(s3: S3Client, models_bucket: str) -> tuple[ModelRef | None, ModelRef | None]:
    """(base, teacher): the stable channel's model, else the newest published edge model; the
    newest published cloud model (``None`` when not published)."""
    stable = ChannelStore(s3, models_bucket).read("stable")
    models = ModelStore(s3, models_bucket)
    if stable is not None:
        base: ModelRef | None = ModelRef(name=stable.state.name, version=stable.state.version)
    else:
        versions = models.published_versions(DEFAULT_MODEL_NAME)
        base = ModelRef(name=DEFAULT_MODEL_NAME, version=versions[-1]) if versions else None
    cloud = models.published_versions(CLOUD_MODEL_NAME)
    teacher = ModelRef(name=CLOUD_MODEL_NAME, version=cloud[-1]) if cloud else None
    return base, teacher


def split_domain_eval(
    finetune: list[Assessment], share: float
) -> tuple[list[Assessment], list[Assessment]]:
    """(train, held back): a deterministic ``share`` of the fine-tuning examples (by a hash of the
    feedback id), at least one once there are three, never all of them."""
    if len(finetune) < 3 or share <= 0:
        return finetune, []
    count = min(max(1, round(share * len(finetune))), len(finetune) - 1)
    ranked = sorted(finetune, key=lambda a: hashlib.sha256(a.feedback_id.encode()).hexdigest())
    held = {a.feedback_id for a in ranked[:count]}
    return [a for a in finetune if a.feedback_id not in held], [
        a for a in finetune if a.feedback_id in held
    ]


def start_job(
    s3: S3Client,
    *,
    state: LoopState,
    decision: TriggerDecision,
    policy: TriggerPolicy,
    now: datetime,
    models_bucket: str,
    recordings_bucket: str,
    launcher: Launcher,
) -> StartedJob | None:
    """Write the job's inputs and launch it; ``None`` when another run claimed the window first."""
    if not decision.start or state.base_model is None:
        raise ValueError(f"start_job called for a decision not to start: {decision.reason}")
    store = JobStore(s3, models_bucket, clock=lambda: now)
    job_id = decision.job_id
    new = new_examples(state)
    train, held = split_domain_eval(
        [a for a in new if a.route == "finetune"], policy.domain_eval_share
    )
    sets: dict[Route, list[Assessment]] = {
        "finetune": train,
        "distill": [a for a in new if a.route == "distill"],
    }
    spec = TrainingJobSpec(
        job_id=job_id,
        window=decision.window,
        created_at=now,
        reason=decision.reason,
        models_bucket=models_bucket,
        base_model=state.base_model,
        teacher_model=state.teacher_model,
        datasets={
            route: storage_layout.training_job_key(job_id, DATASET_FILES[route])
            for route, examples in sets.items()
            if examples
        },
        domain_eval=storage_layout.training_job_key(job_id, DOMAIN_EVAL_FILE) if held else None,
        counts={
            "finetune": len(train),
            "distill": len(sets["distill"]),
            "domain_eval": len(held),
            "drift_samples": decision.drift_samples,
        },
        seed=policy.seed,
        max_steps=policy.max_steps,
    )
    if not store.put_file(
        job_id, SPEC_FILE, spec.model_dump_json(indent=2).encode(), create_only=True
    ):
        logger.info("window already claimed by another run", extra={"job_id": job_id})
        return None
    for route, examples in sets.items():
        if examples:
            store.put_file(
                job_id, DATASET_FILES[route], _jsonl(examples, recordings_bucket), create_only=False
            )
    if held:
        store.put_file(job_id, DOMAIN_EVAL_FILE, _jsonl(held, recordings_bucket), create_only=False)
    record = JobRecord(
        job_id=job_id,
        status="started",
        window=decision.window,
        created_at=now,
        updated_at=now,
        detail=decision.reason,
    )
    if not store.create(record):
        return None
    try:
        runner = launcher.launch(spec)
    except Exception as exc:
        store.update(job_id, "failed", detail=f"launch failed: {exc}", expected_status="started")
        raise
    # A fast local run may already have reported progress; its record is then newer than ours.
    with contextlib.suppress(JobStatusConflictError):
        store.update(job_id, "started", runner=runner, expected_status="started")
    logger.info("training job started", extra={"job_id": job_id, "runner": runner})
    return StartedJob(job_id=job_id, runner=runner, spec=spec)


def settle_dead_jobs(
    store: JobStore, jobs: list[JobRecord], policy: TriggerPolicy, now: datetime
) -> dict[str, str]:
    """Mark ``failed`` the ``started`` jobs whose runner is gone without reporting (or that were
    never launched), so they stop blocking retraining; returns job id -> reason."""
    settled: dict[str, str] = {}
    for job in jobs:
        if job.status != "started":
            continue
        if job.runner is None:
            if now - job.created_at <= policy.launch_grace:
                continue
            reason = f"never launched: no runner recorded within {policy.launch_grace}"
        else:
            ended = runner_ended(job.runner)
            if ended is None:
                continue
            reason = f"{ended} without reporting a result"
        try:
            store.update(job.job_id, "failed", detail=reason, expected_status="started")
        except JobStatusConflictError:
            continue  # it reported meanwhile
        settled[job.job_id] = reason
    return settled


def run_trigger(
    s3: S3Client,
    *,
    feedback_bucket: str,
    models_bucket: str,
    recordings_bucket: str,
    launcher: Launcher,
    now: datetime,
    policy: TriggerPolicy | None = None,
    quality_policy: QualityPolicy = DEFAULT_POLICY,
    force: bool = False,
    ingest_only: bool = False,
) -> TriggerRun:
    """Ingest, settle dead jobs, decide, maybe start: one scheduled run."""
    policy = policy or TriggerPolicy()
    outcome = ingest(s3, feedback_bucket, now=now, policy=quality_policy)
    run = TriggerRun(ingest=outcome.report)
    if ingest_only:
        return run
    store = JobStore(s3, models_bucket, clock=lambda: now)
    run.settled = settle_dead_jobs(store, store.list_jobs(limit=None), policy, now)
    state = load_state(s3, models_bucket, outcome.assessments)
    run.decision = decide(state, policy, now, force=force)
    logger.info("retraining decision", extra={"decision": run.decision.model_dump()})
    if run.decision.start:
        run.job = start_job(
            s3,
            state=state,
            decision=run.decision,
            policy=policy,
            now=now,
            models_bucket=models_bucket,
            recordings_bucket=recordings_bucket,
            launcher=launcher,
        )
        if run.job is None:
            run.note = f"another run claimed window {run.decision.window} first"
    return run


def _jsonl(examples: list[Assessment], recordings_bucket: str) -> bytes:
    lines = []
    for assessment in examples:
        assert assessment.audio_ref is not None  # trainable
        assert assessment.route is not None
        example = TrainingExample(
            audio_bucket=recordings_bucket,
            audio_key=assessment.audio_ref,
            text=assessment.corrected_text,
            feedback_id=assessment.feedback_id,
            route=assessment.route,
        )
        lines.append(example.model_dump_json())
    return ("\n".join(lines) + "\n").encode()
