"""Demo step: Triton serving — concurrent requests batched by Triton, then the fallback at work.

The local stack serves the released cloud model with the bundled ``tritonserver`` (python backend
wrapping onnxruntime) and routes the functions through it, as the cloud's GPU tier does
(``EDGESCRIBE_INFERENCE=triton-grpc``). This step uses the very transcriber the functions use
(``functions.inference.selection.transcriber_from_environment``):

1. every sample clip, several times over, is sent at once from its own thread; the transcripts
   come back from Triton, and Triton's own statistics show the dynamic batcher at work:
   ``inference_count`` counts utterances, ``execution_count`` counts model runs — fewer runs than
   utterances means requests were merged into batches;
2. Triton is stopped, and the same transcriber keeps answering: each call tries Triton, fails,
   and in-process onnxruntime answers; after three failures the circuit breaker opens and calls
   stop waiting for the dead server at all.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING

from edgescribe.demo.steps import DemoContext, DemoStepError, Need

if TYPE_CHECKING:
    from edgescribe.local.running_stack import LocalTriton
    from edgescribe.samples import Sample
    from models.runtime.audio import DecodedAudio
    from models.runtime.fallback import FallbackBackend
    from models.runtime.transcriber import Transcriber
    from models.runtime.transcript import Transcript

#: Each clip is sent this many times at once, so same-length requests meet in Triton's queue.
COPIES_PER_CLIP = 3
#: Calls after Triton stops: enough for the breaker (3 failures by default) to open, plus one.
FALLBACK_CALLS = 4


@dataclass(frozen=True)
class BatchCounts:
    inferences: int
    executions: int


class TritonStep:
    name = "triton"
    title = "Triton: concurrent requests → dynamic batching; Triton down → onnxruntime fallback"
    needs: frozenset[Need] = frozenset({"triton"})

    def run(self, context: DemoContext) -> None:
        from functions.inference.selection import transcriber_from_environment
        from models.runtime.audio import decode_audio

        triton = context.stack.triton
        if triton is None:
            raise DemoStepError("the local stack was started without Triton")
        transcriber = transcriber_from_environment()
        fallback = _fallback_backend(transcriber)
        endpoints = triton.server.endpoints
        context.say(
            f"tritonserver serving {triton.spec.name} v{triton.spec.version} (python backend, "
            f"max batch {triton.spec.max_batch_size}) on gRPC {endpoints.grpc_url}, "
            f"HTTP {endpoints.http_url}"
        )
        clips = [(s, decode_audio(s.path, name=s.path.name)) for s in context.samples]

        before = batch_counts(triton)
        started = time.monotonic()
        results = _transcribe_concurrently(transcriber, clips, COPIES_PER_CLIP)
        seconds = time.monotonic() - started
        after = batch_counts(triton)

        engines = Counter(transcript.engine for _, transcript in results)
        context.say(
            f"{len(results)} requests ({len(clips)} clips × {COPIES_PER_CLIP}) sent at once from "
            f"{len(results)} threads, all answered in {seconds:.1f} s: "
            + ", ".join(f"{count} by {engine}" for engine, count in engines.items())
        )
        shown: set[str] = set()
        for sample, transcript in results:
            if sample.path.name not in shown:
                shown.add(sample.path.name)
                context.say(f"    {sample.path.name:<20} {transcript.text!r}")
        if engines.get("triton", 0) != len(results):
            reason = fallback.last_primary_error if fallback else None
            raise DemoStepError(
                f"only {engines.get('triton', 0)} of {len(results)} requests were served by "
                f"Triton (last Triton error: {reason})"
            )
        inferences = after.inferences - before.inferences
        executions = after.executions - before.executions
        context.say(
            f"Triton statistics: inference_count +{inferences}, execution_count +{executions} "
            f"→ {inferences / max(executions, 1):.1f} utterances per model run"
            + (
                " (dynamic batching merged concurrent requests)"
                if executions < inferences
                else " (no requests met in the queue this time)"
            )
        )
        if inferences < len(results):
            raise DemoStepError(
                f"Triton counted {inferences} inferences for {len(results)} requests it answered"
            )

        triton.server.stop()
        context.say("tritonserver stopped (graceful shutdown); the same transcriber, again:")
        if fallback is None:
            raise DemoStepError("the functions' backend has no fallback (EDGESCRIBE_INFERENCE?)")
        _show_fallback(context, transcriber, fallback, clips[0])


def batch_counts(triton: LocalTriton) -> BatchCounts:
    """Triton's cumulative counters for the served model version (its statistics endpoint)."""
    import tritonclient.http as httpclient

    client = httpclient.InferenceServerClient(triton.server.endpoints.http_url)
    try:
        stats = client.get_inference_statistics(triton.spec.name, str(triton.spec.version))
    finally:
        client.close()
    (model,) = stats["model_stats"]
    return BatchCounts(int(model["inference_count"]), int(model["execution_count"]))


def _fallback_backend(transcriber: Transcriber) -> FallbackBackend | None:
    from models.runtime.fallback import FallbackBackend

    backend = transcriber.backend
    return backend if isinstance(backend, FallbackBackend) else None


def _transcribe_concurrently(
    transcriber: Transcriber, clips: list[tuple[Sample, DecodedAudio]], copies: int
) -> list[tuple[Sample, Transcript]]:
    """One thread per request, released together by a barrier so they meet in Triton's queue."""
    jobs = [(sample, audio, copy) for sample, audio in clips for copy in range(copies)]
    results: list[tuple[Sample, Transcript] | None] = [None] * len(jobs)
    failures: list[BaseException] = []
    barrier = threading.Barrier(len(jobs))

    def work(index: int) -> None:
        sample, audio, copy = jobs[index]
        barrier.wait()
        try:
            transcript = transcriber.transcribe(
                audio, transcript_id=f"triton-{sample.path.stem}-{copy}"
            )
            results[index] = (sample, transcript)
        except Exception as exc:  # reported below, in the demo's thread
            failures.append(exc)

    threads = [threading.Thread(target=work, args=(i,), daemon=True) for i in range(len(jobs))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise DemoStepError(f"{len(failures)} concurrent transcriptions failed: {failures[0]}")
    return [result for result in results if result is not None]


def _show_fallback(
    context: DemoContext,
    transcriber: Transcriber,
    fallback: FallbackBackend,
    clip: tuple[Sample, DecodedAudio],
) -> None:
    sample, audio = clip
    for call in range(1, FALLBACK_CALLS + 1):
        fallback.last_primary_error = None
        started = time.monotonic()
        transcript = transcriber.transcribe(audio, transcript_id=f"fallback-{call}")
        seconds = time.monotonic() - started
        error = fallback.last_primary_error
        triton_said = (
            f"Triton failed ({_first_line(error)})"
            if error is not None
            else "Triton skipped (breaker open)"
        )
        context.say(
            f"    call {call}: {sample.path.name} → {transcript.engine} "
            f"({transcript.model.name} v{transcript.model.version}) in {seconds:.2f} s; "
            f"{triton_said}; breaker {fallback.breaker.state}"
        )
        if transcript.engine == "triton":
            raise DemoStepError("a stopped Triton cannot have answered; is another one running?")
    context.say(f"    transcript  {transcript.text!r}")


def _first_line(error: BaseException) -> str:
    """The transport's own words (``TritonInferenceError`` prefixes the URL and model name)."""
    text = (str(error).strip().splitlines() or [type(error).__name__])[0]
    text = text.split("': ", 1)[-1].split(";", 1)[0]
    return text if len(text) <= 70 else text[:67] + "..."


STEP = TritonStep()
