"""Model artifacts for the fleet simulation (and tests): distinct releases and a broken one.

Bench and test tooling only — it imports ``onnx`` (a training/dev extra), which devices never need.

* ``distinct_version(data, tag)`` — the same graph with one metadata entry added, so each simulated
  release has its own bytes and sha256, as successive real releases would, and behaves identically.
* ``synthetic_model(favoured_symbol)`` — a tiny graph honouring the model contract (``audio``,
  ``audio_lengths`` → ``log_probs``, ``log_prob_lengths``; 30 ms frames) that emits one symbol
  everywhere. ``favoured_symbol=0`` (blank) is the *broken release*: valid ONNX, loads, signs and
  verifies fine, and transcribes everything as "" — exactly what the smoke test exists to stop.
  A non-blank symbol gives a stand-in working model while the released one cannot pass the smoke
  test (a partly trained export that hears the smoke clip as silence).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from models.runtime.vocabulary import DEFAULT_VOCABULARY

FRAME_SAMPLES = 480  # 30 ms at 16 kHz


def distinct_version(data: bytes, tag: str) -> bytes:
    import onnx

    model = onnx.load_from_string(data)
    entry = model.metadata_props.add()
    entry.key = "edgescribe-release-tag"
    entry.value = tag
    return bytes(model.SerializeToString())


def synthetic_model(favoured_symbol: int) -> bytes:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    vocab = len(DEFAULT_VOCABULARY)
    weight = np.zeros((vocab, 1, FRAME_SAMPLES), dtype=np.float32)
    bias = np.zeros((vocab,), dtype=np.float32)
    bias[favoured_symbol] = 8.0
    nodes: list[Any] = [
        helper.make_node("Unsqueeze", ["audio", "axis_one"], ["audio_3d"]),
        helper.make_node(
            "Conv", ["audio_3d", "weight", "bias"], ["scores_bvf"], strides=[FRAME_SAMPLES]
        ),
        helper.make_node("Transpose", ["scores_bvf"], ["scores"], perm=[0, 2, 1]),
        helper.make_node("LogSoftmax", ["scores"], ["log_probs"], axis=-1),
        helper.make_node("Div", ["audio_lengths", "frame"], ["log_prob_lengths"]),
    ]
    graph = helper.make_graph(
        nodes,
        "edgescribe-synthetic",
        [
            helper.make_tensor_value_info("audio", TensorProto.FLOAT, ["batch", "samples"]),
            helper.make_tensor_value_info("audio_lengths", TensorProto.INT64, ["batch"]),
        ],
        [
            helper.make_tensor_value_info(
                "log_probs", TensorProto.FLOAT, ["batch", "frames", vocab]
            ),
            helper.make_tensor_value_info("log_prob_lengths", TensorProto.INT64, ["batch"]),
        ],
        initializer=[
            numpy_helper.from_array(weight, "weight"),
            numpy_helper.from_array(bias, "bias"),
            numpy_helper.from_array(np.array([1], dtype=np.int64), "axis_one"),
            numpy_helper.from_array(np.array(FRAME_SAMPLES, dtype=np.int64), "frame"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return bytes(model.SerializeToString())
