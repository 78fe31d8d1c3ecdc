"""Stage and check one Lambda image's Docker build context.

``stage_image`` writes ``<out>/<image>/`` with everything ``docker build`` needs and nothing else::

    Dockerfile          from infra/images/<image>/Dockerfile
    requirements.lock   the whole dependency closure, pinned (installed with --no-deps)
    app/                the handlers' first-party source closure + package data + bundled models
    verify_image.py     runs inside the image build: no torch installed, every handler imports
    build-info.json     handlers, lock, digest (what verify_image.py checks against)

Checks, in order, each failing the build with a message naming the file or package:

1. every handler module of the image exists and defines its handler attribute;
2. no file in the source closure imports torch (or another training-only module), not even under
   ``TYPE_CHECKING`` or through ``importlib.import_module("torch")``;
3. the dependency closure of the image's requirements contains no banned distribution, and every
   member is pinned in constraints.txt;
4. every third-party module the code imports is installed by the image (optional imports, guarded
   by ``except ImportError``, and ``TYPE_CHECKING`` imports excepted);
5. the staged ``app/`` tree, scanned again as files, contains no torch import and no torch package.

The digest covers every staged byte, so two builds with the same digest are the same image input.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from infra.bundle import image_check
from infra.bundle.closure import SourceClosure, module_file, source_closure
from infra.bundle.errors import (
    BundleError,
    ForbiddenImportError,
    MissingDependencyError,
    MissingHandlerError,
)
from infra.bundle.imports import ImportUse, defines_name, imports_in_file, python_files
from infra.bundle.requirements import LockedRequirement, lock, provided_modules, read_constraints
from infra.catalog import (
    BANNED_DISTRIBUTION_PREFIXES,
    BANNED_DISTRIBUTIONS,
    BANNED_IMPORTS,
    ImageSpec,
    functions_in_image,
)

BUILD_INFO = "build-info.json"
#: Files never copied as package data.
_SKIPPED_SUFFIXES = (".pyc", ".pyo", ".py")


@dataclass(frozen=True)
class StagedImage:
    image: str
    directory: Path
    digest: str
    handlers: tuple[str, ...]
    missing_handlers: tuple[str, ...]
    requirements: tuple[LockedRequirement, ...]
    app_files: tuple[str, ...]

    @property
    def tag_hint(self) -> str:
        """A content-derived tag an operator may push the image under."""
        return f"ctx-{self.digest[:16]}"


def _present_handlers(
    image: ImageSpec, source_root: Path, require_all: bool
) -> tuple[list[str], list[str]]:
    present: list[str] = []
    missing: list[str] = []
    for spec in functions_in_image(image.name):
        path = module_file(source_root, spec.handler_module)
        if path is None:
            if require_all:
                raise MissingHandlerError(
                    f"{spec.key}: handler module {spec.handler_module!r} does not exist "
                    f"(expected {spec.handler_module.replace('.', '/')}.py)"
                )
            missing.append(spec.handler)
            continue
        if not defines_name(path, spec.handler_attribute):
            raise MissingHandlerError(
                f"{spec.key}: {path.relative_to(source_root)} defines no "
                f"{spec.handler_attribute!r} (the Lambda image command is {spec.handler})"
            )
        present.append(spec.handler)
    return present, missing


def _forbidden(uses: list[ImportUse]) -> list[ImportUse]:
    return [use for use in uses if use.top_level in BANNED_IMPORTS]


def _refuse_forbidden(uses: list[ImportUse], root: Path, what: str) -> None:
    forbidden = _forbidden(uses)
    if forbidden:
        places = ", ".join(f"{use.where(root)} imports {use.module}" for use in forbidden)
        raise ForbiddenImportError(
            f"{what}: {places}. Lambda images are numpy + onnxruntime only; torch belongs in "
            "models/training and models/export"
        )


def _check_third_party(
    closure: SourceClosure, locked: list[LockedRequirement], image: str, root: Path
) -> None:
    provided = provided_modules(locked)
    missing = [
        use
        for use in closure.third_party
        if not use.type_checking and not use.optional and use.top_level not in provided
    ]
    if missing:
        places = ", ".join(f"{use.where(root)} imports {use.module}" for use in missing)
        raise MissingDependencyError(
            f"the {image} image does not install what its code imports: {places}. Add the "
            "distribution to infra/catalog.py (IMAGES) and pin it in constraints.txt"
        )


def _copy(source: Path, destination: Path) -> None:
    destination.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, destination)


def _package_data(closure: SourceClosure) -> set[Path]:
    """Non-Python files that sit directly in a reached package (schemas, OpenAPI documents)."""
    data: set[Path] = set()
    for directory in closure.package_dirs:
        for path in directory.iterdir():
            if (
                path.is_file()
                and not path.name.startswith(".")
                and path.suffix not in _SKIPPED_SUFFIXES
            ):
                data.add(path)
    return data


def _digest(directory: Path) -> str:
    """sha256 over every staged file's path and bytes, except build-info.json itself."""
    total = hashlib.sha256()
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        relative = path.relative_to(directory).as_posix()
        if relative == BUILD_INFO:
            continue
        total.update(relative.encode() + b"\0")
        total.update(hashlib.sha256(path.read_bytes()).digest())
    return total.hexdigest()


