"""The distribution function's events, end to end against the moto server."""

from __future__ import annotations

from pathlib import Path

import pytest

from functions.distribution.signing import ManifestSigner
from functions.model_distribution import InvalidEventError, handler, parse_event
from tests.functions.batch_stack import BatchStack
from tests.functions.distribution.artifacts import make_model_dir


@pytest.fixture
def configured(
    batch_stack: BatchStack, tmp_path: Path, signer: ManifestSigner, monkeypatch: pytest.MonkeyPatch
) -> BatchStack:
    monkeypatch.setenv("EDGESCRIBE_SIGNING_KEY_FILE", signer.source)
    return batch_stack


def _stage_candidate(stack: BatchStack, folder: Path, prefix: str) -> None:
    for name in ("model.onnx", "manifest.json"):
        stack.s3.put_object(
            Bucket=stack.names.feedback_bucket,
            Key=f"{prefix}/{name}",
            Body=(folder / name).read_bytes(),
        )


def test_publish_promote_rollback_and_status_through_the_function(
    configured: BatchStack, tmp_path: Path
) -> None:
    bucket = configured.names.feedback_bucket
    for version in (1, 2):
        _stage_candidate(configured, make_model_dir(tmp_path, version), f"candidates/run-{version}")
        published = handler(
            {
                "action": "publish",
                "source_bucket": bucket,
                "source_prefix": f"candidates/run-{version}/",
            }
        )
        assert published["version"] == version
        assert not published["already_published"]
    handler({"action": "promote", "channel": "stable", "version": 1})
    promoted = handler(
        {"action": "promote", "channel": "stable", "version": 2, "reason": "gate passed"}
    )
    assert promoted["state"]["version"] == 2
    rolled = handler({"action": "rollback", "channel": "stable", "reason": "health gate"})
    assert rolled["states"][0]["version"] == 1
    assert rolled["states"][0]["rollback"]["revoked_versions"] == [2]
    status = handler({"action": "status"})["status"]
    stable = next(c for c in status["channels"] if c["channel"] == "stable")
    assert [h["action"] for h in stable["history"]] == ["rollback", "promote", "promote"]


def test_the_daily_schedule_event_refreshes(configured: BatchStack) -> None:
    scheduled = {"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}}
    assert parse_event(scheduled).action == "refresh"
    assert handler(scheduled) == {"action": "refresh", "refreshed": []}


def test_publish_from_a_missing_candidate_names_the_object(configured: BatchStack) -> None:
    with pytest.raises(InvalidEventError, match=r"candidates/none/manifest.json"):
        handler(
            {
                "action": "publish",
                "source_bucket": configured.names.feedback_bucket,
                "source_prefix": "candidates/none",
            }
        )


@pytest.mark.parametrize(
    ("event", "message"),
    [
        ({"action": "promote", "channel": "beta", "version": 1}, "channel"),
        ({"action": "promote", "channel": "stable", "version": 0}, "version"),
        ({"action": "explode"}, "action"),
        ([], "event"),
    ],
)
def test_rejects_malformed_events_with_the_field_named(event: object, message: str) -> None:
    with pytest.raises(InvalidEventError, match=message):
        parse_event(event)
