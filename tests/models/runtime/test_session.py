"""The onnxruntime session over the real released model: contract, threads, refusal to load bad bytes."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from models.runtime.artifacts import ModelIntegrityError
from models.runtime.manifest import ModelManifest, sha256_file
from models.runtime.session import AcousticModel, choose_providers
from tests.models.runtime.signals import sine


@pytest.fixture(scope="module")
def acoustic_model(model_dir: Path) -> AcousticModel:
    return AcousticModel.load(model_dir, intra_op_threads=1)


def test_released_model_follows_the_graph_contract(acoustic_model: AcousticModel) -> None:
    audio = np.stack([sine(300.0, 2.0, 16_000), np.zeros(32_000, dtype=np.float32)])
    lengths = np.array([32_000, 16_000], dtype=np.int64)

    log_probs, frame_counts = acoustic_model.log_probs(audio, lengths)

    vocab = len(acoustic_model.manifest.vocabulary)
    assert log_probs.dtype == np.float32
    assert log_probs.ndim == 3
    assert log_probs.shape[0] == 2
    assert log_probs.shape[2] == vocab
    assert frame_counts.dtype == np.int64
    frame_shift = acoustic_model.manifest.frame_shift_seconds
    assert frame_counts[0] == pytest.approx(2.0 / frame_shift, abs=2)
    assert frame_counts[1] == pytest.approx(1.0 / frame_shift, abs=2)
    # log-softmax already applied: each frame's probabilities sum to one.
    np.testing.assert_allclose(np.exp(log_probs[0, : frame_counts[0]]).sum(-1), 1.0, atol=1e-3)


def test_session_is_thread_capped_and_sequential(model_dir: Path) -> None:
    import onnxruntime

    model = AcousticModel.load(model_dir, intra_op_threads=2)
    options = model.session.get_session_options()
    assert options.intra_op_num_threads == 2
    assert options.inter_op_num_threads == 1
    assert options.execution_mode == onnxruntime.ExecutionMode.ORT_SEQUENTIAL
    assert model.providers == ["CPUExecutionProvider"]


def test_unavailable_npu_providers_fall_back_to_cpu() -> None:
    import onnxruntime

    missing = "QNNExecutionProvider"
    assert missing not in onnxruntime.get_available_providers()
    assert choose_providers([missing, "CPUExecutionProvider"]) == ["CPUExecutionProvider"]
    assert choose_providers(None) == ["CPUExecutionProvider"]


def test_refuses_to_load_a_tampered_model(model_dir: Path, tmp_path: Path) -> None:
    copy = tmp_path / "model"
    shutil.copytree(model_dir, copy)
    data = bytearray((copy / "model.onnx").read_bytes())
    data[-10] ^= 0x01
    (copy / "model.onnx").write_bytes(bytes(data))
    with pytest.raises(ModelIntegrityError, match="does not match the manifest"):
        AcousticModel.load(copy)


def test_bytes_that_match_the_manifest_but_are_not_onnx_fail_clearly(tmp_path: Path) -> None:
    (tmp_path / "model.onnx").write_bytes(b"not a protobuf" * 50)
    manifest = ModelManifest(
        name="broken", version=1, sha256=sha256_file(tmp_path / "model.onnx"), size=700
    )
    (tmp_path / "manifest.json").write_text(manifest.to_json())
    with pytest.raises(ModelIntegrityError, match="onnxruntime cannot load it"):
        AcousticModel.load(tmp_path)


def test_wrong_input_shapes_are_rejected_before_onnxruntime(acoustic_model: AcousticModel) -> None:
    with pytest.raises(ValueError, match=r"expected audio \[B, T\]"):
        acoustic_model.log_probs(np.zeros(16_000, np.float32), np.array([16_000]))
