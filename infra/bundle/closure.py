"""Which first-party source files a set of handlers needs, following imports statically.

Starting from each handler module, every first-party import (``functions``, ``models``,
``edgescribe``, ``edge``) is followed to its file, and so on until nothing new is reached. The image
gets exactly those files (plus their packages' ``__init__.py``), not the repository: training code,
the CLI and tests never enter a Lambda image, so they cannot drag torch in. Third-party imports are
collected for the dependency check.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from infra.bundle.errors import MissingModuleError
from infra.bundle.imports import ImportUse, imports_in_file

FIRST_PARTY = ("functions", "models", "edgescribe", "edge", "infra")


@dataclass
class SourceClosure:
    files: set[Path] = field(default_factory=set)
    #: Every import seen in the reached files (including TYPE_CHECKING and optional ones).
    imports: list[ImportUse] = field(default_factory=list)

    @property
    def third_party(self) -> list[ImportUse]:
        return [
            use
            for use in self.imports
            if use.top_level not in FIRST_PARTY and use.top_level not in sys.stdlib_module_names
        ]

    @property
    def package_dirs(self) -> set[Path]:
        return {path.parent for path in self.files if path.name == "__init__.py"}


def module_file(root: Path, module: str) -> Path | None:
    """``root/a/b.py`` or ``root/a/b/__init__.py`` for ``a.b``; None when neither exists."""
    base = root.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _parent_packages(module: str) -> list[str]:
    """``a.b.c`` -> ``["a", "a.b"]``: importing a module runs its packages' ``__init__`` first."""
    parts = module.split(".")
    return [".".join(parts[:depth]) for depth in range(1, len(parts))]


def source_closure(root: Path, start_modules: Iterable[str]) -> SourceClosure:
    """Follow first-party imports from ``start_modules`` (which must exist) under ``root``."""
    closure = SourceClosure()
    #: (module, the import that asked for it; None for a start module, "parent" for a package)
    pending: list[tuple[str, ImportUse | str | None]] = [(m, None) for m in start_modules]
    seen: set[str] = set()
    while pending:
        module, because = pending.pop()
        if module in seen:
            continue
        seen.add(module)
        path = module_file(root, module)
        if path is None:
            if because == "parent":
                continue  # a namespace package: nothing runs on import
            if isinstance(because, ImportUse) and (because.optional or because.type_checking):
                continue
            where = (
                f" (imported at {because.where(root)})" if isinstance(because, ImportUse) else ""
            )
            raise MissingModuleError(f"module {module!r} does not exist under {root}{where}")
        closure.files.add(path)
        pending.extend((parent, "parent") for parent in _parent_packages(module))
        for use in imports_in_file(path, root):
            closure.imports.append(use)
            if use.top_level not in FIRST_PARTY or use.type_checking:
                continue
            pending.append((use.module, use))
            for name in use.names:
                submodule = f"{use.module}.{name}"
                if name != "*" and module_file(root, submodule) is not None:
                    pending.append((submodule, use))
    return closure
