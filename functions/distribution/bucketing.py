"""Deterministic rollout buckets: which devices a canary at *p* % reaches.

A device's bucket is ``sha256("<model name>:<device id>")`` read as an integer, modulo
``BUCKETS`` (10 000, so rollout percentages have 0.01 % resolution). A canary at *p* % reaches the
devices whose bucket is below ``p * 100``.

Why a hash and not a random draw or a registry flag:

- *stable across calls*: the same device gets the same answer on every request, from every container,
  with no state to store or lose;
- *monotonic*: raising the percentage only adds devices (10 % ⊂ 25 % ⊂ 100 %), so a device never
  flaps between versions while a rollout widens;
- *uniform*: sha256 spreads ids evenly whatever their shape (serial numbers, UUIDs, MACs);
- salted by model name, so each model's canary cohort is a different slice of the fleet.
"""

from __future__ import annotations

import hashlib

BUCKETS = 10_000


def rollout_bucket(device_id: str, salt: str) -> int:
    """The device's bucket in ``[0, BUCKETS)``."""
    digest = hashlib.sha256(f"{salt}:{device_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % BUCKETS


def in_rollout(device_id: str, salt: str, percent: float) -> bool:
    """Whether a rollout at ``percent`` (0–100) reaches this device."""
    if percent <= 0:
        return False
    if percent >= 100:
        return True
    return rollout_bucket(device_id, salt) < round(percent * BUCKETS / 100)
