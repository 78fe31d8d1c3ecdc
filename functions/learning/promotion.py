"""The promotion decision: a candidate that passed its gate goes shadow → canary → stable, or out.

:func:`advance` moves ONE training job one step through the state machine, through the
distribution service (``functions.distribution.service``), and writes the decision into the job's
``detail``. It is safe to run on a schedule and twice at once: every step re-reads the job first
and every channel change is skipped when the channel already says what the step would write, so a
rerun (or a crash between the channel change and the job update) never promotes twice.

``gate_passed`` → **shadow**
    publish the candidate folder (``storage_layout.candidate_prefix``) and point the shadow channel
    at it. A candidate that cannot be published, or is not newer than stable, is ``rejected``.
``shadow`` → **canary** | ``rejected`` | (wait)
    the evidence is the ``ShadowResult``s the batch function stored for this version
    (``functions.learning.shadow``) plus accepted corrections of the same recordings
    (``Assessment.audio_ref == ShadowResult.recording_key``). Checked in this order:

    1. at least ``min_shadow_samples`` results, else wait (the detail says how many are missing);
    2. mean disagreement (CER of shadow text against stable text) ≤ ``max_mean_disagreement``;
    3. shadow p95 seconds / stable p95 seconds ≤ ``max_latency_ratio`` (unless the shadow is at
       most ``latency_slack_seconds`` slower: milliseconds on short clips are scheduler noise);
    4. with ≥ ``min_corrected`` corrected recordings: shadow CER ≤ stable CER + ``cer_tolerance``
       against the corrections (corpus CER, both reported).

    Any failed check rejects: the shadow channel is rolled back to stable's version (a signed
    directive withdraws the candidate), which also ends the shadow runs. All pass: canary at
    ``canary_rollout_percent``.
``canary`` → **stable** | ``rejected`` | (wait)
    fleet health from the device registry: any device that, since the canary began, runs the
    candidate and reports ``degraded``/``failing``, or that *ever* reverted or rejected it (the
    edge agent's ``last_error``, remembered by the registry as ``failed_versions``), rolls the
    canary back (cascading to shadow) and rejects. Otherwise stable once ``canary_soak`` has
    passed *and* at least ``min_canary_healthy_devices`` devices run the candidate healthy (in
    heartbeats since the canary began); until then, wait.

Every other status is not this module's to change (``skip``; the job is left untouched).
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from botocore.exceptions import ClientError
from pydantic import ValidationError

from functions.common.s3_errors import error_code
from functions.distribution.errors import (
    ArtifactMismatchError,
    NothingToRollBackError,
    VersionConflictError,
)
from functions.learning.job_store import JobStatusConflictError, JobStore
from functions.learning.records import Assessment, JobRecord, JobStatus, ShadowResult
from models.runtime import storage_layout
from models.runtime.artifacts import MANIFEST_FILE
from models.runtime.manifest import ModelManifest
from models.runtime.scoring import ErrorCounter
from models.runtime.transcript import ModelRef

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

    from functions.distribution.channels import Channel
    from functions.distribution.service import DistributionService
    from functions.fleet.registry import DeviceRecord, DeviceRegistry

ACTOR = "edgescribe-learning-loop"
#: Longest ``detail`` written to a job record (reasons name devices; a fleet must not bloat it).
MAX_DETAIL_CHARS = 4000
MAX_CANDIDATE_MANIFEST_BYTES = 1 << 20

Action = Literal["promote", "reject", "wait", "skip"]
Evidence = dict[str, float | int | None]
_Record = TypeVar("_Record", ShadowResult, Assessment)


class PromotionError(RuntimeError):
    """The job cannot be advanced at all (it vanished, or names no candidate where one must be)."""


class CandidateUnavailableError(Exception):
    """The candidate folder is missing, or its files do not describe one publishable model."""


@dataclass(frozen=True)
class PromotionPolicy:
    """The thresholds of the decision (module docstring); defaults are the lead's."""

    min_shadow_samples: int = 20
    max_mean_disagreement: float = 0.5
    #: Shadow p95 seconds / stable p95 seconds on the same recordings.
    max_latency_ratio: float = 1.5
    #: The ratio is only held against the shadow when its p95 is also this much slower in absolute
    #: terms: on short clips both take milliseconds, and a ratio of two scheduler hiccups is noise.
    latency_slack_seconds: float = 0.05
    #: Shadow CER on corrected recordings may exceed stable's by at most this (absolute).
    cer_tolerance: float = 0.0
    #: Fewer corrected recordings than this: the CER check is not applied (too noisy).
    min_corrected: int = 3
    min_canary_healthy_devices: int = 1
    canary_soak: timedelta = timedelta(hours=1)
    canary_rollout_percent: float = 10.0

    def __post_init__(self) -> None:
        if self.min_shadow_samples < 1:
            raise ValueError("min_shadow_samples must be at least 1")
        if not 0.0 < self.canary_rollout_percent <= 100.0:
            raise ValueError("canary_rollout_percent must be within (0, 100]")
        if self.canary_soak < timedelta(0):
            raise ValueError("canary_soak must not be negative")


