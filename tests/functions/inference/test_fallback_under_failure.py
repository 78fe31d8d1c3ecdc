"""Fault injection: the Triton server is SIGKILLed while requests are in flight.

Promise under test (models/runtime/fallback.py): every request still returns a transcript — the
in-flight ones and the ones after — served by in-process onnxruntime, with the same text the
onnxruntime reference produces. This test polls a real system, so it waits with deadlines; it
asserts outcomes, never timings.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from edgescribe.local.triton_server import start_triton_server
from edgescribe.samples import Sample
from functions.inference.triton_grpc import TritonGrpcBackend
from models.runtime.audio import DecodedAudio
from models.runtime.backend import OnnxRuntimeBackend
from models.runtime.fallback import CircuitBreaker, CircuitState, FallbackBackend
from models.runtime.session import AcousticModel
from models.runtime.transcriber import Transcriber
from models.runtime.transcript import Transcript
from models.triton.spec import TritonModelSpec

pytestmark = [pytest.mark.triton, pytest.mark.slow]

WORKERS = 6


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def test_killing_triton_mid_load_still_answers_every_request(
    triton_repository: Path,
    served_spec: TritonModelSpec,
    cloud_model: AcousticModel,
    onnxruntime_backend: OnnxRuntimeBackend,
    onnxruntime_transcriber: Transcriber,
    decoded_samples: list[tuple[Sample, DecodedAudio]],
) -> None:
    expected = {
        sample.path.name: onnxruntime_transcriber.transcribe(audio, transcript_id="ref").text
        for sample, audio in decoded_samples
    }
    server = start_triton_server(triton_repository)
    try:
        breaker = CircuitBreaker(failure_threshold=2, reset_timeout=3600)
        fallback = FallbackBackend(
            TritonGrpcBackend.connect(
                server.endpoints.grpc_url, served_spec.name, timeout_seconds=10
            ),
            onnxruntime_backend,
            timeout_seconds=10,
            breaker=breaker,
        )
        transcriber = Transcriber(fallback, cloud_model.manifest)
        results: list[tuple[str, Transcript]] = []
        failures: list[BaseException] = []
        lock = threading.Lock()
        stop = threading.Event()

        def worker(index: int) -> None:
            turn = index
            while not stop.is_set():
                sample, audio = decoded_samples[turn % len(decoded_samples)]
                turn += 1
                try:
                    transcript = transcriber.transcribe(audio, transcript_id=f"w{index}-{turn}")
                except BaseException as exc:  # recorded: the test fails on any lost request
                    with lock:
                        failures.append(exc)
                    continue
                with lock:
                    results.append((sample.path.name, transcript))

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(WORKERS)]
        for thread in threads:
            thread.start()
        try:
            wait_for(lambda: fallback.served["triton"] >= 10, "requests served by Triton")
            server.kill()
            served_before_kill = sum(fallback.served.values())
            wait_for(
                lambda: sum(fallback.served.values()) >= served_before_kill + 3 * WORKERS,
                "requests after the kill",
            )
        finally:
            stop.set()
            for thread in threads:
                thread.join(timeout=120)
    finally:
        server.stop()

    assert not failures, failures[:3]
    assert {t.engine for _, t in results} == {"triton", "onnxruntime-cloud"}
    for clip, transcript in results:
        assert transcript.text == expected[clip], (clip, transcript.engine)
    assert breaker.state is CircuitState.OPEN
    assert fallback.served["onnxruntime-cloud"] >= 3 * WORKERS
    assert not server.running
