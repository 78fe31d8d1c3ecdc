"""Inference router: the cloud when it is reachable and healthy, the local model otherwise.

Per request, in order:

1. Decode the audio locally first. Bad input gets its specific error (``AudioDecodeError``: empty,
   truncated, unsupported codec, too long…) whichever engine would have run, and the decoded
   duration decides whether the cloud's synchronous limit (``SYNC_MAX_SECONDS``/``_BYTES``) allows
   sending it at all.
2. Cloud (``POST /v1/transcriptions``) if preferred, allowed by the circuit breaker
   (``models.runtime.fallback.CircuitBreaker``, shared with the serving side), and the clip fits.
   The call runs under a hard deadline (a worker thread), not only a socket timeout, so a server
   that trickles its answer cannot hold the user. Link failures, timeouts, 5xx and auth failures
   count against the breaker; a 4xx about the *input* does not (the server is healthy).
3. Otherwise, or if the cloud failed: the local model in the active slot, on the best execution
   provider (``edge.local_engine``). Its transcript says ``engine: onnxruntime-edge`` and is queued
   in the outbox (idempotency key ``transcript:<device>:<id>``) so the cloud receives it once the
   link returns. Cloud transcripts are already in the cloud and are not queued.

The local session is loaded once and reloaded only when the active slot changes (after an update).
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeoutError
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edge.client import DeviceClient
from edge.errors import AgentError, RequestRejectedError, TransientError
from edge.local_engine import load_local_transcriber
from edge.logs import log_event
from edge.outbox import Outbox
from edge.slots import Slots
from edgescribe.settings import SYNC_MAX_BYTES, SYNC_MAX_SECONDS
from models.runtime.fallback import CircuitBreaker
from models.runtime.storage_layout import validate_id
from models.runtime.transcript import Transcript

if TYPE_CHECKING:
    from models.runtime.transcriber import Transcriber

logger = logging.getLogger("edge.router")

#: Cloud answers that mean the cloud (or our access to it) is unhealthy, not the input.
_UNHEALTHY_STATUSES = frozenset({401, 403, 404})


@dataclass(frozen=True)
class RoutedTranscript:
    transcript: Transcript
    queued: bool  # True when the transcript waits in the outbox for upload
    cloud_error: str | None = None  # why the cloud was not used (None if it answered)


class LocalModel:
    """The active slot's model, loaded lazily and reloaded when the active slot changes."""

    def __init__(
        self,
        slots: Slots,
        *,
        intra_op_threads: int = 1,
        loader: Callable[[Path], Transcriber] | None = None,
    ) -> None:
        self.slots = slots
        self._threads = intra_op_threads
        self._loader = loader or (
            lambda d: load_local_transcriber(d, intra_op_threads=self._threads)
        )
        self._lock = threading.Lock()
        self._loaded: tuple[str, str] | None = None  # (slot, sha256)
        self._transcriber: Transcriber | None = None

    def get(self) -> Transcriber:
        from edge.errors import NoWorkingModelError

        active = self.slots.active()
        if active is None:
            raise NoWorkingModelError("no model installed for offline transcription")
        identity = (active, self.slots.manifest(active).sha256)
        with self._lock:
            if self._transcriber is None or self._loaded != identity:
                self._transcriber = self._loader(self.slots.path(active))
                self._loaded = identity
            return self._transcriber