@dataclass(frozen=True)
class PromotionDecision:
    """What one :func:`advance` call decided, why, and on which numbers."""

    job_id: str
    action: Action
    from_status: JobStatus
    to_status: JobStatus
    reasons: tuple[str, ...]
    evidence: Evidence = field(default_factory=dict)
    candidate: ModelRef | None = None

    @property
    def detail(self) -> str:
        """The sentence stored in the job's ``detail``."""
        moved = (
            f"{self.from_status} → {self.to_status}"
            if self.to_status != self.from_status
            else f"{self.from_status}: {self.action}"
        )
        return f"{moved}: {'; '.join(self.reasons)}"[:MAX_DETAIL_CHARS]

    def as_dict(self) -> dict[str, Any]:
        return {
            "job_id": self.job_id,
            "action": self.action,
            "from_status": self.from_status,
            "to_status": self.to_status,
            "reasons": list(self.reasons),
            "evidence": dict(self.evidence),
            "candidate": self.candidate.model_dump() if self.candidate else None,
        }


# --- evidence ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ShadowEvidence:
    samples: int
    mean_disagreement: float
    stable_p95_seconds: float
    shadow_p95_seconds: float
    latency_ratio: float
    corrected: int
    stable_cer: float | None
    shadow_cer: float | None

    def as_evidence(self) -> Evidence:
        return {
            "samples": self.samples,
            "mean_disagreement": round(self.mean_disagreement, 4),
            "stable_p95_seconds": round(self.stable_p95_seconds, 4),
            "shadow_p95_seconds": round(self.shadow_p95_seconds, 4),
            "latency_ratio": round(self.latency_ratio, 3)
            if math.isfinite(self.latency_ratio)
            else None,
            "corrected": self.corrected,
            "stable_cer": None if self.stable_cer is None else round(self.stable_cer, 4),
            "shadow_cer": None if self.shadow_cer is None else round(self.shadow_cer, 4),
        }


@dataclass(frozen=True)
class CanaryHealth:
    #: Device ids running the candidate and reporting ``ok`` since the canary began.
    healthy: tuple[str, ...]
    #: ``(device id, why)`` for every device that failed, reverted or rejected the candidate.
    unhealthy: tuple[tuple[str, str], ...]


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile (no interpolation: the value is one a recording really took)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


def _ratio(shadow: float, stable: float) -> float:
    """shadow / stable; a stable time of zero makes any shadow time infinitely slower."""
    if stable > 0:
        return shadow / stable
    return math.inf if shadow > 0 else 1.0


def shadow_evidence(
    results: Sequence[ShadowResult], corrections: Mapping[str, str]
) -> ShadowEvidence:
    """The numbers the shadow checks read; ``corrections`` maps recording key → corrected text."""
    stable_p95 = percentile([r.stable.seconds for r in results], 0.95)
    shadow_p95 = percentile([r.shadow.seconds for r in results], 0.95)
    stable_errors, shadow_errors = ErrorCounter(), ErrorCounter()
    for result in results:
        corrected = corrections.get(result.recording_key)
        if corrected is not None:
            stable_errors.add(corrected, result.stable.text)
            shadow_errors.add(corrected, result.shadow.text)
    counted = stable_errors.utterances
    return ShadowEvidence(
        samples=len(results),
        mean_disagreement=sum(r.disagreement for r in results) / len(results) if results else 0.0,
        stable_p95_seconds=stable_p95,
        shadow_p95_seconds=shadow_p95,
        latency_ratio=_ratio(shadow_p95, stable_p95),
        corrected=counted,
        stable_cer=stable_errors.cer if counted else None,
        shadow_cer=shadow_errors.cer if counted else None,
    )


