"""Export a trained checkpoint to the ONNX model contract, optionally INT8-quantize, write a manifest.

    python -m models.export.onnx_export runs/edge-v1/final.pt --name edgescribe-cloud --version 1
    python -m models.export.onnx_export runs/edge-v1/final.pt --name edgescribe-edge --version 1 --int8

Contract (see docs/decisions/0001-model-artifact-contract.md): inputs ``audio`` f32 [batch, samples],
``audio_lengths`` i64 [batch]; outputs ``log_probs`` f32 [batch, frames, vocab], ``log_prob_lengths``
i64 [batch]; dynamic batch and time; log-mel front end inside the graph.

INT8 (dynamic): weights of MatMul/Gemm/LSTM become int8; the front end's DFT Conv and mel MatMul are
EXCLUDED — quantizing them raised CER from 4.9 % to 26 % in an earlier measurement (measured-facts.md).
"""

from __future__ import annotations

import argparse
import json
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import onnx
import torch
from onnxruntime.quantization import (
    CalibrationDataReader,
    QuantFormat,
    QuantType,
    quantize_dynamic,
    quantize_static,
)

from models.runtime.manifest import ModelManifest, SetMetrics, sha256_file
from models.runtime.vocabulary import DEFAULT_VOCABULARY
from models.training.architecture import FRAME_SHIFT_SECONDS, AcousticModel, ModelConfig
from models.training.frontend import SAMPLE_RATE


def load_model(checkpoint: Path) -> AcousticModel:
    ckpt = torch.load(checkpoint, weights_only=False, map_location="cpu")
    model = AcousticModel(ModelConfig(**ckpt["config"]))
    model.load_state_dict(ckpt["model"])
    return model.eval()


def export_fp32(model: AcousticModel, path: Path) -> None:
    audio = torch.randn(2, SAMPLE_RATE * 3) * 0.1
    lengths = torch.tensor([SAMPLE_RATE * 3, SAMPLE_RATE * 2], dtype=torch.int64)
    torch.onnx.export(
        model,
        (audio, lengths),
        str(path),
        dynamo=False,
        opset_version=17,
        input_names=["audio", "audio_lengths"],
        output_names=["log_probs", "log_prob_lengths"],
        dynamic_axes={
            "audio": {0: "batch", 1: "samples"},
            "audio_lengths": {0: "batch"},
            "log_probs": {0: "batch", 1: "frames"},
            "log_prob_lengths": {0: "batch"},
        },
    )


def frontend_node_names(path: Path) -> list[str]:
    """Every node of the front end (the exporter scopes them under ``/frontend/``)."""
    graph = onnx.load(str(path)).graph
    return [
        node.name
        for node in graph.node
        if node.name.startswith("/frontend/") and node.op_type in ("Conv", "MatMul")
    ]


class _ClipReader(CalibrationDataReader):  # type: ignore[misc]  # untyped base
    """Feeds calibration clips (training data only) one at a time to ``quantize_static``."""

    def __init__(self, clips: Sequence[npt.NDArray[np.float32]]) -> None:
        self._clips = iter(clips)

    def get_next(self) -> dict[str, npt.NDArray[Any]] | None:
        clip = next(self._clips, None)
        if clip is None:
            return None
        return {"audio": clip[None, :], "audio_lengths": np.array([clip.size], dtype=np.int64)}


def quantize_int8(
    fp32: Path, out: Path, calibration: Sequence[npt.NDArray[np.float32]] | None = None
) -> None:
    """INT8 weights everywhere but the front end.

    With ``calibration`` clips, convolutions are quantized *statically* (QOperator QLinearConv with
    calibrated activation ranges) and MatMul/Gemm/LSTM dynamically. Why: dynamically quantized Conv
    (ConvInteger) ran ~5x slower than fp32's fused Conv on this CPU and made the INT8 model 0.69x
    the speed of fp32; static Conv made it 2.3x faster at the same CER (docs/model-card.md).
    Without clips everything is dynamic (no data needed, slower).
    """
    excluded = frontend_node_names(fp32)
    if len(excluded) < 2:
        raise RuntimeError(f"front-end nodes not found for exclusion: {excluded}")
    dynamic_ops = ["MatMul", "Gemm", "LSTM"]
    source = fp32
    with tempfile.TemporaryDirectory() as tmp:
        if calibration:
            source = Path(tmp) / "conv_static.onnx"
            quantize_static(
                str(fp32),
                str(source),
                _ClipReader(calibration),
                quant_format=QuantFormat.QOperator,
                op_types_to_quantize=["Conv"],
                nodes_to_exclude=excluded,
                per_channel=False,
                activation_type=QuantType.QUInt8,
                weight_type=QuantType.QInt8,
            )
        else:
            dynamic_ops.append("Conv")
        quantize_dynamic(
            str(source),
            str(out),
            weight_type=QuantType.QInt8,
            op_types_to_quantize=dynamic_ops,
            nodes_to_exclude=excluded,
            per_channel=False,
            reduce_range=False,
        )


