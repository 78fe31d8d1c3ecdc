"""Last check, inside the image being built: ``RUN python verify_image.py build-info.json``.

Standard library only: it runs in the Lambda base image after ``pip install``, before the image can
be pushed, and fails the ``docker build`` when

1. a banned distribution (torch, its CUDA wheels...) is installed anywhere on ``sys.path``, or
   ``import torch`` would succeed;
2. the task root holds a distribution or version the lock does not list (the lock is the image);
3. a handler cannot be imported or its attribute is not callable — the same import Lambda's
   runtime performs on a cold start, so a missing module fails here rather than in production.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import re
import sys
from collections.abc import Iterable, Sequence
from importlib import metadata
from pathlib import Path


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def banned_installed(
    banned: Iterable[str], prefixes: Iterable[str], paths: Sequence[str] | None = None
) -> list[str]:
    """Installed distributions (on ``paths``, default ``sys.path``) that are banned."""
    banned_names = {_normalize(name) for name in banned}
    prefix_list = tuple(prefixes)
    found = set()
    installed = (
        metadata.distributions() if paths is None else metadata.distributions(path=list(paths))
    )
    for distribution in installed:
        name = _normalize(distribution.metadata["Name"] or "")
        if name in banned_names or name.startswith(prefix_list):
            found.add(f"{name}=={distribution.version}")
    return sorted(found)


def importable(modules: Iterable[str]) -> list[str]:
    return sorted(module for module in modules if importlib.util.find_spec(module) is not None)


def unlocked_installed(locked: Iterable[str], task_root: str) -> list[str]:
    """Distributions in ``task_root`` that differ from the ``name==version`` lines of the lock."""
    expected = {}
    for line in locked:
        name, _, version = line.partition("==")
        expected[_normalize(name)] = version
    surprises = []
    for distribution in metadata.distributions(path=[task_root]):
        name = _normalize(distribution.metadata["Name"] or "")
        if expected.get(name) != distribution.version:
            surprises.append(f"{name}=={distribution.version}")
    return sorted(surprises)


def broken_handlers(handlers: Iterable[str]) -> list[str]:
    problems = []
    for handler in handlers:
        module_name, _, attribute = handler.rpartition(".")
        try:
            module = importlib.import_module(module_name)
        except Exception as exc:  # any import failure is what we are looking for
            problems.append(f"{handler}: import failed: {type(exc).__name__}: {exc}")
            continue
        if not callable(getattr(module, attribute, None)):
            problems.append(f"{handler}: {module_name} has no callable {attribute!r}")
    return problems


def problems(info: dict[str, object], task_root: str) -> list[str]:
    def strings(key: str) -> list[str]:
        value = info.get(key, [])
        return [str(item) for item in value] if isinstance(value, list) else []

    found = []
    banned = banned_installed(
        strings("banned_distributions"), strings("banned_distribution_prefixes")
    )
    found += [f"banned distribution installed: {name}" for name in banned]
    found += [f"banned module importable: {m}" for m in importable(strings("banned_imports"))]
    found += [
        f"not in requirements.lock: {name}"
        for name in unlocked_installed(strings("requirements"), task_root)
    ]
    found += broken_handlers(strings("handlers"))
    return found


def main(argv: Sequence[str]) -> int:
    if len(argv) != 2:
        print("usage: verify_image.py BUILD_INFO_JSON TASK_ROOT", file=sys.stderr)
        return 2
    info = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
    task_root = argv[1]
    if task_root not in sys.path:
        sys.path.insert(0, task_root)
    found = problems(info, task_root)
    for problem in found:
        print(f"verify_image: {problem}", file=sys.stderr)
    if not found:
        print(
            f"verify_image: {info.get('image')} image OK ({len(info.get('handlers', []))} handlers)"
        )
    return 1 if found else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