def judge_shadow(evidence: ShadowEvidence, policy: PromotionPolicy) -> tuple[Action, list[str]]:
    """``wait``, ``reject`` or ``promote`` (to canary), with the reasons (checks in doc order)."""
    if evidence.samples < policy.min_shadow_samples:
        return "wait", [
            f"{evidence.samples} of {policy.min_shadow_samples} shadow samples so far; "
            f"{policy.min_shadow_samples - evidence.samples} more needed"
        ]
    failures: list[str] = []
    passes: list[str] = [f"{evidence.samples} shadow samples"]
    disagreement = (
        f"mean disagreement {evidence.mean_disagreement:.3f} "
        f"(limit {policy.max_mean_disagreement:.3f})"
    )
    if evidence.mean_disagreement > policy.max_mean_disagreement:
        failures.append(f"shadow disagrees with stable too much: {disagreement}")
    else:
        passes.append(disagreement)
    latency = (
        f"p95 latency {evidence.shadow_p95_seconds:.3f} s vs stable "
        f"{evidence.stable_p95_seconds:.3f} s (ratio {evidence.latency_ratio:.2f}, "
        f"limit {policy.max_latency_ratio:.2f})"
    )
    slower_by = evidence.shadow_p95_seconds - evidence.stable_p95_seconds
    if (
        evidence.latency_ratio > policy.max_latency_ratio
        and slower_by > policy.latency_slack_seconds
    ):
        failures.append(f"shadow is too slow: {latency}")
    else:
        passes.append(latency)
    if (
        evidence.corrected >= policy.min_corrected
        and evidence.stable_cer is not None
        and evidence.shadow_cer is not None
    ):
        quality = (
            f"CER on {evidence.corrected} corrected recordings: shadow {evidence.shadow_cer:.3f} "
            f"vs stable {evidence.stable_cer:.3f} (tolerance {policy.cer_tolerance:.3f})"
        )
        if evidence.shadow_cer > evidence.stable_cer + policy.cer_tolerance:
            failures.append(f"shadow is less accurate than stable: {quality}")
        else:
            passes.append(quality)
    else:
        passes.append(
            f"{evidence.corrected} corrected recordings (fewer than {policy.min_corrected}: "
            "CER check not applied)"
        )
    if failures:
        return "reject", failures
    return "promote", passes


def canary_health(devices: Iterable[DeviceRecord], version: int, since: datetime) -> CanaryHealth:
    """Which devices ran ``version`` well, and which failed it, in heartbeats since ``since``.

    A device that reverted or rejected the candidate reports its *previous* version, so the edge
    agent's ``last_error`` (``update v7 reverted: ...``, ``v7 rejected: ...``) is read as well, and
    the registry's ``failed_versions`` (the same report, kept after the device cleared it): a
    failure counts however long ago it was reported, since versions are never reused.
    """
    from functions.fleet.registry import failed_update_version

    healthy: list[str] = []
    unhealthy: list[tuple[str, str]] = []
    for device in devices:
        error = device.last_error or ""
        if version in device.failed_versions or failed_update_version(error) == version:
            unhealthy.append(
                (device.device_id, error or f"v{version} reverted or rejected earlier")
            )
            continue
        if device.last_heartbeat is None or device.last_heartbeat < since:
            continue
        if device.current_version == version and device.health != "ok":
            unhealthy.append(
                (
                    device.device_id,
                    f"{device.health or 'unknown'} on v{version}: {error}".rstrip(": "),
                )
            )
        elif device.current_version == version:
            healthy.append(device.device_id)
    return CanaryHealth(healthy=tuple(healthy), unhealthy=tuple(unhealthy))


