"""Model folders: the bytes must be the ones the manifest describes before anything loads them."""

from __future__ import annotations

from pathlib import Path

import pytest

from models.runtime.artifacts import (
    DEFAULT_MODEL_NAME,
    ModelIntegrityError,
    ModelNotFoundError,
    load_model_artifact,
    released_model_dir,
)
from models.runtime.manifest import ModelManifest, sha256_file


def model_folder(tmp_path: Path, payload: bytes = b"model bytes " * 100) -> Path:
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "model.onnx").write_bytes(payload)
    manifest = ModelManifest(
        name="edgescribe-edge",
        version=7,
        sha256=sha256_file(tmp_path / "model.onnx"),
        size=len(payload),
    )
    (tmp_path / "manifest.json").write_text(manifest.to_json())
    return tmp_path


def test_released_models_live_under_models_released() -> None:
    directory = released_model_dir()
    assert directory.name == DEFAULT_MODEL_NAME == "edgescribe-edge"
    assert directory.parent.name == "released"
    assert directory.parent.parent.name == "models"


def test_intact_folder_loads_with_its_manifest(tmp_path: Path) -> None:
    artifact = load_model_artifact(model_folder(tmp_path))
    assert artifact.manifest.version == 7
    assert artifact.model_path == tmp_path / "model.onnx"


def test_rejects_model_bytes_swapped_after_release(tmp_path: Path) -> None:
    folder = model_folder(tmp_path)
    data = bytearray((folder / "model.onnx").read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size, different bytes
    (folder / "model.onnx").write_bytes(bytes(data))
    with pytest.raises(ModelIntegrityError, match="sha256"):
        load_model_artifact(folder)


def test_rejects_half_copied_model(tmp_path: Path) -> None:
    folder = model_folder(tmp_path)
    (folder / "model.onnx").write_bytes((folder / "model.onnx").read_bytes()[:100])
    with pytest.raises(ModelIntegrityError, match="incomplete copy"):
        load_model_artifact(folder)


def test_missing_manifest_or_model_is_not_found(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError, match=r"no manifest\.json"):
        load_model_artifact(tmp_path)
    folder = model_folder(tmp_path)
    (folder / "model.onnx").unlink()
    with pytest.raises(ModelNotFoundError, match="missing"):
        load_model_artifact(folder)


def test_rejects_manifest_pointing_outside_its_folder(tmp_path: Path) -> None:
    folder = model_folder(tmp_path / "inner")
    # The escape target exists and even matches the hash: only the name check stops it.
    (tmp_path / "model.onnx").write_bytes((folder / "model.onnx").read_bytes())
    manifest = ModelManifest.load(folder / "manifest.json")
    hostile = manifest.model_copy(update={"file": "../model.onnx"})
    (folder / "manifest.json").write_text(hostile.to_json())
    with pytest.raises(ModelIntegrityError, match="plain file name"):
        load_model_artifact(folder)


def test_rejects_invalid_manifest(tmp_path: Path) -> None:
    folder = model_folder(tmp_path)
    (folder / "manifest.json").write_text('{"name": "x", "version": 0}')
    with pytest.raises(ModelIntegrityError, match="invalid manifest"):
        load_model_artifact(folder)
