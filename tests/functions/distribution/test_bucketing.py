from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from functions.distribution.bucketing import BUCKETS, in_rollout, rollout_bucket

FLEET = [f"device-{n:04d}" for n in range(1000)]


def test_canary_at_ten_percent_reaches_about_ten_percent_of_a_thousand_devices() -> None:
    reached = {device for device in FLEET if in_rollout(device, "edgescribe-edge", 10.0)}
    # Binomial(1000, 0.1): mean 100, sd 9.5. ±3 sd.
    assert 70 <= len(reached) <= 130
    again = {device for device in FLEET if in_rollout(device, "edgescribe-edge", 10.0)}
    assert again == reached, "bucketing must give every device the same answer on every call"


def test_widening_a_rollout_only_adds_devices_never_swaps_them() -> None:
    previous: set[str] = set()
    for percent in (1, 5, 10, 25, 50, 100):
        reached = {device for device in FLEET if in_rollout(device, "edgescribe-edge", percent)}
        assert previous <= reached
        previous = reached
    assert previous == set(FLEET)


def test_each_model_gets_its_own_canary_cohort() -> None:
    edge = {device for device in FLEET if in_rollout(device, "edgescribe-edge", 10.0)}
    other = {device for device in FLEET if in_rollout(device, "edgescribe-tiny", 10.0)}
    assert edge != other
    assert len(edge & other) < len(edge) / 2


def test_zero_percent_reaches_nobody() -> None:
    assert not any(in_rollout(device, "edgescribe-edge", 0.0) for device in FLEET)


@given(st.text(min_size=1, max_size=64), st.text(max_size=32))
def test_bucket_is_in_range_and_deterministic_for_any_id(device_id: str, salt: str) -> None:
    bucket = rollout_bucket(device_id, salt)
    assert 0 <= bucket < BUCKETS
    assert rollout_bucket(device_id, salt) == bucket
