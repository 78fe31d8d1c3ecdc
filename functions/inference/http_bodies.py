"""Triton HTTP-protocol tensors, shared by the HTTP client and the SageMaker body helpers."""

from __future__ import annotations

from typing import TYPE_CHECKING

from functions.inference.triton_batches import (
    AUDIO,
    AUDIO_LENGTHS,
    LOG_PROB_LENGTHS,
    LOG_PROBS,
    TritonInferenceError,
)
from models.runtime.bucketing import FloatArray, IntArray, PaddedBatch

if TYPE_CHECKING:
    import tritonclient.http as httpclient


def http_inputs(padded: PaddedBatch) -> list[httpclient.InferInput]:
    """The request tensors, binary-encoded (JSON lists of floats would be ~10x larger)."""
    import tritonclient.http as httpclient

    audio = httpclient.InferInput(AUDIO, list(padded.audio.shape), "FP32")
    audio.set_data_from_numpy(padded.audio, binary_data=True)
    lengths = httpclient.InferInput(AUDIO_LENGTHS, [padded.lengths.shape[0], 1], "INT64")
    lengths.set_data_from_numpy(padded.lengths.reshape(-1, 1), binary_data=True)
    return [audio, lengths]


def http_outputs() -> list[httpclient.InferRequestedOutput]:
    import tritonclient.http as httpclient

    return [
        httpclient.InferRequestedOutput(LOG_PROBS, binary_data=True),
        httpclient.InferRequestedOutput(LOG_PROB_LENGTHS, binary_data=True),
    ]


def outputs_from_result(
    result: httpclient.InferResult, model_name: str
) -> tuple[FloatArray, IntArray]:
    log_probs = result.as_numpy(LOG_PROBS)
    log_prob_lengths = result.as_numpy(LOG_PROB_LENGTHS)
    if log_probs is None or log_prob_lengths is None:
        raise TritonInferenceError(f"{model_name}: response lacks the model outputs")
    return log_probs, log_prob_lengths.reshape(-1)
