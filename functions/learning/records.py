"""The documents the learning loop passes between its stages.

Each stage boundary has one schema, stored as JSON (S3 objects or DynamoDB attributes), so a stage
can be rerun, inspected with ``edgescribe loop status`` or replaced (a SageMaker job instead of a
local process) without the neighbours noticing.

feedback record ─► ``Assessment`` ─► ``TrainingExample`` lines ─► ``TrainingJobSpec`` ─► training job
─► candidate + ``GateReport`` ─► shadow (``ShadowResult`` per sampled recording) ─► promotion.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from models.runtime.transcript import ModelRef

#: Low quality (the model was wrong): fine-tune on the correction. High quality (the model was right
#: or nearly): the ``cloud`` teacher labels the audio for the ``edge`` student (distillation).
Route = Literal["finetune", "distill"]

#: A training job's life, in order; ``gate_failed``, ``rejected`` and ``failed`` end it early.
JobStatus = Literal[
    "started",
    "trained",
    "gate_failed",
    "gate_passed",
    "shadow",
    "canary",
    "stable",
    "rejected",
    "failed",
]
#: Statuses after which nothing more happens to a job.
FINAL_STATUSES: frozenset[str] = frozenset({"gate_failed", "stable", "rejected", "failed"})


class Assessment(BaseModel):
    """What the quality assessment decided about one feedback record, and why."""

    model_config = ConfigDict(extra="forbid")

    feedback_id: str
    tenant: str
    transcript_id: str
    audio_ref: str | None = Field(description="recordings/<tenant>/<id>.<ext>, never a copy")
    original_text: str | None
    corrected_text: str
    model: ModelRef | None
    received_at: datetime
    assessed_at: datetime
    accepted: bool
    #: Why a correction was rejected (guardrail name and numbers), or None when accepted.
    reason: str | None = None
    #: CER of the model's transcript against the correction (None when there is no original).
    cer: float | None = None
    #: Share of the correction's words that differ from the original (word edit distance / words).
    words_changed: float | None = None
    route: Route | None = None
    #: Accepted *and* has audio: usable as a training example (device corrections may lack audio).
    trainable: bool = False


class TrainingExample(BaseModel):
    """One line of a job's ``finetune.jsonl`` / ``distill.jsonl`` / ``domain-eval.jsonl``."""

    model_config = ConfigDict(extra="forbid")

    audio_bucket: str
    audio_key: str
    #: The user's correction (fine-tuning); for distillation the teacher's labels replace it.
    text: str
    feedback_id: str
    route: Route


class TrainingJobSpec(BaseModel):
    """Everything a training job needs, stored at ``training/jobs/<job_id>/spec.json``."""

    model_config = ConfigDict(extra="forbid")

    job_id: str
    window: str
    created_at: datetime
    #: Which thresholds or schedule started the job, in words.
    reason: str
    models_bucket: str
    #: The stable model the candidate starts from (its checkpoint: ``storage_layout.checkpoint_key``).
    base_model: ModelRef
    #: The fp32 model that labels the distillation set (None: no distillation in this job).
    teacher_model: ModelRef | None = None
    #: Data manifests in the models bucket by route (``storage_layout.training_job_key``).
    datasets: dict[Route, str]
    #: Held-back accepted corrections that measure the domain gain (never trained on).
    domain_eval: str | None = None
    counts: dict[str, int] = Field(default_factory=dict)
    seed: int = 1234
    max_steps: int = 300


class JobRecord(BaseModel):
    """One training job in the jobs table (``job_id = retrain-<window>``)."""

    model_config = ConfigDict(extra="forbid")

    job_id: str
    status: JobStatus
    window: str
    created_at: datetime
    updated_at: datetime
    #: Where it runs: ``local:<pid>`` or ``sagemaker:<training job name>``.
    runner: str | None = None
    candidate: ModelRef | None = None
    #: The latest decision in words (why a gate failed, why shadow was promoted or rejected).
    detail: str = ""


class GateSet(BaseModel):
    """One evaluation set in a gate report: baseline and candidate CER on the same audio."""

    name: str
    kind: Literal["domain", "general"]
    utterances: int
    baseline_cer: float
    candidate_cer: float
    #: candidate - baseline (negative is better).
    delta: float
    passed: bool


class GateReport(BaseModel):
    """The evaluation gate's verdict, stored at ``training/jobs/<job_id>/gate.json``."""

    job_id: str
    baseline: ModelRef
    candidate: ModelRef
    #: The largest CER increase (absolute) any general set may show.
    tolerance: float
    #: The smallest CER decrease (absolute) the domain set must show.
    min_domain_gain: float
    sets: list[GateSet]
    passed: bool
    reasons: list[str]


class ShadowSide(BaseModel):
    model: ModelRef
    text: str
    seconds: float


class ShadowResult(BaseModel):
    """One sampled recording run by both stable and shadow (``storage_layout.shadow_transcript_key``).

    Never returned to users; the promotion decision reads these.
    """

    tenant: str
    recording_id: str
    recording_key: str
    audio_seconds: float
    stable: ShadowSide
    shadow: ShadowSide
    #: CER of the shadow text against the stable text: how often and how much they disagree.
    disagreement: float
    created_at: datetime