class PromotionReader:
    """Reads what the decision needs: the candidate folder, shadow results, accepted corrections
    and device heartbeats (one S3 client, three buckets, the devices table)."""

    def __init__(
        self,
        s3: S3Client,
        *,
        models_bucket: str,
        transcripts_bucket: str,
        feedback_bucket: str,
        devices: DeviceRegistry,
    ) -> None:
        self._s3 = s3
        self._models_bucket = models_bucket
        self._transcripts_bucket = transcripts_bucket
        self._feedback_bucket = feedback_bucket
        self._devices = devices
        #: Stored documents that did not parse since the last ``shadow_results`` call (skipped,
        #: never fatal: one bad document must not stall every promotion), for the operator.
        self.unreadable: list[str] = []

    def download_candidate(self, job_id: str, folder: Path) -> ModelManifest:
        """Copy the training job's ``model.onnx`` + ``manifest.json`` into ``folder``."""
        prefix = storage_layout.candidate_prefix(job_id)
        manifest_key = f"{prefix}/{MANIFEST_FILE}"
        body = self._read_candidate_object(manifest_key, MAX_CANDIDATE_MANIFEST_BYTES)
        try:
            manifest = ModelManifest.from_json(body)
        except ValidationError as exc:
            raise CandidateUnavailableError(
                f"{manifest_key} is not a valid manifest: {exc}"
            ) from exc
        if Path(manifest.file).name != manifest.file or manifest.file in ("", ".", ".."):
            raise CandidateUnavailableError(f"{manifest_key}: 'file' must be a plain file name")
        (folder / MANIFEST_FILE).write_bytes(body)
        model_key = f"{prefix}/{manifest.file}"
        try:
            self._s3.download_file(self._models_bucket, model_key, str(folder / manifest.file))
        except ClientError as exc:
            raise CandidateUnavailableError(
                f"cannot read s3://{self._models_bucket}/{model_key}: {error_code(exc) or 'error'}"
            ) from exc
        return manifest

    def shadow_results(self, candidate: ModelRef) -> list[ShadowResult]:
        """Every stored shadow result of ``candidate`` (keys end in ``.v<version>.json``)."""
        self.unreadable = []
        suffix = f".v{candidate.version}.json"
        # "shadow/", derived from the layout rather than spelled again here.
        prefix = storage_layout.shadow_transcript_key("t", "r", 1).split("/", 1)[0] + "/"
        results: list[ShadowResult] = []
        for key in self._keys(self._transcripts_bucket, prefix):
            if not key.endswith(suffix):
                continue
            result = self._parse(self._transcripts_bucket, key, ShadowResult)
            if result is not None and result.shadow.model == candidate:
                results.append(result)
        return results

    def corrections(self, recording_keys: set[str]) -> dict[str, str]:
        """Recording key → corrected text of the newest accepted assessment of that recording."""
        newest: dict[str, Assessment] = {}
        if not recording_keys:
            return {}
        for key in self._keys(self._feedback_bucket, storage_layout.ASSESSMENTS_PREFIX):
            assessment = self._parse(self._feedback_bucket, key, Assessment)
            if (
                assessment is None
                or not assessment.accepted
                or assessment.audio_ref not in recording_keys
            ):
                continue
            seen = newest.get(assessment.audio_ref)
            if seen is None or assessment.assessed_at > seen.assessed_at:
                newest[assessment.audio_ref] = assessment
        return {ref: assessment.corrected_text for ref, assessment in newest.items()}

    def devices(self) -> list[DeviceRecord]:
        return self._devices.list_all_devices()

    def _keys(self, bucket: str, prefix: str) -> list[str]:
        keys: list[str] = []
        paginator = self._s3.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
            keys.extend(item["Key"] for item in page.get("Contents", []))
        return keys

    def _read_candidate_object(self, key: str, limit: int) -> bytes:
        try:
            response = self._s3.get_object(Bucket=self._models_bucket, Key=key)
        except ClientError as exc:
            raise CandidateUnavailableError(
                f"cannot read s3://{self._models_bucket}/{key}: {error_code(exc) or 'error'}"
            ) from exc
        body: bytes = response["Body"].read(limit + 1)
        if len(body) > limit:
            raise CandidateUnavailableError(f"{key} is over {limit} bytes: not a manifest")
        return body

    def _parse(self, bucket: str, key: str, model: type[_Record]) -> _Record | None:
        body = self._s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        try:
            return model.model_validate_json(body)
        except ValidationError:
            self.unreadable.append(f"s3://{bucket}/{key}")
            return None


# --- the state machine ---------------------------------------------------------------------------


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class _Step:
    """The context one advance step works in."""

    job: JobRecord
    service: DistributionService
    reader: PromotionReader
    policy: PromotionPolicy
    clock: Callable[[], datetime]
    actor: str

    def decision(
        self,
        action: Action,
        to_status: JobStatus,
        reasons: Sequence[str],
        evidence: Evidence | None = None,
        candidate: ModelRef | None = None,
    ) -> PromotionDecision:
        return PromotionDecision(
            job_id=self.job.job_id,
            action=action,
            from_status=self.job.status,
            to_status=to_status,
            reasons=tuple(reasons),
            evidence=evidence or {},
            candidate=candidate or self.job.candidate,
        )


