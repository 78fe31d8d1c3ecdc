"""Shadow inference: the candidate on the shadow channel runs beside stable on sampled live traffic.

The batch function calls :func:`run_shadow` *after* the user's transcript is written. For a sampled
recording the shadow model transcribes the same decoded audio, and one ``ShadowResult`` (both
texts, both latencies, their disagreement) is stored at ``storage_layout.shadow_transcript_key``
in the transcripts bucket — under ``shadow/``, never ``transcripts/``: a shadow text is evidence
for the promotion decision (``functions.learning.promotion``), never an answer to a user.

Rules, in the order they are applied (cheapest first, so most records cost a hash and nothing more):

1. *Sampled?* ``sha256("shadow:<recording key>")`` bucketed like a device rollout
   (``functions.distribution.bucketing``) must fall under ``EDGESCRIBE_SHADOW_SAMPLE_PERCENT``
   (default 10). Deterministic: a redelivered upload is sampled again, never half the time.
2. *Is a candidate on trial?* The shadow channel (``models/channels/shadow.json``, read at most
   once per ``channel_ttl_seconds`` per container) must name a model that differs from the one
   that produced the user's transcript and, like ``functions.distribution.decision`` rule 2, is
   newer than stable's version of the same model. A rejected candidate's shadow channel is rolled
   back to stable's version, so it stops here without any extra flag. When the batch function
   follows the stable channel (``EDGESCRIBE_MODEL_CHANNEL=stable``,
   ``functions.inference.channel_following``), the user's transcript names stable's version, so a
   candidate promoted to stable stops being shadowed here too: it is what users already get.
3. *Load once.* ``model.onnx`` + ``manifest.json`` are downloaded into a per-version temporary
   folder once per container and verified (size, sha256) before onnxruntime parses a byte, by
   ``functions.inference.published_models`` — the loader the channel-following transcriber uses
   too; a version that fails is not retried within ``channel_ttl_seconds``.
4. *Transcribe, compare, store.* ``disagreement`` is the CER of the shadow text against the text
   the user got (``models.runtime.scoring.cer``).

A shadow failure of any kind (missing or corrupt model, storage error, a bug) is logged and counted
(``ShadowFailures``) and never reaches the user: the transcript is already stored, and
:func:`run_shadow` does not raise.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Final

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from functions.distribution.bucketing import in_rollout
from functions.distribution.channels import ChannelState, ChannelStore
from functions.inference.published_models import (
    MAX_MANIFEST_BYTES as MAX_MANIFEST_BYTES,  # re-exported: shadow's public constant
)
from functions.inference.published_models import (
    LoadedModel,
    PublishedModelError,
    load_published_model,
)
from functions.learning.records import ShadowResult, ShadowSide
from models.runtime import storage_layout
from models.runtime.scoring import cer
from models.runtime.transcript import ModelRef

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

    from models.runtime.audio import DecodedAudio
    from models.runtime.transcriber import Transcriber
    from models.runtime.transcript import Transcript

SAMPLE_PERCENT_VARIABLE: Final = "EDGESCRIBE_SHADOW_SAMPLE_PERCENT"
#: Overrides ``DEFAULT_CHANNEL_TTL_SECONDS`` (the local stack's demo sets 0: see a promote at once).
CHANNEL_TTL_VARIABLE: Final = "EDGESCRIBE_SHADOW_CHANNEL_TTL_SECONDS"
DEFAULT_SAMPLE_PERCENT: Final = 10.0
#: How long a container trusts the channel pointers it read (a promote or reject reaches every
#: container within this time, at two small GETs per container per period).
DEFAULT_CHANNEL_TTL_SECONDS: Final = 60.0
#: Salt of the sampling hash: the recording sample is independent of any device cohort.
SAMPLE_SALT: Final = "shadow"

logger = Logger(service="batch-transcription", child=True)
#: Powertools shares one metric buffer between instances: these land in the batch handler's flush.
metrics = Metrics(namespace="EdgeScribe")


class ShadowConfigurationError(ValueError):
    """``EDGESCRIBE_SHADOW_SAMPLE_PERCENT`` is not a percentage (names the variable and value)."""


class ShadowModelError(PublishedModelError):
    """The shadow channel's model cannot be used now (it failed to load less than a channel TTL
    ago). Download and verification failures are its base, ``PublishedModelError``."""


@dataclass
class ShadowStats:
    """What this runner did since it was built (per container); the metrics carry the same counts."""

    unsampled: int = 0
    no_trial: int = 0
    stored: int = 0
    failed: int = 0


@dataclass(frozen=True)
class _ChannelView:
    shadow: ChannelState | None
    stable: ChannelState | None
    read_at: float


@dataclass(frozen=True)
class _ShadowModel:
    loaded: LoadedModel
    transcriber: Transcriber

    @property
    def model(self) -> ModelRef:
        return self.loaded.model


def sample_percent_from_environment() -> float:
    raw = os.environ.get(SAMPLE_PERCENT_VARIABLE, "")
    if not raw.strip():
        return DEFAULT_SAMPLE_PERCENT
    try:
        percent = float(raw)
    except ValueError as exc:
        raise ShadowConfigurationError(
            f"{SAMPLE_PERCENT_VARIABLE}={raw!r} is not a number (expected 0–100)"
        ) from exc
    if not 0.0 <= percent <= 100.0:
        raise ShadowConfigurationError(f"{SAMPLE_PERCENT_VARIABLE}={raw!r} is outside 0–100")
    return percent


def channel_ttl_from_environment() -> float:
    raw = os.environ.get(CHANNEL_TTL_VARIABLE, "")
    if not raw.strip():
        return DEFAULT_CHANNEL_TTL_SECONDS
    try:
        seconds = float(raw)
    except ValueError as exc:
        raise ShadowConfigurationError(f"{CHANNEL_TTL_VARIABLE}={raw!r} is not a number") from exc
    if seconds < 0:
        raise ShadowConfigurationError(f"{CHANNEL_TTL_VARIABLE}={raw!r} is negative")
    return seconds


def _utc_now() -> datetime:
    return datetime.now(UTC)


class ShadowRunner:
    """Runs the shadow channel's model on sampled recordings; one per container (thread-safe)."""

    def __init__(
        self,
        s3: S3Client,
        *,
        models_bucket: str,
        transcripts_bucket: str,
        sample_percent: float = DEFAULT_SAMPLE_PERCENT,
        channel_ttl_seconds: float = DEFAULT_CHANNEL_TTL_SECONDS,
        work_dir: Path | None = None,
        intra_op_threads: int = 1,
        clock: Callable[[], datetime] = _utc_now,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if not 0.0 <= sample_percent <= 100.0:
            raise ShadowConfigurationError(f"sample percent {sample_percent} is outside 0–100")
        self._s3 = s3
        self._models_bucket = models_bucket
        self._transcripts_bucket = transcripts_bucket
        self._channels = ChannelStore(s3, models_bucket)
        self.sample_percent = sample_percent
        self._ttl = channel_ttl_seconds
        self._work_dir = work_dir
        self._threads = intra_op_threads
        self._clock = clock
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._view: _ChannelView | None = None
        self._loaded: _ShadowModel | None = None
        self._failed_at: dict[ModelRef, float] = {}
        self.stats = ShadowStats()

    # --- the three questions, cheapest first ------------------------------------------------------

    def in_sample(self, recording_key: str) -> bool:
        """Rule 1: a pure function of the key and the percentage (no I/O)."""
        return in_rollout(recording_key, SAMPLE_SALT, self.sample_percent)

    def trial_model(self, served: ModelRef) -> ModelRef | None:
        """Rule 2: the model on trial in the shadow channel, or ``None`` when nothing is."""
        view = self._channel_view()
        shadow, stable = view.shadow, view.stable
        if shadow is None:
            return None
        candidate = ModelRef(name=shadow.name, version=shadow.version)
        if candidate == served:
            return None
        if stable is not None and stable.name == shadow.name and shadow.version <= stable.version:
            return None
        return candidate

    @property
    def loaded_models(self) -> tuple[ModelRef, ...]:
        """The shadow models this container holds in memory (at most one)."""
        loaded = self._loaded
        return (loaded.model,) if loaded else ()

    # --- the work ---------------------------------------------------------------------------------

    def run(
        self,
        audio: DecodedAudio,
        transcript: Transcript,
        seconds: float,
        ref: storage_layout.RecordingRef,
    ) -> ShadowResult | None:
        """Shadow one recording the user already has a transcript for; never raises.

        ``seconds`` is how long stable took to transcribe ``audio`` (measured by the caller the way
        this method measures the shadow model: around ``Transcriber.transcribe``).
        Returns the stored result, or ``None`` when the recording was not shadowed.
        """
        try:
            return self._run(audio, transcript, seconds, ref)
        except Exception:
            self.stats.failed += 1
            metrics.add_metric(name="ShadowFailures", unit=MetricUnit.Count, value=1)
            logger.exception(
                "shadow inference failed; the user's transcript is unaffected",
                extra={"tenant": ref.tenant, "recording_id": ref.recording_id},
            )
            return None

    def _run(
        self,
        audio: DecodedAudio,
        transcript: Transcript,
        seconds: float,
        ref: storage_layout.RecordingRef,
    ) -> ShadowResult | None:
        recording_key = storage_layout.recording_key(ref.tenant, ref.recording_id, ref.extension)
        if not self.in_sample(recording_key):
            self.stats.unsampled += 1
            return None
        target = self.trial_model(transcript.model)
        if target is None:
            self.stats.no_trial += 1
            return None
        transcriber = self._transcriber(target)
        started = time.perf_counter()
        shadow = transcriber.transcribe(audio, transcript_id=ref.recording_id)
        shadow_seconds = time.perf_counter() - started
        result = ShadowResult(
            tenant=ref.tenant,
            recording_id=ref.recording_id,
            recording_key=recording_key,
            audio_seconds=round(audio.duration, 3),
            stable=ShadowSide(model=transcript.model, text=transcript.text, seconds=seconds),
            shadow=ShadowSide(model=shadow.model, text=shadow.text, seconds=shadow_seconds),
            disagreement=cer(transcript.text, shadow.text),
            created_at=self._clock(),
        )
        key = storage_layout.shadow_transcript_key(ref.tenant, ref.recording_id, target.version)
        self._s3.put_object(
            Bucket=self._transcripts_bucket,
            Key=key,
            Body=result.model_dump_json(indent=2).encode(),
            ContentType="application/json",
        )
        self.stats.stored += 1
        metrics.add_metric(name="ShadowResultsStored", unit=MetricUnit.Count, value=1)
        metrics.add_metric(
            name="ShadowDisagreement", unit=MetricUnit.NoUnit, value=result.disagreement
        )
        logger.info(
            "shadow result stored",
            extra={"shadow_key": key, "disagreement": round(result.disagreement, 4)},
        )
        return result

    def _channel_view(self) -> _ChannelView:
        now = self._monotonic()
        view = self._view
        if view is not None and now - view.read_at < self._ttl:
            return view
        shadow = self._channels.read("shadow")
        stable = self._channels.read("stable") if shadow is not None else None
        view = _ChannelView(
            shadow=shadow.state if shadow else None,
            stable=stable.state if stable else None,
            read_at=now,
        )
        self._view = view
        return view

    def _transcriber(self, model: ModelRef) -> Transcriber:
        with self._lock:
            loaded = self._loaded
            if loaded is not None and loaded.model == model:
                return loaded.transcriber
            failed_at = self._failed_at.get(model)
            if failed_at is not None and self._monotonic() - failed_at < self._ttl:
                raise ShadowModelError(
                    f"{model.name} v{model.version} failed to load less than {self._ttl:.0f} s "
                    "ago; not retrying yet"
                )
            self.close()
            try:
                self._loaded = self._load(model)
            except Exception:
                self._failed_at[model] = self._monotonic()
                raise
            self._failed_at.pop(model, None)
            return self._loaded.transcriber

    def close(self) -> None:
        """Drop the loaded shadow model and its files. Called before loading another: a Lambda
        has memory for stable plus one more model, not for every version ever on trial."""
        shadow, self._loaded = self._loaded, None
        if shadow is not None:
            shadow.loaded.remove_files()

    def _load(self, model: ModelRef) -> _ShadowModel:
        loaded = load_published_model(
            self._s3,
            self._models_bucket,
            model,
            work_dir=self._work_dir,
            intra_op_threads=self._threads,
            purpose="shadow",
        )
        metrics.add_metric(name="ShadowModelsLoaded", unit=MetricUnit.Count, value=1)
        logger.info("shadow model loaded", extra={"model": model.name, "version": model.version})
        return _ShadowModel(loaded=loaded, transcriber=loaded.transcriber())


_runner_lock = threading.Lock()
_runner: tuple[tuple[str, str, str | None, float, float], ShadowRunner] | None = None


def shadow_runner_from_environment() -> ShadowRunner:
    """The container's runner for its buckets and sample percentage (built on first use).

    One runner at a time: a new configuration (another stack in the local tests) replaces the old
    one, and with it the shadow model it held.
    """
    from functions.common import aws_clients
    from functions.common.environment import resource_name

    global _runner
    key = (
        resource_name("MODELS_BUCKET"),
        resource_name("TRANSCRIPTS_BUCKET"),
        aws_clients.endpoint_url(),
        sample_percent_from_environment(),
        channel_ttl_from_environment(),
    )
    with _runner_lock:
        if _runner is not None and _runner[0] == key:
            return _runner[1]
        if _runner is not None:
            _runner[1].close()
        runner = ShadowRunner(
            aws_clients.s3_client(),
            models_bucket=key[0],
            transcripts_bucket=key[1],
            sample_percent=key[3],
            channel_ttl_seconds=key[4],
        )
        _runner = (key, runner)
        return runner


def run_shadow(
    audio: DecodedAudio,
    transcript: Transcript,
    seconds: float,
    ref: storage_layout.RecordingRef,
) -> ShadowResult | None:
    """The batch function's hook: shadow this recording if it is sampled; never raises."""
    try:
        runner = shadow_runner_from_environment()
    except Exception:
        metrics.add_metric(name="ShadowFailures", unit=MetricUnit.Count, value=1)
        logger.exception("shadow inference is misconfigured; skipped")
        return None
    return runner.run(audio, transcript, seconds, ref)
