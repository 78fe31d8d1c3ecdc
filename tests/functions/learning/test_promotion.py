"""The promotion decision against the moto server: real channels, job records, heartbeats, evidence.

Shadow evidence is stored here as the ``ShadowResult`` documents the batch function writes, with
texts and latencies chosen per test: the decision is a function of that stored evidence, and
real wall-clock latencies would make a threshold test flaky. ``test_batch_shadow`` covers the
runner producing such documents from real inference.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from functions.distribution.service import DistributionService
from functions.distribution.signing import ManifestSigner, generate_signing_key
from functions.fleet.registry import DeviceRegistry, HeartbeatReport
from functions.learning.job_store import JobStore
from functions.learning.promotion import (
    PromotionDecision,
    PromotionPolicy,
    PromotionReader,
    advance,
    advance_all,
    canary_health,
    judge_shadow,
    percentile,
    shadow_evidence,
)
from functions.learning.records import (
    Assessment,
    JobRecord,
    JobStatus,
    ShadowResult,
    ShadowSide,
)
from functions.learning.shadow import ShadowRunner
from models.runtime import storage_layout
from models.runtime.manifest import count_valid_signatures
from models.runtime.scoring import cer
from models.runtime.transcript import ModelRef
from tests.functions.batch_stack import BatchStack
from tests.functions.distribution.conftest import Clock
from tests.functions.learning.loop_models import publish_stable, stage_candidate

JOB_ID = "retrain-2026-11-25"
STABLE = ModelRef(name="edgescribe-edge", version=1)
CANDIDATE = ModelRef(name="edgescribe-edge", version=2)
#: Few samples, two corrections: the same rules as the defaults at a scale a test can store.
POLICY = PromotionPolicy(min_shadow_samples=3, min_corrected=2)
#: Real reference texts of the committed sample clips (what users said).
SAID = [
    "the weather looks clear today so we can walk to the park",
    "please call me back at five five five two one nine eight",
    "can you turn off the kitchen lights before bed",
    "the meeting has moved to thursday afternoon",
]


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def signer(tmp_path: Path) -> ManifestSigner:
    return generate_signing_key(tmp_path / "keys" / "signing.pem")


@pytest.fixture
def service(batch_stack: BatchStack, signer: ManifestSigner, clock: Clock) -> DistributionService:
    service = DistributionService(
        batch_stack.s3, batch_stack.names.models_bucket, signer=signer, clock=clock
    )
    publish_stable(service)
    return service


@pytest.fixture
def store(batch_stack: BatchStack) -> JobStore:
    return JobStore(batch_stack.s3, batch_stack.names.models_bucket)


@pytest.fixture
def registry(batch_stack: BatchStack) -> DeviceRegistry:
    return DeviceRegistry(batch_stack.dynamodb, batch_stack.names.devices_table)


@pytest.fixture
def reader(batch_stack: BatchStack, registry: DeviceRegistry) -> PromotionReader:
    return PromotionReader(
        batch_stack.s3,
        models_bucket=batch_stack.names.models_bucket,
        transcripts_bucket=batch_stack.names.transcripts_bucket,
        feedback_bucket=batch_stack.names.feedback_bucket,
        devices=registry,
    )


class Loop:
    """One training job and everything advance needs, so a test reads as the story it tells."""

    def __init__(
        self,
        stack: BatchStack,
        service: DistributionService,
        store: JobStore,
        reader: PromotionReader,
        registry: DeviceRegistry,
        clock: Clock,
        root: Path,
    ) -> None:
        self.stack, self.service, self.store, self.reader = stack, service, store, reader
        self.registry, self.clock, self.root = registry, clock, root

    def job(self, status: JobStatus = "gate_passed", *, stage: bool = True) -> JobRecord:
        """A job as the training job leaves it (record in ``job.json``, candidate folder)."""
        if stage:
            stage_candidate(self.stack.s3, self.stack.names.models_bucket, JOB_ID, self.root)
        record = JobRecord(
            job_id=JOB_ID,
            status=status,
            window="2026-11-25",
            created_at=self.clock.now,
            updated_at=self.clock.now,
            candidate=CANDIDATE,
            detail="gate passed: every set within tolerance",
        )
        assert self.store.create(record)
        return record

    def advance(self, job: JobRecord, policy: PromotionPolicy = POLICY) -> PromotionDecision:
        return advance(
            job,
            jobs=self.store,
            service=self.service,
            reader=self.reader,
            policy=policy,
            clock=self.clock,
        )

    def record(self) -> JobRecord:
        found = self.store.get(JOB_ID)
        assert found is not None
        return found[0]

    def version(self, channel: str) -> int | None:
        current = self.service.channels.read(channel)  # type: ignore[arg-type]
        return current.state.version if current else None

    def shadow_result(
        self,
        recording_id: str,
        stable_text: str,
        shadow_text: str,
        *,
        stable_seconds: float = 0.2,
        shadow_seconds: float = 0.2,
    ) -> ShadowResult:
        result = ShadowResult(
            tenant="acme",
            recording_id=recording_id,
            recording_key=storage_layout.recording_key("acme", recording_id, "wav"),
            audio_seconds=3.0,
            stable=ShadowSide(model=STABLE, text=stable_text, seconds=stable_seconds),
            shadow=ShadowSide(model=CANDIDATE, text=shadow_text, seconds=shadow_seconds),
            disagreement=cer(stable_text, shadow_text),
            created_at=self.clock.now,
        )
        self.stack.s3.put_object(
            Bucket=self.stack.names.transcripts_bucket,
            Key=storage_layout.shadow_transcript_key("acme", recording_id, CANDIDATE.version),
            Body=result.model_dump_json().encode(),
        )
        return result

    def correction(self, recording_id: str, corrected: str, *, accepted: bool = True) -> None:
        assessment = Assessment(
            feedback_id=f"fb-{recording_id}-{accepted}",
            tenant="acme",
            transcript_id=recording_id,
            audio_ref=storage_layout.recording_key("acme", recording_id, "wav"),
            original_text="",
            corrected_text=corrected,
            model=STABLE,
            received_at=self.clock.now,
            assessed_at=self.clock.now,
            accepted=accepted,
            reason=None if accepted else "implausible_rewrite: 90 % of words changed",
        )
        self.stack.s3.put_object(
            Bucket=self.stack.names.feedback_bucket,
            Key=storage_layout.assessment_key(assessment.feedback_id),
            Body=assessment.model_dump_json().encode(),
        )

    def agreeing_evidence(self) -> None:
        for index, text in enumerate(SAID[:3]):
            self.shadow_result(f"call-{index}", text, text)

    def heartbeat(
        self,
        device_id: str,
        version: int,
        health: str,
        error: str | None = None,
        *,
        tenant: str = "acme",
    ) -> None:
        report = HeartbeatReport(version=version, health=health, last_error=error)  # type: ignore[arg-type]
        self.registry.record_heartbeat(device_id, tenant, report, now=self.clock.now)

    def to_canary(self) -> JobRecord:
        job = self.job()
        assert self.advance(job).to_status == "shadow"
        self.agreeing_evidence()
        assert self.advance(job).to_status == "canary"
        return job


@pytest.fixture
def loop(
    batch_stack: BatchStack,
    service: DistributionService,
    store: JobStore,
    reader: PromotionReader,
    registry: DeviceRegistry,
    clock: Clock,
    tmp_path: Path,
) -> Loop:
    return Loop(batch_stack, service, store, reader, registry, clock, tmp_path)


# --- gate_passed → shadow ------------------------------------------------------------------------


def test_gate_passed_candidate_is_published_signed_and_put_on_shadow(
    loop: Loop, signer: ManifestSigner
) -> None:
    decision = loop.advance(loop.job())

    assert (decision.action, decision.from_status, decision.to_status) == (
        "promote",
        "gate_passed",
        "shadow",
    )
    assert loop.version("shadow") == 2
    assert loop.version("stable") == 1
    assert loop.version("canary") is None
    manifest, _ = loop.service.models.require_manifest("edgescribe-edge", 2)
    assert count_valid_signatures(manifest, signer.trusted_keys()) == 1
    record = loop.record()
    assert record.status == "shadow"
    assert record.candidate == CANDIDATE
    assert record.detail == decision.detail
    assert "published edgescribe-edge v2" in record.detail


def test_advancing_twice_in_the_same_state_does_not_promote_twice(loop: Loop) -> None:
    stale = loop.job()
    first = loop.advance(stale)
    second = loop.advance(stale)  # a second scheduler holding the same old listing

    assert first.to_status == "shadow"
    assert (second.action, second.from_status, second.to_status) == ("wait", "shadow", "shadow")
    history = loop.service.channels.history("shadow")
    assert [(change.action, change.to_version) for change in history] == [("promote", 2)]
    assert "0 of 3 shadow samples" in loop.record().detail


def test_missing_candidate_folder_rejects_the_job_with_the_missing_object(loop: Loop) -> None:
    decision = loop.advance(loop.job(stage=False))

    assert (decision.action, decision.to_status) == ("reject", "rejected")
    assert "candidate/manifest.json" in loop.record().detail
    assert loop.version("shadow") is None


def test_candidate_not_newer_than_stable_is_rejected_before_publishing(
    loop: Loop, tmp_path: Path
) -> None:
    job = loop.job()
    loop.service.publish(
        stage_candidate(loop.stack.s3, loop.stack.names.models_bucket, "other-job", tmp_path / "o")
    )
    loop.service.promote("stable", 2, actor="ops", name="edgescribe-edge")

    decision = loop.advance(job)

    assert decision.to_status == "rejected"
    assert "not newer than stable v2" in loop.record().detail
    assert loop.version("shadow") is None


def test_job_in_a_status_promotion_does_not_own_is_left_untouched(loop: Loop) -> None:
    job = loop.job("trained")

    decision = loop.advance(job)

    assert (decision.action, decision.to_status) == ("skip", "trained")
    assert loop.record() == job
    assert loop.version("shadow") is None


# --- shadow → canary | rejected ------------------------------------------------------------------


def test_not_enough_shadow_samples_keeps_the_job_in_shadow(loop: Loop) -> None:
    job = loop.job()
    loop.advance(job)
    loop.shadow_result("call-0", SAID[0], SAID[0])
    loop.shadow_result("call-1", SAID[1], SAID[1])

    decision = loop.advance(job)

    assert (decision.action, decision.to_status) == ("wait", "shadow")
    assert decision.evidence["samples"] == 2
    assert "2 of 3 shadow samples so far; 1 more needed" in loop.record().detail
    assert loop.version("shadow") == 2
    assert loop.version("canary") is None


def test_good_shadow_evidence_moves_the_candidate_to_canary(loop: Loop) -> None:
    job = loop.job()
    loop.advance(job)
    loop.shadow_result("call-0", SAID[0], SAID[0], stable_seconds=0.20, shadow_seconds=0.25)
    loop.shadow_result("call-1", "please call me back at five five nine", SAID[1])
    loop.shadow_result("call-2", SAID[2], SAID[2])
    loop.correction("call-1", SAID[1])  # the user fixed stable's mistake; shadow had it right
    loop.correction("call-2", SAID[2])

    decision = loop.advance(job)

    assert (decision.action, decision.to_status) == ("promote", "canary")
    canary = loop.service.channels.read("canary")
    assert canary is not None
    assert (canary.state.version, canary.state.rollout_percent) == (2, 10.0)
    assert decision.evidence["samples"] == 3
    assert decision.evidence["corrected"] == 2
    assert decision.evidence["shadow_cer"] == 0.0
    stable_cer = decision.evidence["stable_cer"]
    assert stable_cer is not None
    assert stable_cer > 0
    assert decision.evidence["latency_ratio"] == pytest.approx(1.25)
    assert loop.record().status == "canary"


def test_too_much_disagreement_rejects_and_clears_the_shadow_channel(
    loop: Loop, batch_stack: BatchStack
) -> None:
    job = loop.job()
    loop.advance(job)
    for index, text in enumerate(SAID[:3]):
        loop.shadow_result(f"call-{index}", text, "zzz qqq")

    decision = loop.advance(job)

    assert (decision.action, decision.to_status) == ("reject", "rejected")
    assert decision.evidence["mean_disagreement"] is not None
    assert decision.evidence["mean_disagreement"] > 0.5
    record = loop.record()
    assert record.status == "rejected"
    assert "disagrees with stable too much" in record.detail
    shadow = loop.service.channels.read("shadow")
    assert shadow is not None
    assert shadow.state.version == 1
    assert shadow.state.rollback is not None
    assert shadow.state.rollback.revoked_versions == [2]
    runner = ShadowRunner(
        batch_stack.s3,
        models_bucket=batch_stack.names.models_bucket,
        transcripts_bucket=batch_stack.names.transcripts_bucket,
    )
    assert runner.trial_model(STABLE) is None  # the batch function stops shadowing it
    assert loop.version("canary") is None


def test_slow_shadow_model_is_rejected(loop: Loop) -> None:
    job = loop.job()
    loop.advance(job)
    for index, text in enumerate(SAID[:3]):
        loop.shadow_result(f"call-{index}", text, text, stable_seconds=0.2, shadow_seconds=0.5)

    decision = loop.advance(job)

    assert decision.to_status == "rejected"
    assert decision.evidence["latency_ratio"] == pytest.approx(2.5)
    assert "too slow" in loop.record().detail
    assert loop.version("shadow") == 1


def test_shadow_less_accurate_on_corrected_recordings_is_rejected(loop: Loop) -> None:
    job = loop.job()
    loop.advance(job)
    worse = "the weather looks clear to day so we can walk to the bark"
    loop.shadow_result("call-0", SAID[0], worse)  # small disagreement, but wrong
    loop.shadow_result("call-1", SAID[1], SAID[1])
    loop.shadow_result("call-2", SAID[2], SAID[2])
    loop.correction("call-0", SAID[0])
    loop.correction("call-1", SAID[1])
    loop.correction("call-2", "ignored: the guardrail rejected this one", accepted=False)

    decision = loop.advance(job)

    assert decision.to_status == "rejected"
    assert decision.evidence["corrected"] == 2
    assert decision.evidence["stable_cer"] == 0.0
    shadow_cer = decision.evidence["shadow_cer"]
    assert shadow_cer is not None
    assert shadow_cer > 0
    assert "less accurate than stable" in loop.record().detail


def test_a_candidate_taken_off_shadow_by_an_operator_is_rejected(loop: Loop) -> None:
    job = loop.job()
    loop.advance(job)
    loop.service.rollback("shadow", actor="ops", to_version=1, reason="manual stop")
    loop.agreeing_evidence()

    decision = loop.advance(job)

    assert decision.to_status == "rejected"
    assert "changed outside the learning loop" in loop.record().detail
    assert loop.version("canary") is None


def test_a_hostile_shadow_document_is_skipped_and_counted(loop: Loop) -> None:
    job = loop.job()
    loop.advance(job)
    loop.shadow_result("call-0", SAID[0], SAID[0])
    loop.stack.s3.put_object(
        Bucket=loop.stack.names.transcripts_bucket,
        Key=storage_layout.shadow_transcript_key("acme", "forged", 2),
        Body=b'{"disagreement": -5, "__proto__": {}}',
    )

    decision = loop.advance(job)

    assert (decision.action, decision.to_status) == ("wait", "shadow")
    assert decision.evidence["samples"] == 1
    assert decision.evidence["unreadable_documents"] == 1


class RacingJobStore(JobStore):
    """A real store where another scheduler records its decision just before this one writes."""

    def update(self, job_id: str, status: JobStatus, **changes: object) -> JobRecord:
        if changes.get("expected_status") == "gate_passed":
            super().update(job_id, "shadow", detail="the other run's decision")
        return super().update(job_id, status, **changes)  # type: ignore[arg-type]


def test_a_run_that_loses_the_race_records_nothing_and_promotes_nothing_twice(
    loop: Loop, batch_stack: BatchStack
) -> None:
    racing = RacingJobStore(batch_stack.s3, batch_stack.names.models_bucket)
    job = loop.job()

    decision = advance(
        job, jobs=racing, service=loop.service, reader=loop.reader, policy=POLICY, clock=loop.clock
    )

    assert (decision.action, decision.to_status) == ("skip", "shadow")
    assert "another run moved the job to 'shadow'" in decision.reasons[0]
    assert loop.record().detail == "the other run's decision"
    assert len(loop.service.channels.history("shadow")) == 1


# --- canary → stable | rejected ------------------------------------------------------------------


def test_canary_with_a_device_that_reverted_it_is_rolled_back_and_rejected(
    loop: Loop, clock: Clock
) -> None:
    job = loop.to_canary()
    clock.now += timedelta(minutes=5)
    loop.heartbeat("phone-1", 2, "ok")
    loop.heartbeat("phone-2", 1, "degraded", "update v2 reverted: health check after switch failed")

    decision = loop.advance(job)

    assert (decision.action, decision.to_status) == ("reject", "rejected")
    assert decision.evidence["unhealthy_devices"] == 1
    record = loop.record()
    assert "phone-2" in record.detail
    assert "health check after switch failed" in record.detail
    assert loop.version("canary") == 1
    assert loop.version("shadow") == 1  # the withdrawn version leaves every channel
    canary = loop.service.channels.read("canary")
    assert canary is not None
    assert canary.state.rollback is not None
    assert canary.state.rollback.revoked_versions == [2]
    assert loop.version("stable") == 1


def test_canary_device_failing_on_the_candidate_is_unhealthy(loop: Loop, clock: Clock) -> None:
    job = loop.to_canary()
    clock.now += timedelta(hours=2)
    loop.heartbeat("phone-1", 2, "ok")
    loop.heartbeat("phone-3", 2, "failing", "engine crashed", tenant="beta")  # any tenant counts

    assert loop.advance(job).to_status == "rejected"
    assert "phone-3 (failing on v2: engine crashed)" in loop.record().detail


def test_healthy_canary_waits_for_the_soak_then_goes_stable(loop: Loop, clock: Clock) -> None:
    job = loop.to_canary()
    clock.now += timedelta(minutes=10)
    loop.heartbeat("phone-1", 2, "ok")
    loop.heartbeat("phone-2", 1, "ok")  # outside the canary cohort: neither helps nor hurts

    waiting = loop.advance(job)
    assert (waiting.action, waiting.to_status) == ("wait", "canary")
    assert "canary has soaked 10 min of 1 h 00 min" in loop.record().detail

    clock.now += timedelta(minutes=55)
    loop.heartbeat("phone-1", 2, "ok")
    promoted = loop.advance(job)

    assert (promoted.action, promoted.to_status) == ("promote", "stable")
    assert promoted.evidence["healthy_devices"] == 1
    assert loop.version("stable") == 2
    assert loop.record().status == "stable"
    again = loop.advance(job)
    assert (again.action, again.to_status) == ("skip", "stable")
    assert [c.to_version for c in loop.service.channels.history("stable")] == [2, 1]


def test_soaked_canary_without_a_healthy_device_keeps_waiting(loop: Loop, clock: Clock) -> None:
    job = loop.to_canary()
    clock.now += timedelta(hours=3)
    loop.heartbeat("phone-2", 1, "ok")

    decision = loop.advance(job)

    assert (decision.action, decision.to_status) == ("wait", "canary")
    assert "0 of 1 healthy canary device(s) reported" in loop.record().detail
    assert loop.version("stable") == 1


def test_healthy_heartbeats_from_before_the_canary_began_do_not_count(
    loop: Loop, clock: Clock
) -> None:
    job = loop.job()
    loop.advance(job)
    loop.heartbeat("lab-1", 2, "ok")  # a lab device pinned to shadow ran the candidate
    clock.now += timedelta(minutes=1)
    loop.agreeing_evidence()
    loop.advance(job)  # canary begins now
    clock.now += timedelta(hours=2)

    assert loop.advance(job).to_status == "canary"  # no healthy canary device yet
    loop.heartbeat("phone-1", 2, "ok")
    assert loop.advance(job).to_status == "stable"


def test_a_device_that_rejected_the_candidate_even_during_shadow_blocks_it(
    loop: Loop, clock: Clock
) -> None:
    """Failures are evidence whenever they happened: a version is never reused."""
    job = loop.job()
    loop.advance(job)
    loop.heartbeat("lab-1", 1, "degraded", "v2 rejected: signature by an unknown key")
    clock.now += timedelta(minutes=1)
    loop.agreeing_evidence()
    loop.advance(job)  # canary begins now
    clock.now += timedelta(hours=2)
    loop.heartbeat("phone-1", 2, "ok")

    assert loop.advance(job).to_status == "rejected"
    assert "lab-1" in loop.record().detail


def test_advance_all_advances_every_job_and_names_the_ones_that_fail(
    loop: Loop, store: JobStore
) -> None:
    job = loop.job()
    ghost = job.model_copy(update={"job_id": "retrain-never-created"})

    with pytest.raises(Exception, match="retrain-never-created") as raised:
        advance_all(
            [ghost, job],
            store=store,
            service=loop.service,
            reader=loop.reader,
            policy=POLICY,
            clock=loop.clock,
        )

    assert [d.to_status for d in raised.value.decisions] == ["shadow"]  # type: ignore[attr-defined]
    assert loop.record().status == "shadow"


# --- the pure parts ------------------------------------------------------------------------------


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 21)]
    assert percentile(values, 0.95) == 19.0
    assert percentile([0.3], 0.95) == 0.3
    assert percentile([], 0.95) == 0.0


def test_shadow_checks_wait_before_judging_anything(loop: Loop) -> None:
    results = [loop.shadow_result("call-0", SAID[0], "zzz")]
    action, reasons = judge_shadow(shadow_evidence(results, {}), POLICY)
    assert action == "wait"
    assert reasons == ["1 of 3 shadow samples so far; 2 more needed"]


def test_stable_time_of_zero_makes_any_shadow_time_too_slow(loop: Loop) -> None:
    results = [
        loop.shadow_result(f"c{i}", t, t, stable_seconds=0.0, shadow_seconds=0.1)
        for i, t in enumerate(SAID[:3])
    ]
    action, reasons = judge_shadow(shadow_evidence(results, {}), POLICY)
    assert action == "reject"
    assert "too slow" in reasons[0]


def test_a_device_rollback_to_the_candidate_is_not_read_as_a_failure() -> None:
    from functions.fleet.registry import DeviceRecord

    since = datetime(2026, 11, 25, tzinfo=UTC)
    device = DeviceRecord(
        device_id="phone-9",
        tenant="acme",
        current_version=2,
        health="ok",
        last_error="rollback v2 rejected: directive expired",
        last_heartbeat=since + timedelta(minutes=1),
        registered_at=since,
    )
    health = canary_health([device], 2, since)
    assert health.unhealthy == ()
    assert health.healthy == ("phone-9",)


def test_a_latency_ratio_of_a_few_milliseconds_is_not_held_against_the_shadow(loop: Loop) -> None:
    results = [
        loop.shadow_result(f"c{i}", t, t, stable_seconds=0.010, shadow_seconds=0.025)
        for i, t in enumerate(SAID[:3])
    ]
    evidence = shadow_evidence(results, {})
    assert evidence.latency_ratio == pytest.approx(2.5)
    action, _ = judge_shadow(evidence, POLICY)
    assert action == "promote"


def test_a_revert_reported_before_the_devices_next_clean_heartbeat_still_rejects_the_canary(
    loop: Loop, clock: Clock
) -> None:
    job = loop.to_canary()
    clock.now += timedelta(minutes=5)
    loop.heartbeat("phone-1", 2, "ok")
    loop.heartbeat("phone-2", 1, "degraded", "update v2 reverted: health check after switch failed")
    clock.now += timedelta(minutes=5)
    loop.heartbeat("phone-2", 1, "ok")  # the agent cleared its error after reporting it once
    clock.now += timedelta(hours=2)

    decision = loop.advance(job)

    assert (decision.action, decision.to_status) == ("reject", "rejected")
    assert "phone-2" in loop.record().detail
    assert loop.version("stable") == 1
