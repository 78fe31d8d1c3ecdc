"""Concurrent requests of different lengths really are batched, and bucketing is why.

Evidence comes from Triton's own statistics endpoint: ``inference_count`` counts utterances,
``execution_count`` counts model executions; batching means fewer executions than utterances.
Both are cumulative over the session, so each test compares before/after deltas.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pytest
import tritonclient.http as httpclient

from edgescribe.local.triton_server import TritonServer
from functions.inference.triton_grpc import TritonGrpcBackend
from models.runtime.bucketing import LengthBuckets
from models.triton.spec import TritonModelSpec

pytestmark = [pytest.mark.triton, pytest.mark.slow]

CONCURRENT_REQUESTS = 16


@dataclass(frozen=True)
class Counts:
    inferences: int
    executions: int


def model_counts(server: TritonServer, model: str) -> Counts:
    client = httpclient.InferenceServerClient(server.endpoints.http_url)
    try:
        (stats,) = client.get_inference_statistics(model)["model_stats"]
    finally:
        client.close()
    return Counts(int(stats["inference_count"]), int(stats["execution_count"]))


def settled_counts(server: TritonServer, model: str) -> Counts:
    """Counts once they stop moving: Triton updates its inference and execution counters at
    slightly different moments, so a snapshot taken under load can catch a batch half-counted."""
    previous = model_counts(server, model)
    for _ in range(50):
        time.sleep(0.1)
        current = model_counts(server, model)
        if current == previous:
            return current
        previous = current
    return previous


def send_concurrently(backend: TritonGrpcBackend, lengths: list[int]) -> None:
    """One thread per utterance, released together, so they meet in Triton's queue."""
    rng = np.random.default_rng(11)
    clips = [(0.05 * rng.standard_normal(n)).astype(np.float32) for n in lengths]
    start = threading.Barrier(len(clips))
    failures: list[BaseException] = []

    def send(clip: npt.NDArray[np.float32]) -> None:
        start.wait()
        try:
            backend.infer([clip])
        except BaseException as exc:  # collected and re-raised in the test thread
            failures.append(exc)

    threads = [threading.Thread(target=send, args=(clip,)) for clip in clips]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures, failures


def distinct_lengths_within_one_bucket() -> list[int]:
    """2.10 s, 2.15 s, ... 2.85 s: all different, all in one bucket (2-4 s)."""
    return [int(16_000 * (2.10 + 0.05 * i)) for i in range(CONCURRENT_REQUESTS)]


def test_concurrent_requests_of_different_lengths_are_batched(
    triton_server: TritonServer, served_spec: TritonModelSpec
) -> None:
    backend = TritonGrpcBackend.connect(triton_server.endpoints.grpc_url, served_spec.name)
    lengths = distinct_lengths_within_one_bucket()
    assert len({backend.buckets.bucket_samples(n) for n in lengths}) == 1
    before = settled_counts(triton_server, served_spec.name)

    send_concurrently(backend, lengths)

    after = settled_counts(triton_server, served_spec.name)
    inferences = after.inferences - before.inferences
    executions = after.executions - before.executions
    assert inferences == CONCURRENT_REQUESTS
    assert executions < inferences, f"{executions} executions for {inferences} utterances"


def test_without_bucketing_different_lengths_cannot_batch(
    triton_server: TritonServer, served_spec: TritonModelSpec
) -> None:
    """The control: padded only to their own length, the same requests run one by one —
    Triton's batcher merges equal shapes only, which is why the clients bucket."""
    exact_lengths = LengthBuckets(edges_seconds=(1 / 16_000,), overflow_step_seconds=1 / 16_000)
    backend = TritonGrpcBackend.connect(
        triton_server.endpoints.grpc_url, served_spec.name, buckets=exact_lengths
    )
    before = settled_counts(triton_server, served_spec.name)

    send_concurrently(backend, distinct_lengths_within_one_bucket())

    after = settled_counts(triton_server, served_spec.name)
    assert after.inferences - before.inferences == CONCURRENT_REQUESTS
    assert after.executions - before.executions == CONCURRENT_REQUESTS