def calibration_clips(manifest: Path, count: int) -> list[npt.NDArray[np.float32]]:
    """The first ``count`` clips of a TRAINING manifest (never eval data), decoded to 16 kHz."""
    from models.runtime.audio import decode_audio

    rows = [json.loads(line) for line in manifest.read_text().splitlines() if line.strip()]
    return [decode_audio(manifest.parent / row["audio"]).samples for row in rows[:count]]


def write_manifest(
    model_path: Path,
    name: str,
    version: int,
    label: str,
    quantization: str,
    config: ModelConfig,
    training_data: dict[str, float | int | str],
    metrics: dict[str, dict[str, float]] | None = None,
) -> ModelManifest:
    manifest = ModelManifest(
        name=name,
        version=version,
        label=label,
        sha256=sha256_file(model_path),
        size=model_path.stat().st_size,
        vocabulary=list(DEFAULT_VOCABULARY),
        sample_rate=SAMPLE_RATE,
        frame_shift_seconds=FRAME_SHIFT_SECONDS,
        quantization=quantization,  # type: ignore[arg-type]
        architecture=json.dumps(config.to_dict(), sort_keys=True),
        training_data=training_data,
        metrics={name: SetMetrics.model_validate(m) for name, m in (metrics or {}).items()},
    )
    (model_path.parent / "manifest.json").write_text(manifest.to_json())
    return manifest


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("checkpoint", type=Path)
    p.add_argument("--name", required=True)
    p.add_argument("--version", type=int, default=1)
    p.add_argument("--label", default="0.1.0")
    p.add_argument("--int8", action="store_true")
    p.add_argument("--out-dir", type=Path, default=Path("models/released"))
    p.add_argument("--training-data", default="{}", help="JSON summary stored in the manifest")
    p.add_argument(
        "--metrics-json",
        type=Path,
        default=None,
        help="output of `edgescribe eval --json`: its per-set metrics go into the manifest",
    )
    p.add_argument(
        "--calibration-manifest",
        type=Path,
        default=None,
        help="TRAINING manifest whose first clips calibrate static INT8 convolutions",
    )
    p.add_argument("--calibration-count", type=int, default=32)
    args = p.parse_args()
    model = load_model(args.checkpoint)
    target_dir = args.out_dir / args.name
    target_dir.mkdir(parents=True, exist_ok=True)
    target = target_dir / "model.onnx"
    with tempfile.TemporaryDirectory() as tmp:
        fp32 = Path(tmp) / "fp32.onnx"
        export_fp32(model, fp32)
        if args.int8:
            clips = (
                calibration_clips(args.calibration_manifest, args.calibration_count)
                if args.calibration_manifest
                else None
            )
            quantize_int8(fp32, target, clips)
        else:
            target.write_bytes(fp32.read_bytes())
    ckpt = torch.load(args.checkpoint, weights_only=False, map_location="cpu")
    summary = json.loads(args.training_data)
    summary.setdefault("steps", int(ckpt.get("step", 0)))
    manifest = write_manifest(
        target,
        args.name,
        args.version,
        args.label,
        ("int8-static" if args.calibration_manifest else "int8-dynamic") if args.int8 else "fp32",
        model.config,
        summary,
        json.loads(args.metrics_json.read_text())["sets"] if args.metrics_json else None,
    )
    # parity check on the spot: onnxruntime vs torch on a random clip
    import onnxruntime as ort

    session = ort.InferenceSession(str(target), providers=["CPUExecutionProvider"])
    audio = (np.random.default_rng(0).standard_normal((1, SAMPLE_RATE * 2)) * 0.1).astype(
        np.float32
    )
    onnx_lp, _ = session.run(None, {"audio": audio, "audio_lengths": np.array([audio.shape[1]])})
    with torch.no_grad():
        torch_lp, _ = model(torch.from_numpy(audio), torch.tensor([audio.shape[1]]))
    diff = float(np.abs(onnx_lp - torch_lp.numpy()).max())
    print(
        f"wrote {target} ({manifest.size / 1e6:.2f} MB, {manifest.quantization}); "
        f"max |onnx - torch| log-prob difference {diff:.2e}"
    )


if __name__ == "__main__":
    main()
