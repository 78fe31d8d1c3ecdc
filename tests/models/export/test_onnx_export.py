"""Export parity: onnxruntime on the exported graph matches torch, for batch sizes and lengths
other than the ones used at export time (dynamic axes really are dynamic)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch

from models.export.onnx_export import export_fp32, frontend_node_names, quantize_int8
from models.training.architecture import AcousticModel, ModelConfig

TINY = ModelConfig(name="tiny", tdnn_channels=32, lstm_hidden=16, lstm_layers=1, attention_heads=2)


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[AcousticModel, Path]:
    torch.manual_seed(0)
    model = AcousticModel(TINY).eval()
    path = tmp_path_factory.mktemp("export") / "model.onnx"
    export_fp32(model, path)
    return model, path


@pytest.mark.parametrize(("batch", "samples"), [(1, 8_000), (3, 52_000), (5, 160_000)])
def test_onnxruntime_matches_torch_for_unseen_shapes(
    exported: tuple[AcousticModel, Path], batch: int, samples: int
) -> None:
    model, path = exported
    rng = np.random.default_rng(batch)
    audio = (rng.standard_normal((batch, samples)) * 0.1).astype(np.float32)
    lengths = np.array([samples - 1_000 * i for i in range(batch)], dtype=np.int64)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    onnx_lp, onnx_len = session.run(None, {"audio": audio, "audio_lengths": lengths})
    with torch.no_grad():
        torch_lp, torch_len = model(torch.from_numpy(audio), torch.from_numpy(lengths))
    np.testing.assert_array_equal(onnx_len, torch_len.numpy())
    np.testing.assert_allclose(onnx_lp, torch_lp.numpy(), atol=2e-4)


def test_int8_quantization_leaves_the_front_end_in_float(
    exported: tuple[AcousticModel, Path], tmp_path: Path
) -> None:
    _, path = exported
    excluded = frontend_node_names(path)
    assert any("Conv" in name for name in excluded)
    assert any("MatMul" in name for name in excluded)
    int8 = tmp_path / "int8.onnx"
    quantize_int8(path, int8)
    assert int8.stat().st_size < path.stat().st_size
    import onnx

    ops = {node.op_type for node in onnx.load(str(int8)).graph.node}
    assert "DynamicQuantizeLSTM" in ops or "MatMulInteger" in ops


def test_calibrated_int8_quantizes_convolutions_statically_but_not_the_front_end(
    exported: tuple[AcousticModel, Path], tmp_path: Path
) -> None:
    import onnx

    _, path = exported
    rng = np.random.default_rng(3)
    clips = [(rng.standard_normal(16_000) * 0.1).astype(np.float32) for _ in range(4)]
    int8 = tmp_path / "int8_static.onnx"
    quantize_int8(path, int8, calibration=clips)
    nodes = onnx.load(str(int8)).graph.node
    assert any(node.op_type == "QLinearConv" for node in nodes)
    front_convs = [n for n in nodes if n.name.startswith("/frontend/") and "Conv" in n.op_type]
    assert front_convs
    assert all(node.op_type == "Conv" for node in front_convs)
    session = ort.InferenceSession(str(int8), providers=["CPUExecutionProvider"])
    log_probs, _ = session.run(
        None, {"audio": clips[0][None, :], "audio_lengths": np.array([16_000])}
    )
    assert np.isfinite(log_probs).all()
