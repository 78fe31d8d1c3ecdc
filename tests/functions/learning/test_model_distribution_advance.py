"""The distribution function's ``advance`` event: every active training job one step, end to end."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from functions.distribution.service import DistributionService
from functions.distribution.signing import ManifestSigner, generate_signing_key
from functions.learning.job_store import JobStore
from functions.learning.promotion import PromotionError
from functions.learning.records import JobRecord, JobStatus
from functions.model_distribution import handler, parse_event
from models.runtime.transcript import ModelRef
from tests.functions.batch_stack import BatchStack
from tests.functions.learning.loop_models import publish_stable, stage_candidate

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


@pytest.fixture
def signer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ManifestSigner:
    signer = generate_signing_key(tmp_path / "keys" / "signing.pem")
    monkeypatch.setenv("EDGESCRIBE_SIGNING_KEY_FILE", signer.source)
    return signer


@pytest.fixture
def service(batch_stack: BatchStack, signer: ManifestSigner) -> DistributionService:
    service = DistributionService(batch_stack.s3, batch_stack.names.models_bucket, signer=signer)
    publish_stable(service)
    return service


@pytest.fixture
def store(batch_stack: BatchStack) -> JobStore:
    return JobStore(batch_stack.s3, batch_stack.names.models_bucket)


def _job(store: JobStore, job_id: str, status: JobStatus) -> None:
    assert store.create(
        JobRecord(
            job_id=job_id,
            status=status,
            window=job_id.removeprefix("retrain-"),
            created_at=NOW,
            updated_at=NOW,
            candidate=ModelRef(name="edgescribe-edge", version=2),
        )
    )


def test_advance_event_moves_active_jobs_and_leaves_ended_ones(
    batch_stack: BatchStack, service: DistributionService, store: JobStore, tmp_path: Path
) -> None:
    stage_candidate(batch_stack.s3, batch_stack.names.models_bucket, "retrain-2026-11-25", tmp_path)
    _job(store, "retrain-2026-11-25", "gate_passed")
    _job(store, "retrain-2026-11-18", "rejected")

    first = handler({"action": "advance"})
    second = handler({"action": "advance"})

    assert [(d["job_id"], d["action"], d["to_status"]) for d in first["decisions"]] == [
        ("retrain-2026-11-25", "promote", "shadow")
    ]
    assert [(d["job_id"], d["action"], d["to_status"]) for d in second["decisions"]] == [
        ("retrain-2026-11-25", "wait", "shadow")
    ]
    assert "0 of 20 shadow samples" in second["decisions"][0]["reasons"][0]
    shadow = service.channels.read("shadow")
    assert shadow is not None
    assert (shadow.state.version, shadow.state.updated_by) == (2, "edgescribe-learning-loop")
    ended = store.get("retrain-2026-11-18")
    assert ended is not None
    assert ended[0].detail == ""


def test_advance_event_for_one_job(
    batch_stack: BatchStack, service: DistributionService, store: JobStore, tmp_path: Path
) -> None:
    stage_candidate(batch_stack.s3, batch_stack.names.models_bucket, "retrain-2026-11-25", tmp_path)
    _job(store, "retrain-2026-11-25", "gate_passed")

    result = handler({"action": "advance", "job_id": "retrain-2026-11-25"})

    assert result["decisions"][0]["candidate"] == {"name": "edgescribe-edge", "version": 2}
    assert result["decisions"][0]["to_status"] == "shadow"


def test_advance_event_naming_a_missing_job_fails_visibly(
    batch_stack: BatchStack, service: DistributionService
) -> None:
    with pytest.raises(PromotionError, match="retrain-1999-01-01"):
        handler({"action": "advance", "job_id": "retrain-1999-01-01"})


def test_advance_event_parses_and_other_events_still_do() -> None:
    assert parse_event({"action": "advance"}).action == "advance"
    assert parse_event({"action": "refresh"}).action == "refresh"
    assert parse_event({"detail-type": "Scheduled Event"}).action == "refresh"


def test_the_advance_schedule_advances_and_any_other_schedule_refreshes() -> None:
    from functions.model_distribution import AdvanceEvent, RefreshEvent, parse_event

    advance = {"source": "edgescribe.schedule", "schedule": "advance-candidates"}
    daily = {"source": "edgescribe.schedule", "schedule": "refresh-manifests"}
    assert isinstance(parse_event(advance), AdvanceEvent)
    assert isinstance(parse_event(daily), RefreshEvent)