class InferenceRouter:
    def __init__(
        self,
        *,
        device_id: str,
        local: LocalModel,
        outbox: Outbox,
        client: DeviceClient | None,
        breaker: CircuitBreaker,
        prefer_cloud: bool = True,
        cloud_timeout_seconds: float = 15.0,
    ) -> None:
        self.device_id = device_id
        self.local = local
        self.outbox = outbox
        self.client = client
        self.breaker = breaker
        self.prefer_cloud = prefer_cloud
        self.cloud_timeout_seconds = cloud_timeout_seconds
        self._executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="cloud-transcribe")

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)

    def transcribe(
        self,
        audio: bytes,
        *,
        filename: str = "clip.wav",
        transcript_id: str | None = None,
        offline: bool = False,
    ) -> RoutedTranscript:
        from models.runtime.audio import decode_audio

        transcript_id = validate_id(transcript_id or uuid.uuid4().hex, "transcript id")
        decoded = decode_audio(audio, name=filename)  # bad input fails here, specifically
        cloud_error: str | None = None
        if offline or not self.prefer_cloud or self.client is None:
            cloud_error = "offline mode" if offline else "cloud not configured or not preferred"
        elif decoded.duration > SYNC_MAX_SECONDS or len(audio) > SYNC_MAX_BYTES:
            cloud_error = f"clip over the cloud's synchronous limit ({decoded.duration:.1f}s)"
        elif not self.breaker.allow_request():
            cloud_error = f"circuit breaker {self.breaker.state}"
        else:
            try:
                transcript = self._cloud(audio, filename)
            except AgentError as exc:
                cloud_error = str(exc)
                log_event(logger, "cloud-failed", level=logging.WARNING, reason=cloud_error)
            else:
                return RoutedTranscript(transcript=transcript, queued=False)

        transcript = self.local.get().transcribe(decoded, transcript_id=transcript_id)
        self.outbox.remember_transcript(transcript)
        queued = self.outbox.enqueue(
            "transcript",
            f"transcript:{self.device_id}:{transcript_id}",
            {
                "device_id": self.device_id,
                "transcript": transcript.model_dump(mode="json"),
                "produced_at": datetime.now(UTC).isoformat(),
                "cloud_error": cloud_error,
            },
        )
        return RoutedTranscript(transcript=transcript, queued=queued, cloud_error=cloud_error)

    def _cloud(self, audio: bytes, filename: str) -> Transcript:
        client = self.client
        assert client is not None
        future = self._executor.submit(
            client.transcribe,
            audio,
            filename=filename,
            timeout_seconds=self.cloud_timeout_seconds,
        )
        try:
            transcript = future.result(timeout=self.cloud_timeout_seconds)
        except FutureTimeoutError as exc:
            future.cancel()
            self.breaker.record_failure("timeout")
            raise _CloudTimeoutError(
                f"cloud did not answer within {self.cloud_timeout_seconds:g}s"
            ) from exc
        except RequestRejectedError as exc:
            if exc.status in _UNHEALTHY_STATUSES:
                self.breaker.record_failure(str(exc))
            else:
                self.breaker.record_success()  # the server works; it disliked this input
            raise
        except TransientError as exc:
            self.breaker.record_failure(str(exc))
            raise
        except AgentError as exc:  # a reply that does not parse: the cloud is not healthy
            self.breaker.record_failure(str(exc))
            raise
        self.breaker.record_success()
        return transcript


class _CloudTimeoutError(TransientError):
    """The cloud took longer than the router's deadline."""


def correction_payload(
    outbox: Outbox, transcript_id: str, corrected_text: str, *, corrected_at: datetime | None = None
) -> tuple[str, dict[str, Any]]:
    """The outbox key and ``POST /v1/feedback`` body (the API's ``FeedbackRequest``) for a
    correction made on this device.

    ``feedback_id`` is chosen once, here, so every retry is the same feedback to the server;
    ``corrected_at`` pins the day folder it is stored under. For a transcript made on the device
    (which the cloud may not hold yet) the original text and model ride along, remembered by the
    outbox when the router produced it."""
    feedback_id = uuid.uuid4().hex
    payload: dict[str, Any] = {
        "transcript_id": validate_id(transcript_id, "transcript id"),
        "corrected_text": corrected_text,
        "feedback_id": feedback_id,
        "corrected_at": (corrected_at or datetime.now(UTC)).isoformat(),
    }
    original = outbox.recall_transcript(transcript_id)
    if original is not None:
        payload["original_text"] = original["text"]
        payload["model"] = original["model"]
    return f"correction:{feedback_id}", payload
