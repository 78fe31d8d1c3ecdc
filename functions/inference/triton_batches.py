"""What every Triton client does around the wire call: bucket, split, send, trim, reassemble.

A caller's batch (chunks of one recording, or one clip) becomes one request per *length bucket*
(:mod:`models.runtime.bucketing`), each at most ``max_batch_size`` rows, so that requests from
many concurrent callers land in Triton's queue with a handful of distinct shapes and the dynamic
batcher can merge them. The answers are trimmed with ``log_prob_lengths`` and returned in the
caller's order.

Very short utterances are first padded to ``MIN_INPUT_SAMPLES`` *and reported with that length*,
exactly as the in-process backend does (``models.runtime.backend.pad_batch``), so Triton and
onnxruntime see the same numbers and give the same transcript.
"""

from __future__ import annotations

import threading
import weakref
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Any, Final, Generic, TypeVar

import numpy as np

from models.runtime.backend import MIN_INPUT_SAMPLES
from models.runtime.bucketing import (
    FloatArray,
    IntArray,
    LengthBuckets,
    PaddedBatch,
    pad_to,
    trim_outputs,
)
from models.runtime.transcript import Engine, ModelRef

AUDIO: Final = "audio"
AUDIO_LENGTHS: Final = "audio_lengths"
LOG_PROBS: Final = "log_probs"
LOG_PROB_LENGTHS: Final = "log_prob_lengths"

ClientT = TypeVar("ClientT")


class TritonInferenceError(RuntimeError):
    """Triton (or the endpoint in front of it) refused or failed a request; says which and why."""


def planned_requests(
    batch: Sequence[FloatArray], buckets: LengthBuckets, max_batch_size: int
) -> list[tuple[list[int], PaddedBatch]]:
    """Split ``batch`` into same-shape requests: ``(row indices in batch, padded tensors)``."""
    waveforms = [np.asarray(w, dtype=np.float32).reshape(-1) for w in batch]
    lengths = [max(w.shape[0], MIN_INPUT_SAMPLES) for w in waveforms]
    plan = []
    for bucket, indices in buckets.group(lengths).items():
        for start in range(0, len(indices), max_batch_size):
            rows = indices[start : start + max_batch_size]
            padded = pad_to([waveforms[i] for i in rows], bucket)
            padded.lengths[:] = [lengths[i] for i in rows]
            plan.append((rows, padded))
    return plan


class TritonBackendBase(ABC, Generic[ClientT]):
    """Shared ``infer`` for Triton transports; subclasses send one padded request.

    Clients are created lazily, one per thread (``threading.local``): tritonclient.http clients are
    not thread-safe, and a per-thread gRPC channel keeps one slow caller from head-of-line
    blocking the others.

    Every request carries its bucket's priority level (``LengthBuckets.priority``) for models
    rendered with per-bucket priority levels (an opt-in experiment, ADR 0200); Triton ignores the
    field for models without levels, which is the default. ``connect()`` reads the bucket edges
    from the server, so levels and edges always agree.
    """

    engine: Engine = "triton"

    def __init__(
        self,
        model: ModelRef,
        *,
        triton_model_name: str | None = None,
        buckets: LengthBuckets | None = None,
        max_batch_size: int = 32,
        timeout_seconds: float = 30.0,
    ) -> None:
        if max_batch_size < 1:
            raise ValueError(f"max_batch_size must be >= 1, got {max_batch_size}")
        self.model = model
        self.triton_model_name = triton_model_name or model.name
        self.model_version = str(model.version)
        self.buckets = buckets or LengthBuckets()
        self.max_batch_size = max_batch_size
        self.timeout_seconds = timeout_seconds
        self._local = threading.local()
        self._clients_lock = threading.Lock()
        self._clients: list[ClientT] = []
        self._generation = 0
        # Close clients when the backend is collected or the interpreter exits, before grpc and
        # gevent are torn down (their __del__ fails noisily at shutdown otherwise).
        self._finalizer = weakref.finalize(
            self, _close_all, self._clients, self._clients_lock, type(self).close_client
        )

    @abstractmethod
    def _new_client(self) -> ClientT:
        """Create one transport client (called once per thread)."""

    @abstractmethod
    def _send(
        self, client: ClientT, padded: PaddedBatch, priority: int
    ) -> tuple[FloatArray, IntArray]:
        """Send one padded request at ``priority``; return ``log_probs`` [b, F, V] and
        ``log_prob_lengths`` [b]."""

    @staticmethod
    def close_client(client: Any) -> None:
        """Release one client (override when the transport has something to close)."""

    def client(self) -> ClientT:
        """This thread's client (a new one after :meth:`close`)."""
        cached: tuple[int, ClientT] | None = getattr(self._local, "client", None)
        if cached is not None and cached[0] == self._generation:
            return cached[1]
        client = self._new_client()
        self._local.client = (self._generation, client)
        with self._clients_lock:
            self._clients.append(client)
        return client

    def infer(self, batch: Sequence[FloatArray]) -> list[FloatArray]:
        results: list[FloatArray | None] = [None] * len(batch)
        client = self.client()
        for rows, padded in planned_requests(batch, self.buckets, self.max_batch_size):
            priority = self.buckets.priority(padded.bucket_samples)
            log_probs, lengths = self._send(client, padded, priority)
            if log_probs.shape[0] != len(rows):
                raise TritonInferenceError(
                    f"{self.triton_model_name}: sent {len(rows)} utterances, got "
                    f"{log_probs.shape[0]} answers"
                )
            for row, output in zip(rows, trim_outputs(log_probs, lengths), strict=True):
                results[row] = output
        missing = [i for i, r in enumerate(results) if r is None]
        if missing:
            raise TritonInferenceError(
                f"{self.triton_model_name}: no answer for utterances {missing}"
            )
        return [r for r in results if r is not None]

    def close(self) -> None:
        """Close every thread's client (threads that call again get fresh ones)."""
        self._generation += 1
        _close_all(self._clients, self._clients_lock, type(self).close_client)


def _close_all(clients: list[Any], lock: threading.Lock, close: Callable[[Any], None]) -> None:
    with lock:
        closing = list(clients)
        clients.clear()
    for client in closing:
        close(client)


def options_from_model_config(config: dict[str, Any], options: dict[str, Any]) -> dict[str, Any]:
    """Fill ``max_batch_size`` and ``buckets`` from Triton's model config (JSON form) unless the
    caller set them, so clients pad to the edges the served model was configured with."""
    merged = dict(options)
    merged.setdefault("triton_model_name", config["name"])
    if "max_batch_size" not in merged and int(config.get("max_batch_size", 0)) > 0:
        merged["max_batch_size"] = int(config["max_batch_size"])
    raw = config.get("parameters", {}).get("length_buckets_seconds", {}).get("string_value")
    if "buckets" not in merged and raw:
        merged["buckets"] = LengthBuckets.parse(raw)
    return merged
