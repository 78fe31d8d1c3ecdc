"""The learning loop end to end on the local stack (moto server, API, batch poller, local training).

1. Corrections of a domain the stable model fails (drug names, spoken by a training voice) →
   trigger → candidate trained → gate passes → shadow → canary → stable → an edge agent runs it.
2. Poisoned corrections (random text) are rejected by the guardrails, and nothing is trained or
   promoted, even when a run is forced.
"""

from __future__ import annotations

import io
import random
import time
from collections.abc import Iterator
from dataclasses import replace

import pytest

from edgescribe.commands.loop import promotion_policy, run_turn
from edgescribe.demo.loop import (
    CANARY_DEVICE,
    KIOSK_DEVICE,
    LOOP_ENVIRONMENT,
    LearningLoopStep,
    ensure_release,
)
from edgescribe.demo.loop_traffic import app_token, correct_recordings
from edgescribe.demo.steps import DemoContext
from edgescribe.local.running_stack import LocalStack, run_local_stack, temporary_environment
from edgescribe.samples import list_samples
from functions.common import aws_clients
from functions.distribution.service import service_from_environment
from functions.fleet.registry import DeviceRegistry
from functions.learning.job_store import JobStore
from functions.learning.records import Assessment, GateReport
from models.learning.clips import load_clips
from models.runtime import storage_layout
from models.runtime.artifacts import DEFAULT_MODEL_NAME

pytestmark = pytest.mark.slow

#: Words with nothing to do with what was said: what a spammer or a broken client sends.
RANDOM_WORDS = [
    "purple",
    "monkey",
    "dishwasher",
    "galaxy",
    "violin",
    "tractor",
    "pillow",
    "sunset",
    "quantum",
    "marble",
]


@pytest.fixture
def stack() -> Iterator[LocalStack]:
    with run_local_stack(stack="loop", api=True, quiet=True) as running:
        yield running


def _context(stack: LocalStack, out: io.StringIO) -> DemoContext:
    return DemoContext(
        stack=stack, samples=list_samples(), out=out, deadline=time.monotonic() + 900
    )


def test_corrections_of_a_failing_domain_end_as_the_stable_model_on_devices(
    stack: LocalStack,
) -> None:
    out = io.StringIO()
    LearningLoopStep().run(_context(stack, out))
    output = out.getvalue()

    bucket = stack.names.models_bucket
    s3 = aws_clients.s3_client()
    store = JobStore(s3, bucket)
    [job] = store.list_jobs(limit=None)
    assert job.status == "stable", output
    assert job.candidate is not None
    assert job.candidate.version == 2
    gate = GateReport.model_validate_json(store.read_file(job.job_id, "gate.json") or b"")
    assert gate.passed, output
    domain = next(item for item in gate.sets if item.kind == "domain")
    assert domain.candidate_cer <= domain.baseline_cer - gate.min_domain_gain
    for item in gate.sets:
        if item.kind == "general":
            assert item.delta <= gate.tolerance, item
    # the stable channel, the published manifest and the fleet all say v2
    service = service_from_environment()
    stable = service.channels.read("stable")
    assert stable is not None
    assert (stable.state.name, stable.state.version) == (DEFAULT_MODEL_NAME, 2)
    manifest, _ = service.models.require_manifest(DEFAULT_MODEL_NAME, 2)
    assert manifest.parent_version == 1
    assert manifest.signatures, "published candidates are signed"
    registry = DeviceRegistry(aws_clients.dynamodb_client(), stack.names.devices_table)
    for device_id in (CANARY_DEVICE, KIOSK_DEVICE):
        record = registry.get(device_id)
        assert record is not None
        assert record.current_version in (1, 2)  # the kiosk's last heartbeat predates its update
    assert "runs v2" in output.split(KIOSK_DEVICE)[-1]
    # shadow results were stored apart, never as user transcripts
    shadow = s3.list_objects_v2(Bucket=stack.names.transcripts_bucket, Prefix="shadow/")
    assert shadow.get("KeyCount", 0) >= 8
    assert all(".v2.json" in item["Key"] for item in shadow.get("Contents", []))


def test_poisoned_corrections_are_rejected_and_nothing_is_trained_or_promoted(
    stack: LocalStack,
) -> None:
    out = io.StringIO()
    context = _context(stack, out)
    rng = random.Random(7)
    poisoned = [
        replace(clip, text=" ".join(rng.sample(RANDOM_WORDS, len(clip.text.split()))))
        for clip in load_clips("corrections")[:24]
    ]
    assert stack.credentials is not None
    with temporary_environment(LOOP_ENVIRONMENT):
        service = service_from_environment()
        ensure_release(context, service, stack)
        correct_recordings(context, app_token(stack.credentials), poisoned, "spam")
        policy = promotion_policy(min_shadow_samples=1, canary_soak_minutes=0)
        report = run_turn(service, policy)
        forced = run_turn(service, policy, force=True)

    assert report.trigger.ingest is not None
    assert report.trigger.ingest.assessed == 24
    assert report.trigger.ingest.accepted == 0
    reasons = report.trigger.ingest.by_reason
    assert sum(reasons.values()) == 24
    assert set(reasons) <= {"too many words changed", "character error rate too high"}, reasons
    assert report.trigger.job is None
    assert forced.trigger.job is None, "a forced run must not train on rejected corrections"
    assert forced.trigger.decision is not None
    assert not forced.trigger.decision.start
    assert not report.decisions
    assert not forced.decisions
    # every verdict is stored with its reason
    s3 = aws_clients.s3_client()
    listing = s3.list_objects_v2(
        Bucket=stack.names.feedback_bucket, Prefix=storage_layout.ASSESSMENTS_PREFIX
    )
    verdicts = [
        Assessment.model_validate_json(
            s3.get_object(Bucket=stack.names.feedback_bucket, Key=item["Key"])["Body"].read()
        )
        for item in listing.get("Contents", [])
    ]
    assert len(verdicts) == 24
    assert all(not v.accepted and v.reason for v in verdicts)
    assert JobStore(s3, stack.names.models_bucket).list_jobs(limit=None) == []
    stable = service.channels.read("stable")
    assert stable is not None
    assert stable.state.version == 1
    assert service.models.published_versions(DEFAULT_MODEL_NAME) == [1]
