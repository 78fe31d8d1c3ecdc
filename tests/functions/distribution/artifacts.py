"""Small model folders for publish tests: real files with manifests that describe them exactly.

The bytes are not a working ONNX model (distribution never runs a model; it moves, hashes and signs
bytes). Tests that need a model that runs use ``released_model_dir()`` when it exists.
"""

from __future__ import annotations

from pathlib import Path

from models.runtime.manifest import ModelManifest, sha256_file


def make_model_dir(
    root: Path, version: int, *, name: str = "edgescribe-edge", payload: bytes | None = None
) -> Path:
    folder = root / f"{name}-v{version}"
    folder.mkdir(parents=True, exist_ok=True)
    model = folder / "model.onnx"
    model.write_bytes(
        payload if payload is not None else f"model {name} v{version}\n".encode() * 64
    )
    manifest = ModelManifest(
        name=name,
        version=version,
        sha256=sha256_file(model),
        size=model.stat().st_size,
        quantization="int8-dynamic",
    )
    (folder / "manifest.json").write_text(manifest.to_json(), encoding="utf-8")
    return folder
