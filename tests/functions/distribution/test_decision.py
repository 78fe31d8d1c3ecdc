"""The device decision rules (pure: channel states in, action out)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from functions.distribution.bucketing import in_rollout
from functions.distribution.channels import Channel, ChannelState
from functions.distribution.decision import decide
from models.runtime.rollback_directive import RollbackDirective

NOW = datetime(2026, 11, 25, tzinfo=UTC)
Channels = dict[Channel, ChannelState | None]
FLEET = [f"device-{n:04d}" for n in range(1000)]


def _state(channel: Channel, version: int, percent: float = 100.0, **extra: object) -> ChannelState:
    return ChannelState.model_validate(
        {
            "channel": channel,
            "name": "edgescribe-edge",
            "version": version,
            "rollout_percent": percent,
            "updated_at": NOW,
            "updated_by": "test",
            **extra,
        }
    )


def _only_stable(version: int) -> Channels:
    return {"stable": _state("stable", version)}


def _directive(to: int, revoked: list[int], name: str = "edgescribe-edge") -> RollbackDirective:
    return RollbackDirective(
        name=name,
        to_version=to,
        revoked_versions=revoked,
        issued_at=NOW,
        expires_at=NOW + timedelta(days=30),
    )


def _canary_device(percent: float, inside: bool) -> str:
    return next(d for d in FLEET if in_rollout(d, "edgescribe-edge", percent) == inside)


def test_nothing_published_means_nothing_to_do() -> None:
    decision = decide("device-1", None, {"shadow": None, "canary": None, "stable": None})
    assert (decision.action, decision.version) == ("none", None)


def test_a_device_without_a_model_is_told_to_install_stable() -> None:
    decision = decide("device-1", None, _only_stable(3))
    assert (decision.action, decision.channel, decision.version) == ("update", "stable", 3)


def test_canary_cohort_gets_the_canary_and_everyone_else_stable() -> None:
    channels: Channels = {"stable": _state("stable", 3), "canary": _state("canary", 4, 10.0)}
    inside, outside = _canary_device(10.0, True), _canary_device(10.0, False)
    assert decide(inside, 3, channels).version == 4
    assert decide(outside, 3, channels).version == 3
    assert decide(outside, 3, channels).action == "none"


def test_a_canary_behind_stable_never_holds_its_cohort_back() -> None:
    channels: Channels = {"stable": _state("stable", 5), "canary": _state("canary", 4, 50.0)}
    for device in FLEET[:50]:
        assert decide(device, 5, channels).version == 5


def test_pinned_devices_follow_their_channel_regardless_of_bucket() -> None:
    channels: Channels = {
        "stable": _state("stable", 3),
        "canary": _state("canary", 4, 100.0),
        "shadow": _state("shadow", 6),
    }
    assert decide("lab-1", 3, channels, pinned="shadow").version == 6
    assert decide("lab-1", 3, channels, pinned="stable").version == 3


def test_shrinking_a_rollout_does_not_push_devices_down() -> None:
    channels: Channels = {"stable": _state("stable", 3), "canary": _state("canary", 4, 0.0)}
    decision = decide("device-7", 4, channels)
    assert (decision.action, decision.version) == ("none", 3)


def test_a_withdrawn_version_is_rolled_back_with_the_signed_directive() -> None:
    directive = _directive(to=3, revoked=[4])
    channels: Channels = {"stable": _state("stable", 3, rollback=directive)}
    decision = decide("device-7", 4, channels)
    assert decision.action == "rollback"
    assert decision.version == 3
    assert decision.directive == directive


def test_rejects_rollback_replay_onto_a_version_the_directive_never_withdrew() -> None:
    channels: Channels = {"stable": _state("stable", 3, rollback=_directive(to=3, revoked=[4]))}
    decision = decide("device-7", 8, channels)
    assert (decision.action, decision.directive) == ("none", None)


def test_a_directive_for_another_model_is_ignored() -> None:
    channels: Channels = {
        "stable": _state("stable", 3, rollback=_directive(3, [4], name="edgescribe-tiny"))
    }
    assert decide("device-7", 4, channels).action == "none"


def test_a_canary_rollback_moves_devices_that_left_the_cohort_too() -> None:
    directive = _directive(to=3, revoked=[4])
    channels: Channels = {
        "stable": _state("stable", 3),
        "canary": _state("canary", 3, 10.0, rollback=directive),
    }
    outside = _canary_device(10.0, False)
    decision = decide(outside, 4, channels)
    assert (decision.action, decision.channel, decision.version) == ("rollback", "stable", 3)