def advance(
    job: JobRecord,
    *,
    jobs: JobStore,
    service: DistributionService,
    reader: PromotionReader,
    policy: PromotionPolicy | None = None,
    clock: Callable[[], datetime] = _utc_now,
    actor: str = ACTOR,
) -> PromotionDecision:
    """Move ``job`` one step (module docstring) and record the decision in its ``detail``.

    The job is re-read first, so a stale ``job`` (an earlier listing, a second scheduler) acts on
    the current status. The job update is conditional on that status (``expected_status``): of two
    concurrent runs one records its decision and the other returns ``skip`` without overwriting it.
    """
    found = jobs.get(job.job_id)
    if found is None:
        raise PromotionError(f"training job {job.job_id!r} does not exist")
    current = found[0]
    step = _Step(current, service, reader, policy or PromotionPolicy(), clock, actor)
    if current.status == "gate_passed":
        decision = _start_shadow(step)
    elif current.status == "shadow":
        decision = _judge_shadow(step)
    elif current.status == "canary":
        decision = _judge_canary(step)
    else:
        return step.decision(
            "skip", current.status, [f"status {current.status!r} is not decided by promotion"]
        )
    try:
        jobs.update(
            current.job_id,
            decision.to_status,
            detail=decision.detail,
            candidate=decision.candidate,
            expected_status=current.status,
        )
    except JobStatusConflictError as exc:
        # Another run recorded its decision first; ours is reported, not written over theirs.
        # (Channel changes are skipped when a channel already says them, so none was doubled.)
        return step.decision(
            "skip",
            exc.current.status,
            [
                f"another run moved the job to {exc.current.status!r} meanwhile; "
                f"this run's decision was not recorded: {decision.detail}"
            ],
        )
    return decision


def _start_shadow(step: _Step) -> PromotionDecision:
    """gate_passed → shadow: publish the candidate folder and point the shadow channel at it."""
    service, job = step.service, step.job
    try:
        candidate = _publish_candidate(step)
    except CandidateUnavailableError as exc:
        return step.decision("reject", "rejected", [f"candidate cannot be published: {exc}"])
    reasons = [f"published {candidate.name} v{candidate.version}"]
    if _serves(service, "shadow", candidate):
        reasons.append("shadow channel already serves it")
    else:
        service.promote(
            "shadow",
            candidate.version,
            actor=step.actor,
            name=candidate.name,
            reason=f"{job.job_id}: evaluation gate passed",
        )
        reasons.append("shadow channel now serves it beside stable")
    return step.decision("promote", "shadow", reasons, candidate=candidate)


def _judge_shadow(step: _Step) -> PromotionDecision:
    """shadow → canary, rejected, or no change while evidence accumulates."""
    candidate = _require_candidate(step.job)
    if not _serves(step.service, "shadow", candidate):
        return step.decision(
            "reject",
            "rejected",
            [
                f"the shadow channel no longer serves {candidate.name} v{candidate.version} "
                "(changed outside the learning loop)"
            ],
        )
    results = step.reader.shadow_results(candidate)
    corrections = step.reader.corrections({r.recording_key for r in results})
    measured = shadow_evidence(results, corrections)
    numbers = measured.as_evidence()
    numbers["unreadable_documents"] = len(step.reader.unreadable)
    action, reasons = judge_shadow(measured, step.policy)
    if action == "wait":
        return step.decision("wait", "shadow", reasons, numbers)
    if action == "reject":
        reasons += _withdraw(step, "shadow", candidate, "; ".join(reasons))
        return step.decision("reject", "rejected", reasons, numbers)
    if _serves(step.service, "canary", candidate):
        reasons.append("canary channel already serves it")
    else:
        step.service.promote(
            "canary",
            candidate.version,
            actor=step.actor,
            name=candidate.name,
            rollout_percent=step.policy.canary_rollout_percent,
            reason=f"{step.job.job_id}: shadow evidence passed",
        )
        reasons.append(f"canary at {step.policy.canary_rollout_percent:g} % of devices")
    return step.decision("promote", "canary", reasons, numbers)


