"""Why an image build context was refused; each message names the file or package and the fix."""

from __future__ import annotations


class BundleError(ValueError):
    """The function images cannot be built as they are."""


class ForbiddenImportError(BundleError):
    """Code bound for a Lambda image imports torch (or another training-only module)."""


class BannedDistributionError(BundleError):
    """An image's dependency closure contains torch or what only torch pulls in."""


class MissingDependencyError(BundleError):
    """Code imports a third-party module that the image does not install."""


class MissingModuleError(BundleError):
    """Code imports a first-party module that does not exist."""


class MissingHandlerError(BundleError):
    """A function's handler module or its ``handler`` attribute does not exist."""


class UnpinnedRequirementError(BundleError):
    """A requirement (direct or transitive) has no pin in constraints.txt, or is not installed."""
