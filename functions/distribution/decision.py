"""What one device should run: ``none``, ``update`` or ``rollback``. A pure function, no I/O.

Rules, in order:

1. *Which channel serves the device.* A device pinned to a channel (fleet registry) follows it;
   otherwise it follows ``canary`` when the canary's rollout reaches its bucket
   (``bucketing.in_rollout``), else ``stable``. ``shadow`` serves pinned devices only (lab devices);
   in the cloud it names the model that runs beside stable on sampled traffic.
2. *Ahead of stable only.* A canary or shadow channel whose version is not newer than stable's
   serves stable's version instead: the cohort never lags behind the rest of the fleet.
3. *Up, never silently down.* Nothing installed, or an older version installed → ``update``. The
   same version → ``none``. A newer version installed → ``rollback`` only if a signed directive
   withdraws the installed version and returns to exactly the target; otherwise ``none`` (a device
   ahead of its channel because a rollout shrank keeps its model: shrinking is not withdrawing).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from functions.distribution.bucketing import in_rollout, rollout_bucket
from functions.distribution.channels import Channel, ChannelState
from models.runtime.rollback_directive import RollbackDirective

DeviceAction = Literal["none", "update", "rollback"]


@dataclass(frozen=True)
class DeviceDecision:
    action: DeviceAction
    #: The channel whose version the device should run (``None`` when nothing is published).
    channel: Channel | None
    #: The version the device should run.
    version: int | None
    #: The signed permission to go down, for ``action == "rollback"``.
    directive: RollbackDirective | None = None


def decide(
    device_id: str,
    installed: int | None,
    channels: Mapping[Channel, ChannelState | None],
    pinned: Channel | None = None,
) -> DeviceDecision:
    """Apply the rules above; ``installed`` is ``None`` (or 0) when the device has no model."""
    serving = _serving_channel(device_id, channels, pinned)
    if serving is None:
        return DeviceDecision(action="none", channel=None, version=None)
    target = serving.version
    if not installed:
        return DeviceDecision(action="update", channel=serving.channel, version=target)
    if target > installed:
        return DeviceDecision(action="update", channel=serving.channel, version=target)
    if target == installed:
        return DeviceDecision(action="none", channel=serving.channel, version=target)
    for state in channels.values():
        directive = state.rollback if state else None
        if (
            directive
            and directive.name == serving.name
            and directive.permits(installed=installed, offered=target)
        ):
            return DeviceDecision(
                action="rollback", channel=serving.channel, version=target, directive=directive
            )
    return DeviceDecision(action="none", channel=serving.channel, version=target)


def _serving_channel(
    device_id: str,
    channels: Mapping[Channel, ChannelState | None],
    pinned: Channel | None,
) -> ChannelState | None:
    stable = channels.get("stable")
    if pinned == "stable":
        return stable
    candidate: ChannelState | None = None
    if pinned in ("shadow", "canary"):
        candidate = channels.get(pinned)
    else:
        canary = channels.get("canary")
        if canary and in_rollout(device_id, canary.name, canary.rollout_percent):
            candidate = canary
    if candidate is None:
        return stable
    if stable is None or (candidate.name == stable.name and candidate.version > stable.version):
        return candidate
    return stable


__all__ = ["DeviceAction", "DeviceDecision", "decide", "rollout_bucket"]
