"""What can go wrong when publishing or rolling out a model, as types that carry the reason.

Every message names the model, version or channel involved and what to do instead, because these
errors reach an operator through the CLI or the API's problem responses unchanged.
"""

from __future__ import annotations


class DistributionError(Exception):
    """Base class; ``str()`` is the sentence an operator reads."""


class ArtifactMismatchError(DistributionError):
    """The model file does not match the manifest beside it (size or sha256)."""


class VersionConflictError(DistributionError):
    """A version is already published with different bytes: versions are immutable."""


class VersionNotPublishedError(DistributionError):
    """A promote or rollback named a version that has no (valid) manifest in the models bucket."""


class InvalidRolloutError(DistributionError):
    """A rollout request that makes no sense (stable below 100 %, percent out of range, ...)."""


class NothingToRollBackError(DistributionError):
    """The channel has no earlier version to return to."""


class ChannelConflictError(DistributionError):
    """Someone else changed the channel between our read and our write: re-read and retry."""


class SigningKeyError(DistributionError):
    """No signing key is configured, or the configured one cannot be loaded."""
