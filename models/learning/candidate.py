"""Turn trained weights into a candidate model folder: the same artifact contract as a release.

A candidate is exported exactly as released models are (``models.export.onnx_export``: front end
in the graph, INT8 with statically calibrated convolutions), so what the gate measures, what shadow
runs and what devices install are one file. Its manifest names the parent version and what the
recipe did; signing is the distribution service's job when the candidate is published.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
import torch

from models.export.onnx_export import export_fp32, quantize_int8, write_manifest
from models.runtime.manifest import ModelManifest
from models.training.architecture import AcousticModel

#: Clips that calibrate the static INT8 convolutions (general replay speech, never eval data).
CALIBRATION_CLIPS = 24


def save_checkpoint(model: AcousticModel, path: Path, *, step: int = 0) -> None:
    """The torch weights a fine-tune of this version starts from (``storage_layout.checkpoint_key``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"model": model.state_dict(), "config": model.config.to_dict(), "step": step}, path)


def load_checkpoint(path: Path) -> AcousticModel:
    """Weights saved by ``save_checkpoint`` or by training; float16 release checkpoints load as fp32."""
    from models.export.onnx_export import load_model

    return load_model(path).float()


def export_candidate(
    model: AcousticModel,
    out_dir: Path,
    *,
    name: str,
    version: int,
    parent_version: int,
    calibration: Sequence[npt.NDArray[np.float32]],
    training_data: Mapping[str, float | int | str],
    int8: bool = True,
    label: str | None = None,
) -> ModelManifest:
    """Write ``out_dir/model.onnx`` + ``manifest.json`` for ``name`` v``version``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / "model.onnx"
    model.eval()
    with tempfile.TemporaryDirectory() as tmp:
        fp32 = Path(tmp) / "fp32.onnx"
        export_fp32(model, fp32)
        if int8:
            quantize_int8(fp32, target, list(calibration[:CALIBRATION_CLIPS]) or None)
        else:
            target.write_bytes(fp32.read_bytes())
    quantization = ("int8-static" if calibration else "int8-dynamic") if int8 else "fp32"
    manifest = write_manifest(
        target,
        name,
        version,
        label or f"0.{version}.0",
        quantization,
        model.config,
        dict(training_data),
    )
    manifest = manifest.model_copy(update={"parent_version": parent_version})
    (out_dir / "manifest.json").write_text(manifest.to_json())
    return manifest
