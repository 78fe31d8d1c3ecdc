"""Where released models live, and the checks a model folder must pass before anything loads it.

A model folder holds ``model.onnx`` and ``manifest.json`` (see ``models.runtime.manifest``). Before
onnxruntime ever parses the model bytes, :func:`load_model_artifact` checks, in order:

1. ``manifest.json`` exists and validates against ``ModelManifest``;
2. ``manifest.file`` is a plain file name inside the folder (no ``../`` escape);
3. the model file exists, has exactly ``manifest.size`` bytes and hashes to ``manifest.sha256``.

Signatures are *not* checked here: which keys to trust is a deployment decision (the edge agent
and the model-distribution function pin keys); this module guarantees only that the bytes are the
ones the manifest describes, so a half-copied or swapped model file never runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Final

from pydantic import ValidationError

from models.runtime.manifest import ModelManifest, sha256_file

#: The INT8 model for devices and Lambda; ``CLOUD_MODEL_NAME`` is the fp32 one Triton serves.
DEFAULT_MODEL_NAME: Final = "edgescribe-edge"
CLOUD_MODEL_NAME: Final = "edgescribe-cloud"
MANIFEST_FILE: Final = "manifest.json"
RELEASED_ROOT: Final = Path(__file__).resolve().parent.parent / "released"


class ModelArtifactError(Exception):
    """A model folder that cannot be used; the message names the folder and the reason."""


class ModelNotFoundError(ModelArtifactError):
    """No manifest or no model file where one was expected."""


class ModelIntegrityError(ModelArtifactError):
    """The manifest is invalid, or the model bytes are not the ones it describes."""


@dataclass(frozen=True)
class ModelArtifact:
    """A verified model folder: its manifest and the path of the model bytes it describes."""

    directory: Path
    manifest: ModelManifest
    model_path: Path


def released_model_dir(name: str = DEFAULT_MODEL_NAME) -> Path:
    """``models/released/<name>/`` in this checkout or installed package (may not exist yet)."""
    return RELEASED_ROOT / name


def released_checkpoint(name: str = DEFAULT_MODEL_NAME, version: int = 1) -> Path:
    """The torch weights (float16) a released version was exported from.

    The learning loop fine-tunes from them; the local stack uploads them to
    ``storage_layout.checkpoint_key`` beside the published model. Serving never reads them.
    """
    return RELEASED_ROOT / "checkpoints" / f"{name}-{int(version)}.pt"


def load_model_artifact(model_dir: Path) -> ModelArtifact:
    """Read and verify a model folder (checks in the order the module doc lists)."""
    manifest_path = model_dir / MANIFEST_FILE
    if not manifest_path.is_file():
        raise ModelNotFoundError(f"{model_dir}: no {MANIFEST_FILE} (not a model folder?)")
    try:
        manifest = ModelManifest.load(manifest_path)
    except (ValidationError, ValueError) as exc:
        raise ModelIntegrityError(f"{manifest_path}: invalid manifest: {exc}") from exc

    if Path(manifest.file).name != manifest.file or manifest.file in ("", ".", ".."):
        raise ModelIntegrityError(
            f"{manifest_path}: 'file' must be a plain file name, got {manifest.file!r}"
        )
    model_path = model_dir / manifest.file
    if not model_path.is_file():
        raise ModelNotFoundError(
            f"{model_dir}: the manifest names {manifest.file!r}, which is missing"
        )
    size = model_path.stat().st_size
    if size != manifest.size:
        raise ModelIntegrityError(
            f"{model_path}: {size} bytes, but the manifest says {manifest.size} (incomplete copy?)"
        )
    digest = sha256_file(model_path)
    if digest != manifest.sha256:
        raise ModelIntegrityError(
            f"{model_path}: sha256 {digest} does not match the manifest's {manifest.sha256}"
        )
    return ModelArtifact(directory=model_dir, manifest=manifest, model_path=model_path)
