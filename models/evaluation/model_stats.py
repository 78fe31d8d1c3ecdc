"""Static facts about an exported model: parameter count and file size.

Parameters are counted from the ONNX graph's initializers (weights and biases; INT8 weights count
once each, like their fp32 originals), leaving out what is not a learned parameter: quantization
scales and zero points, shape tensors (int64), and the fixed DFT/mel front-end matrices, which the
exporter stores as ``Constant`` nodes. So the fp32 and INT8 exports of one checkpoint report the
same count, the one the trainer prints.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Final

from pydantic import BaseModel

_QUANTIZATION_SUFFIXES: Final = ("_scale", "_zero_point")
#: onnx.TensorProto.INT64: shape and index tensors, never weights.
_INT64: Final = 7


class ModelInfo(BaseModel):
    """One benchmarked model as the report and the model card describe it."""

    name: str
    version: int
    label: str
    quantization: str
    architecture: dict[str, object]
    params: int
    file_bytes: int
    sha256: str
    training_data: dict[str, float | int | str]
    created_at: str


def count_parameters(model_path: Path) -> int:
    """Learned parameters stored in an ONNX file (see the module doc for what counts)."""
    import onnx

    graph = onnx.load(str(model_path), load_external_data=False).graph
    total = 0
    for tensor in graph.initializer:
        if tensor.name.endswith(_QUANTIZATION_SUFFIXES) or tensor.data_type == _INT64:
            continue
        total += math.prod(tensor.dims)
    return total


def describe_model(model_dir: Path) -> ModelInfo:
    """Verify a model folder (manifest, size, sha256) and describe it."""
    from models.runtime.artifacts import load_model_artifact

    artifact = load_model_artifact(model_dir)
    manifest = artifact.manifest
    try:
        architecture = json.loads(manifest.architecture) if manifest.architecture else {}
    except ValueError:
        architecture = {"description": manifest.architecture}
    if not isinstance(architecture, dict):
        architecture = {"description": manifest.architecture}
    return ModelInfo(
        name=manifest.name,
        version=manifest.version,
        label=manifest.label,
        quantization=manifest.quantization,
        architecture=architecture,
        params=count_parameters(artifact.model_path),
        file_bytes=manifest.size,
        sha256=manifest.sha256,
        training_data=dict(manifest.training_data),
        created_at=manifest.created_at.isoformat(),
    )