def _judge_canary(step: _Step) -> PromotionDecision:
    """canary → stable, rejected (with rollback), or no change while the canary soaks."""
    candidate = _require_candidate(step.job)
    service, policy = step.service, step.policy
    if _serves(service, "stable", candidate):
        return step.decision("promote", "stable", ["stable channel already serves it"])
    if not _serves(service, "canary", candidate):
        return step.decision(
            "reject",
            "rejected",
            [
                f"the canary channel no longer serves {candidate.name} v{candidate.version} "
                "(changed outside the learning loop)"
            ],
        )
    started = _canary_started(service, candidate)
    health = canary_health(step.reader.devices(), candidate.version, started)
    soaked = step.clock() - started
    numbers: Evidence = {
        "healthy_devices": len(health.healthy),
        "unhealthy_devices": len(health.unhealthy),
        "required_healthy_devices": policy.min_canary_healthy_devices,
        "soak_seconds": round(soaked.total_seconds(), 1),
        "required_soak_seconds": policy.canary_soak.total_seconds(),
    }
    if health.unhealthy:
        reasons = [
            f"{len(health.unhealthy)} canary device(s) unhealthy: "
            + ", ".join(f"{device} ({why})" for device, why in health.unhealthy)
        ]
        reasons += _withdraw(step, "canary", candidate, reasons[0])
        return step.decision("reject", "rejected", reasons, numbers)
    waiting: list[str] = []
    if soaked < policy.canary_soak:
        waiting.append(f"canary has soaked {_duration(soaked)} of {_duration(policy.canary_soak)}")
    if len(health.healthy) < policy.min_canary_healthy_devices:
        waiting.append(
            f"{len(health.healthy)} of {policy.min_canary_healthy_devices} healthy canary "
            "device(s) reported"
        )
    if waiting:
        return step.decision("wait", "canary", waiting, numbers)
    service.promote(
        "stable",
        candidate.version,
        actor=step.actor,
        name=candidate.name,
        reason=f"{step.job.job_id}: canary healthy",
    )
    return step.decision(
        "promote",
        "stable",
        [
            f"canary soaked {_duration(soaked)} with {len(health.healthy)} healthy device(s) "
            "and none unhealthy",
            f"stable now serves {candidate.name} v{candidate.version}",
        ],
        numbers,
    )


# --- helpers -------------------------------------------------------------------------------------


def _publish_candidate(step: _Step) -> ModelRef:
    """Publish ``candidate_prefix(job_id)`` (idempotent: the same bytes again are a no-op)."""
    service, job = step.service, step.job
    with tempfile.TemporaryDirectory(prefix="edgescribe-candidate-") as folder:
        manifest = step.reader.download_candidate(job.job_id, Path(folder))
        candidate = ModelRef(name=manifest.name, version=manifest.version)
        if job.candidate is not None and job.candidate != candidate:
            raise CandidateUnavailableError(
                f"the job names {job.candidate.name} v{job.candidate.version} but its candidate "
                f"folder holds {candidate.name} v{candidate.version}"
            )
        stable = service.channels.read("stable")
        if (
            stable is not None
            and stable.state.name == candidate.name
            and stable.state.version >= candidate.version
        ):
            raise CandidateUnavailableError(
                f"{candidate.name} v{candidate.version} is not newer than stable "
                f"v{stable.state.version}"
            )
        try:
            service.publish(Path(folder))
        except (ArtifactMismatchError, VersionConflictError) as exc:
            raise CandidateUnavailableError(str(exc)) from exc
    return candidate


def _require_candidate(job: JobRecord) -> ModelRef:
    if job.candidate is None:
        raise PromotionError(
            f"training job {job.job_id!r} is in status {job.status!r} but names no candidate"
        )
    return job.candidate


def _serves(service: DistributionService, channel: Channel, model: ModelRef) -> bool:
    current = service.channels.read(channel)
    return (
        current is not None
        and current.state.name == model.name
        and current.state.version == model.version
    )


