"""Names of infra-only resources (roles, log groups, alarms, images), in the settings' scheme.

Buckets, queues, tables and functions are named by ``edgescribe.settings``; everything that only infra
creates gets the same ``edgescribe-<stack>-`` prefix from here, so one stack's resources sort together
in the console and two stacks in one account never collide.
"""

from __future__ import annotations

from edgescribe.settings import PROJECT, ResourceNames


def prefix(names: ResourceNames) -> str:
    return f"{PROJECT}-{names.stack}"


def infra_name(names: ResourceNames, suffix: str) -> str:
    """``edgescribe-<stack>-<suffix>``: the physical name of an infra-only resource."""
    return f"{prefix(names)}-{suffix}"
