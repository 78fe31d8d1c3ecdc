"""Model artifacts for edge tests: the real released INT8 model, distinct versions of it, and a
contract-true synthetic model (``edge.fleet_models``) for the broken release and as a stand-in."""

from __future__ import annotations

from edge.fleet_models import distinct_version, synthetic_model
from models.runtime.artifacts import released_model_dir


def real_model_bytes() -> bytes:
    return (released_model_dir() / "model.onnx").read_bytes()


__all__ = ["distinct_version", "real_model_bytes", "synthetic_model"]