def _fresh_directory(directory: Path) -> None:
    """Empty ``directory``, refusing to wipe anything that is not a previous staging."""
    if directory.exists():
        if any(directory.iterdir()) and not (directory / BUILD_INFO).is_file():
            raise BundleError(
                f"{directory} exists and is not a staged image context; choose another --out"
            )
        shutil.rmtree(directory)
    directory.mkdir(parents=True)


def stage_image(
    image: ImageSpec,
    *,
    source_root: Path,
    out_dir: Path,
    constraints: Path,
    dockerfiles: Path,
    require_all: bool = True,
) -> StagedImage:
    """Check and write ``out_dir/<image>/`` (see the module docstring for the checks)."""
    handlers, missing = _present_handlers(image, source_root, require_all)
    closure = source_closure(source_root, [handler.rpartition(".")[0] for handler in handlers])
    _refuse_forbidden(closure.imports, source_root, f"the {image.name} image's source")
    locked = lock(image.requirements, read_constraints(constraints))
    _check_third_party(closure, locked, image.name, source_root)

    directory = out_dir / image.name
    _fresh_directory(directory)
    app = directory / "app"
    for path in sorted(closure.files | _package_data(closure)):
        _copy(path, app / path.relative_to(source_root))
    for model in image.bundled_models:
        model_dir = source_root / "models" / "released" / model
        if not model_dir.is_dir():
            if require_all:
                raise BundleError(
                    f"the {image.name} image bundles models/released/{model}/, which does not exist"
                )
            continue
        for path in sorted(p for p in model_dir.rglob("*") if p.is_file()):
            _copy(path, app / path.relative_to(source_root))
    staged_uses = [use for path in python_files(app) for use in imports_in_file(path, app)]
    _refuse_forbidden(staged_uses, app, f"the staged {image.name} image")
    smuggled = [p for p in app.rglob("*") if p.name.split("-")[0].split(".")[0] in BANNED_IMPORTS]
    if smuggled:
        raise ForbiddenImportError(f"the staged {image.name} image contains {smuggled[0]}")

    dockerfile = dockerfiles / image.name / "Dockerfile"
    if not dockerfile.is_file():
        raise BundleError(f"no Dockerfile for the {image.name} image at {dockerfile}")
    _copy(dockerfile, directory / "Dockerfile")
    _copy(Path(image_check.__file__), directory / "verify_image.py")
    (directory / "requirements.lock").write_text(
        "".join(f"{item.line()}\n" for item in locked), encoding="utf-8"
    )
    digest = _digest(directory)
    app_files = tuple(sorted(p.relative_to(app).as_posix() for p in app.rglob("*") if p.is_file()))
    info = {
        "image": image.name,
        "digest": digest,
        "handlers": handlers,
        "missing_handlers": missing,
        "requirements": [item.line() for item in locked],
        "banned_distributions": list(BANNED_DISTRIBUTIONS),
        "banned_distribution_prefixes": list(BANNED_DISTRIBUTION_PREFIXES),
        "banned_imports": list(BANNED_IMPORTS),
        "bundled_models": list(image.bundled_models),
    }
    (directory / BUILD_INFO).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    return StagedImage(
        image=image.name,
        directory=directory,
        digest=digest,
        handlers=tuple(handlers),
        missing_handlers=tuple(missing),
        requirements=tuple(locked),
        app_files=app_files,
    )
