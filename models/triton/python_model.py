"""Triton python-backend model: the production ONNX file, run by onnxruntime on CPU.

This file is copied verbatim to ``<repository>/<model>/<version>/model.py`` by the *local*
rendering (the bundled tritonserver has no onnxruntime backend). It must stay self-contained:
numpy, onnxruntime and Triton's ``triton_python_backend_utils`` only — the stub process imports it
outside our package.

What it does per ``execute`` call (one call = one batch the dynamic batcher formed):

1. read every request's ``audio`` ``[b_i, T_i]`` and ``audio_lengths`` (``[b_i]`` or ``[b_i, 1]``);
   a malformed request gets its own error response and does not fail its neighbours;
2. zero-pad all of them to the longest ``T`` (normally all equal: clients pad to length buckets)
   and run **one** onnxruntime call for the whole batch — this is where batching pays;
3. split ``log_probs`` / ``log_prob_lengths`` back per request. Frames past a request's own padded
   length are cut, so a request's answer has the same shape alone or batched.

Threads: ``intra_op_thread_count`` from the config (default 1), one inter-op thread, no spinning —
Triton runs one of these per instance, and ORT's default (all cores per session, spin-waiting)
makes two instances fight over the CPU.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float32]
IntArray = npt.NDArray[np.int64]

AUDIO = "audio"
AUDIO_LENGTHS = "audio_lengths"
LOG_PROBS = "log_probs"
LOG_PROB_LENGTHS = "log_prob_lengths"


class RequestError(ValueError):
    """A request whose tensors cannot be run (the message goes back to that client)."""


@dataclass(frozen=True)
class RequestTensors:
    audio: FloatArray  # float32 [b, T]
    lengths: IntArray  # int64 [b]


def validate_request(audio: npt.NDArray[Any], lengths: npt.NDArray[Any]) -> RequestTensors:
    """Normalise one request's tensors to ``[b, T]`` / ``[b]`` or raise :class:`RequestError`."""
    if audio.ndim != 2:
        raise RequestError(f"'{AUDIO}' must be [batch, samples], got shape {list(audio.shape)}")
    flat = lengths.reshape(-1).astype(np.int64, copy=False)
    if flat.shape[0] != audio.shape[0]:
        raise RequestError(
            f"'{AUDIO_LENGTHS}' has {flat.shape[0]} values for {audio.shape[0]} utterances"
        )
    if (flat < 0).any() or (flat > audio.shape[1]).any():
        raise RequestError(
            f"'{AUDIO_LENGTHS}' values must lie in 0..{audio.shape[1]} (the padded length)"
        )
    return RequestTensors(audio=audio.astype(np.float32, copy=False), lengths=flat)


def merge_requests(requests: list[RequestTensors]) -> tuple[FloatArray, IntArray, list[int]]:
    """Concatenate requests into one zero-padded batch; also return each request's row count."""
    width = max(r.audio.shape[1] for r in requests)
    rows = [r.audio.shape[0] for r in requests]
    audio = np.zeros((sum(rows), width), dtype=np.float32)
    start = 0
    for request in requests:
        audio[start : start + request.audio.shape[0], : request.audio.shape[1]] = request.audio
        start += request.audio.shape[0]
    lengths = np.concatenate([r.lengths for r in requests])
    return audio, lengths, rows


def split_outputs(
    log_probs: FloatArray,
    log_prob_lengths: IntArray,
    requests: list[RequestTensors],
    rows: list[int],
    frames_for_samples: Callable[[int], int],
) -> list[tuple[FloatArray, IntArray]]:
    """Per-request ``(log_probs, log_prob_lengths)``, frames cut to the request's padded width."""
    results = []
    start = 0
    for request, count in zip(requests, rows, strict=True):
        frames = min(log_probs.shape[1], int(frames_for_samples(request.audio.shape[1])))
        part = np.ascontiguousarray(log_probs[start : start + count, :frames])
        results.append((part, log_prob_lengths[start : start + count].astype(np.int64)))
        start += count
    return results


class TritonPythonModel:
    """The class Triton's python backend instantiates once per model instance."""

    def initialize(self, args: dict[str, str]) -> None:
        import onnxruntime

        config = json.loads(args["model_config"])
        parameters = {k: v["string_value"] for k, v in config.get("parameters", {}).items()}
        threads = int(parameters.get("intra_op_thread_count", "1"))
        onnx_file = parameters.get("onnx_file", "model.onnx")
        model_path = Path(args["model_repository"]) / args["model_version"] / onnx_file
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = onnxruntime.InferenceSession(
            str(model_path), options, providers=["CPUExecutionProvider"]
        )
        self._frame_cache: dict[int, int] = {}

    def _frames_for_samples(self, n_samples: int) -> int:
        """Frames the graph emits for a padded width (probed once per width, then cached)."""
        if n_samples not in self._frame_cache:
            probe = {
                AUDIO: np.zeros((1, n_samples), dtype=np.float32),
                AUDIO_LENGTHS: np.array([n_samples], dtype=np.int64),
            }
            self._frame_cache[n_samples] = int(self.session.run([LOG_PROBS], probe)[0].shape[1])
        return self._frame_cache[n_samples]

    def execute(self, requests: list[Any]) -> list[Any]:
        import triton_python_backend_utils as pb_utils

        responses: list[Any] = [None] * len(requests)
        valid: list[RequestTensors] = []
        valid_index: list[int] = []
        for i, request in enumerate(requests):
            try:
                audio = pb_utils.get_input_tensor_by_name(request, AUDIO).as_numpy()
                lengths = pb_utils.get_input_tensor_by_name(request, AUDIO_LENGTHS).as_numpy()
                valid.append(validate_request(audio, lengths))
                valid_index.append(i)
            except RequestError as exc:
                responses[i] = pb_utils.InferenceResponse(error=pb_utils.TritonError(str(exc)))
        if valid:
            audio, lengths, rows = merge_requests(valid)
            widths = {r.audio.shape[1] for r in valid}
            try:
                log_probs, log_prob_lengths = self.session.run(
                    [LOG_PROBS, LOG_PROB_LENGTHS], {AUDIO: audio, AUDIO_LENGTHS: lengths}
                )
                frames = (
                    (lambda n: log_probs.shape[1]) if len(widths) == 1 else self._frames_for_samples
                )
                parts = split_outputs(log_probs, log_prob_lengths, valid, rows, frames)
            except Exception as exc:  # onnxruntime's own error types; report, don't crash the stub
                error = pb_utils.TritonError(f"onnxruntime failed on the batch: {exc}")
                for i in valid_index:
                    responses[i] = pb_utils.InferenceResponse(error=error)
            else:
                for i, (part, part_lengths) in zip(valid_index, parts, strict=True):
                    responses[i] = pb_utils.InferenceResponse(
                        output_tensors=[
                            pb_utils.Tensor(LOG_PROBS, part),
                            pb_utils.Tensor(LOG_PROB_LENGTHS, part_lengths),
                        ]
                    )
        return responses

    def finalize(self) -> None:
        self.session = None
