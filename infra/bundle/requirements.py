"""Lock an image's requirements: the whole dependency closure, pinned from constraints.txt.

The image installs ``requirements.lock`` with ``pip install --no-deps``: exactly these distributions
at exactly these versions, no resolver at build time. So the closure computed here *is* what ends up in
the image, and checking it for torch is checking the image.

The closure is walked through the metadata of the distributions installed in the build environment
(``.venv`` has every extra; constraints.txt pins them), evaluating environment markers for the Lambda
runtime (CPython 3.11, Linux x86_64) rather than for this machine.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from packaging.markers import Marker
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import NormalizedName, canonicalize_name

from infra.bundle.errors import BannedDistributionError, BundleError, UnpinnedRequirementError
from infra.catalog import BANNED_DISTRIBUTION_PREFIXES, BANNED_DISTRIBUTIONS

#: Marker environment of the Lambda Python 3.11 runtime (public.ecr.aws/lambda/python:3.11, x86_64).
LAMBDA_ENVIRONMENT: dict[str, str] = {
    "implementation_name": "cpython",
    "implementation_version": "3.11.11",
    "os_name": "posix",
    "platform_machine": "x86_64",
    "platform_python_implementation": "CPython",
    "platform_release": "",
    "platform_system": "Linux",
    "platform_version": "",
    "python_full_version": "3.11.11",
    "python_version": "3.11",
    "sys_platform": "linux",
}


@dataclass(frozen=True)
class LockedRequirement:
    name: NormalizedName
    version: str
    #: Who asked for it (a direct requirement, or ``parent -> child`` chains for the report).
    required_by: str

    def line(self) -> str:
        return f"{self.name}=={self.version}"


def read_constraints(path: Path) -> dict[NormalizedName, str]:
    """``name==version`` lines of constraints.txt, by normalized name."""
    pins: dict[NormalizedName, str] = {}
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        name, separator, version = line.partition("==")
        if not separator or not version.strip():
            raise UnpinnedRequirementError(f"{path}:{number}: {raw!r} is not a name==version pin")
        pins[canonicalize_name(name.strip())] = version.strip()
    return pins


def is_banned(name: str) -> bool:
    normalized = canonicalize_name(name)
    return normalized in {canonicalize_name(n) for n in BANNED_DISTRIBUTIONS} or any(
        normalized.startswith(prefix) for prefix in BANNED_DISTRIBUTION_PREFIXES
    )


def _applies(requirement: Requirement, extras: Iterable[str]) -> bool:
    if requirement.marker is None:
        return True
    marker: Marker = requirement.marker
    return any(marker.evaluate({**LAMBDA_ENVIRONMENT, "extra": extra}) for extra in ("", *extras))


def _requires(name: str) -> list[Requirement]:
    try:
        raw = metadata.requires(name) or []
    except metadata.PackageNotFoundError:
        raise UnpinnedRequirementError(
            f"{name} is needed by a function image but is not installed in this environment, so its "
            "dependencies cannot be checked; install the project with its 'functions' extra"
        ) from None
    requirements = []
    for line in raw:
        try:
            requirements.append(Requirement(line))
        except InvalidRequirement as exc:
            raise BundleError(f"{name} declares an unreadable requirement {line!r}: {exc}") from exc
    return requirements


def lock(
    direct: Iterable[str],
    pins: Mapping[NormalizedName, str],
    *,
    requires: Callable[[str], list[Requirement]] | None = None,
) -> list[LockedRequirement]:
    """Every distribution the ``direct`` requirements need on Lambda, pinned; banned ones refused.

    ``requires`` (``name -> its requirements``) defaults to the installed distributions' metadata.
    """
    read_requires = requires or _requires
    locked: dict[NormalizedName, LockedRequirement] = {}
    # Markers are evaluated where a requirement is declared (a child's ``extra == 'http'`` refers
    # to its parent's extras), so everything queued here already applies.
    pending: list[tuple[Requirement, str]] = [
        (requirement, line) for line in direct if _applies(requirement := Requirement(line), ())
    ]
    extras_wanted: dict[NormalizedName, set[str]] = {}
    while pending:
        requirement, chain = pending.pop()
        name = canonicalize_name(requirement.name)
        if is_banned(name):
            raise BannedDistributionError(
                f"{name} would be installed in a function image (via {chain}); Lambda images must "
                "not contain torch or its CUDA wheels — remove the dependency or move it to the "
                "'train' extra"
            )
        new_extras = set(requirement.extras) - extras_wanted.get(name, set())
        if name in locked and not new_extras:
            continue
        extras_wanted.setdefault(name, set()).update(requirement.extras)
        if name not in pins:
            raise UnpinnedRequirementError(
                f"{name} (needed via {chain}) has no pin in constraints.txt; add 'name==version'"
            )
        locked.setdefault(name, LockedRequirement(name, pins[name], chain))
        for child in read_requires(requirement.name):
            if _applies(child, extras_wanted[name]):
                pending.append((child, f"{chain} -> {child.name}"))
    return sorted(locked.values(), key=lambda item: item.name)


def provided_modules(locked: Iterable[LockedRequirement]) -> set[str]:
    """Top-level modules the locked distributions install (from installed metadata)."""
    wanted = {item.name for item in locked}
    modules: set[str] = set()
    for module, distributions in metadata.packages_distributions().items():
        if any(canonicalize_name(d) in wanted for d in distributions):
            modules.add(module)
    return modules