def _withdraw(step: _Step, channel: Channel, candidate: ModelRef, why: str) -> list[str]:
    """Roll ``channel`` back from the candidate to stable's version (or the channel's previous
    one); the service's signed directive withdraws the candidate and cascades to other channels
    that serve it. Returns what happened, in words, for the decision's reasons."""
    service = step.service
    if not _serves(service, channel, candidate):
        return [f"{channel} channel no longer serves v{candidate.version}; nothing to roll back"]
    stable = service.channels.read("stable")
    target = (
        stable.state.version
        if stable is not None
        and stable.state.name == candidate.name
        and stable.state.version < candidate.version
        else None
    )
    try:
        states = service.rollback(
            channel,
            actor=step.actor,
            to_version=target,
            reason=f"{step.job.job_id}: {why}"[:1000],
        )
    except NothingToRollBackError as exc:
        return [f"{channel} channel left at v{candidate.version}: {exc}"]
    return [
        f"{state.channel} channel rolled back to v{state.version}, v{candidate.version} withdrawn"
        for state in states
    ]


def _canary_started(service: DistributionService, candidate: ModelRef) -> datetime:
    """When the canary began serving the candidate: its newest promote to that version."""
    for change in service.channels.history("canary", limit=50):
        if (
            change.action == "promote"
            and change.name == candidate.name
            and change.to_version == candidate.version
        ):
            return change.at
    current = service.channels.read("canary")
    if current is None:  # _serves checked it a moment ago; a concurrent change is a conflict
        raise PromotionError("the canary channel vanished while its health was being judged")
    return current.state.updated_at


def _duration(span: timedelta) -> str:
    minutes = max(0, int(span.total_seconds() // 60))
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min"


def advance_all(
    jobs: Iterable[JobRecord],
    *,
    store: JobStore,
    service: DistributionService,
    reader: PromotionReader,
    policy: PromotionPolicy | None = None,
    clock: Callable[[], datetime] = _utc_now,
    actor: str = ACTOR,
) -> list[PromotionDecision]:
    """:func:`advance` each job (the scheduled ``advance`` event and ``loop run-once``).

    One job's failure does not hold the others back: every job is tried, then
    ``AdvanceFailedError`` names each one that failed (the others' decisions are already in their
    records, and in the exception's ``decisions``).
    """
    decisions: list[PromotionDecision] = []
    failures: list[tuple[str, Exception]] = []
    for job in jobs:
        try:
            decisions.append(
                advance(
                    job,
                    jobs=store,
                    service=service,
                    reader=reader,
                    policy=policy,
                    clock=clock,
                    actor=actor,
                )
            )
        except Exception as exc:
            failures.append((job.job_id, exc))
    if failures:
        raise AdvanceFailedError(decisions, failures)
    return decisions


class AdvanceFailedError(PromotionError):
    """Some jobs could not be advanced; ``failures`` says which and why."""

    def __init__(
        self, decisions: list[PromotionDecision], failures: list[tuple[str, Exception]]
    ) -> None:
        described = "; ".join(f"{job_id}: {type(exc).__name__}: {exc}" for job_id, exc in failures)
        super().__init__(f"{len(failures)} training job(s) could not be advanced: {described}")
        self.decisions = decisions
        self.failures = failures


# --- wiring --------------------------------------------------------------------------------------


def reader_from_environment() -> PromotionReader:
    """The reader for this process's stack: shared clients, names from the environment."""
    from functions.common import aws_clients
    from functions.common.environment import resource_name
    from functions.fleet.registry import DeviceRegistry

    return PromotionReader(
        aws_clients.s3_client(),
        models_bucket=resource_name("MODELS_BUCKET"),
        transcripts_bucket=resource_name("TRANSCRIPTS_BUCKET"),
        feedback_bucket=resource_name("FEEDBACK_BUCKET"),
        devices=DeviceRegistry(aws_clients.dynamodb_client(), resource_name("DEVICES_TABLE")),
    )


def advance_jobs_from_environment(
    service: DistributionService,
    *,
    job_id: str | None = None,
    policy: PromotionPolicy | None = None,
    clock: Callable[[], datetime] = _utc_now,
    actor: str = ACTOR,
) -> list[PromotionDecision]:
    """Advance every active job (or just ``job_id``) of this process's stack."""
    from functions.common import aws_clients
    from functions.common.environment import resource_name

    store = JobStore(aws_clients.s3_client(), resource_name("MODELS_BUCKET"))
    if job_id is None:
        jobs = list(store.active())
    else:
        found = store.get(job_id)
        if found is None:
            raise PromotionError(f"training job {job_id!r} does not exist")
        jobs = [found[0]]
    return advance_all(
        jobs,
        store=store,
        service=service,
        reader=reader_from_environment(),
        policy=policy,
        clock=clock,
        actor=actor,
    )
