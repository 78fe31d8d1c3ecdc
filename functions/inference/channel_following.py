"""A transcriber that serves what a model channel points at, so a full rollout reaches the cloud too.

Devices follow the ``stable`` channel through the edge agent. Without this module the batch function
and the API's synchronous transcription would keep serving the model baked into their image long
after the learning loop promoted a better one. With ``EDGESCRIBE_MODEL_CHANNEL=stable``
(``functions.inference.selection``) the in-process onnxruntime model — the only model in the default
mode, the fallback in the Triton modes — follows the channel. Rules, in order:

1. *Start from the image.* The first model is the baked-in one (``EDGESCRIBE_MODEL_DIR`` or the
   released edge model): a cold start never waits for S3 and never fails because of a channel.
2. *Look at most once per TTL.* A request first checks whether ``ttl_seconds`` have passed since the
   last look (``EDGESCRIBE_MODEL_CHANNEL_TTL_SECONDS``, default 60); if so it reads the channel file
   (one small GET). One request at a time looks; concurrent requests keep the loaded model.
3. *Only this model's channel.* A pointer that names another model than ``model_name``
   (``edgescribe-edge``) is ignored: a different model family is a deployment change, not a rollout.
4. *Load once, verify first.* A version other than the one served comes from memory when it is the
   previous one (a rollback is instant), from the image when it is the baked-in one, and otherwise
   from the models bucket through ``functions.inference.published_models`` (size + sha256 checked
   before onnxruntime parses a byte). The rollout percentage is not consulted: it divides devices,
   while one function container serves every tenant.
5. *Swap atomically.* Each request takes one reference to the current transcriber and finishes on
   it, so requests already running end on the old model and ``Transcript.model`` always names the
   version that produced the transcript. Two models stay in memory, the current and the previous;
   an older one is dropped (its downloaded files deleted; requests still on it keep their session).
6. *Fail safe.* A missing or unreadable channel, a failed download, a checksum mismatch or a model
   onnxruntime rejects is logged and counted (``ModelChannelFailures``; a missing channel:
   ``ModelChannelMissing``) and changes nothing: the loaded model keeps serving and the next look,
   one TTL later, tries again. No user request fails because of the channel.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit

from functions.distribution.channels import Channel, ChannelStore
from functions.inference.published_models import LoadedModel, load_published_model
from functions.inference.selection import DEFAULT_MODEL_CHANNEL_TTL_SECONDS
from models.runtime.artifacts import DEFAULT_MODEL_NAME
from models.runtime.transcriber import Transcriber
from models.runtime.transcript import ModelRef

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
    from mypy_boto3_s3 import S3Client

    from models.runtime.audio import DecodedAudio
    from models.runtime.session import AcousticModel
    from models.runtime.transcript import Transcript

logger = logging.getLogger(__name__)
#: Powertools shares one metric buffer between instances: these land in the handler's flush.
metrics = Metrics(namespace="EdgeScribe")

#: Turns a loaded acoustic model into the transcriber a request uses (onnxruntime alone, or
#: behind Triton as its fallback): ``functions.inference.selection`` decides.
TranscriberFactory = Callable[["AcousticModel"], Transcriber]


@dataclass
class ChannelFollowingStats:
    """What this transcriber did since it was built (per container); metrics carry the same."""

    looks: int = 0
    swaps: int = 0
    missing: int = 0
    ignored: int = 0
    failures: int = 0
    last_failure: str | None = None


@dataclass(frozen=True)
class _Served:
    model: ModelRef
    transcriber: Transcriber
    #: ``None`` for the baked-in model (its files belong to the image and are never deleted).
    published: LoadedModel | None


class ChannelFollowingTranscriber(Transcriber):
    """A :class:`Transcriber` whose model follows ``channel`` (rules in the module doc).

    ``backend`` and ``manifest`` are the current model's; :meth:`transcribe` picks the model per
    request. Thread-safe; one per container.
    """

    def __init__(
        self,
        baked_in: AcousticModel,
        *,
        build: TranscriberFactory,
        s3: S3Client,
        models_bucket: str,
        channel: Channel,
        model_name: str = DEFAULT_MODEL_NAME,
        ttl_seconds: float = DEFAULT_MODEL_CHANNEL_TTL_SECONDS,
        intra_op_threads: int = 1,
        work_dir: Path | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        first = build(baked_in)
        super().__init__(first.backend, first.manifest, first.max_chunk_seconds)
        self.channel = channel
        self.model_name = model_name
        self.ttl_seconds = ttl_seconds
        self.stats = ChannelFollowingStats()
        self._build = build
        self._s3 = s3
        self._models_bucket = models_bucket
        self._channels = ChannelStore(s3, models_bucket)
        self._threads = intra_op_threads
        self._work_dir = work_dir
        self._monotonic = monotonic
        self._baked_in = ModelRef(name=baked_in.manifest.name, version=baked_in.manifest.version)
        self._baked_in_dir = baked_in.model_path.parent
        #: Current first, then the previous one (rule 5).
        self._served: tuple[_Served, ...] = (_Served(self._baked_in, first, None),)
        self._swap_lock = threading.Lock()
        self._look_lock = threading.Lock()
        self._looked_at: float | None = None

    # --- what callers see ---------------------------------------------------------------------------

    @property
    def serving(self) -> ModelRef:
        """The model new requests get."""
        return self._served[0].model

    @property
    def loaded_models(self) -> tuple[ModelRef, ...]:
        """The models held in memory: the current one first, then the previous one."""
        return tuple(served.model for served in self._served)

    def transcribe(
        self, audio: DecodedAudio | npt.NDArray[np.float32], *, transcript_id: str
    ) -> Transcript:
        """Follow the channel if a TTL has passed (never raises), then transcribe on one model."""
        self.follow()
        current = self._served[0].transcriber
        return current.transcribe(audio, transcript_id=transcript_id)

    def follow(self) -> None:
        """Rules 2–6: look at the channel if the TTL has passed, swap if it moved; never raises."""
        if not self._look_due():
            return
        if not self._look_lock.acquire(blocking=False):
            return  # another request is looking; this one keeps the loaded model
        try:
            if not self._look_due():
                return
            self._looked_at = self._monotonic()
            self.stats.looks += 1
            self._look()
        except Exception as exc:
            self.stats.failures += 1
            self.stats.last_failure = f"{type(exc).__name__}: {exc}"
            metrics.add_metric(name="ModelChannelFailures", unit=MetricUnit.Count, value=1)
            logger.exception(
                "could not follow channel %r; still serving %s v%s (next try in %g s)",
                self.channel,
                self.serving.name,
                self.serving.version,
                self.ttl_seconds,
            )
        finally:
            self._look_lock.release()

    def close(self) -> None:
        """Forget the previous model and delete every downloaded file (a replaced configuration).

        The current model stays in memory, so a request that still holds this transcriber works.
        """
        with self._swap_lock:
            dropped, self._served = self._served, self._served[:1]
        for served in dropped:
            if served.published is not None:
                served.published.remove_files()

    # --- the work ---------------------------------------------------------------------------------

    def _look_due(self) -> bool:
        looked_at = self._looked_at
        return looked_at is None or self._monotonic() - looked_at >= self.ttl_seconds

    def _look(self) -> None:
        pointer = self._channels.read(self.channel)
        if pointer is None:
            self.stats.missing += 1
            metrics.add_metric(name="ModelChannelMissing", unit=MetricUnit.Count, value=1)
            logger.warning(
                "channel %r has never been promoted; serving %s v%s",
                self.channel,
                self.serving.name,
                self.serving.version,
            )
            return
        target = ModelRef(name=pointer.state.name, version=pointer.state.version)
        if target.name != self.model_name:
            self.stats.ignored += 1
            logger.warning(
                "channel %r points at %s v%s; this function follows %s only",
                self.channel,
                target.name,
                target.version,
                self.model_name,
            )
            return
        if target == self.serving:
            return
        self._swap(self._obtain(target))

    def _obtain(self, model: ModelRef) -> _Served:
        for served in self._served:
            if served.model == model:
                return served
        if model == self._baked_in:
            from models.runtime.session import AcousticModel

            acoustic = AcousticModel.load(self._baked_in_dir, intra_op_threads=self._threads)
            return _Served(model, self._build(acoustic), None)
        published = load_published_model(
            self._s3,
            self._models_bucket,
            model,
            work_dir=self._work_dir,
            intra_op_threads=self._threads,
            purpose=f"{self.channel}-channel",
        )
        try:
            return _Served(model, self._build(published.acoustic_model), published)
        except Exception:
            published.remove_files()
            raise

    def _swap(self, incoming: _Served) -> None:
        with self._swap_lock:
            previous = self._served[0]
            kept = {incoming.model, previous.model}
            dropped = [served for served in self._served if served.model not in kept]
            self._served = (incoming, previous)
            self.backend = incoming.transcriber.backend
            self.manifest = incoming.transcriber.manifest
        for served in dropped:
            if served.published is not None:
                served.published.remove_files()
        self.stats.swaps += 1
        metrics.add_metric(name="ModelChannelSwaps", unit=MetricUnit.Count, value=1)
        logger.info(
            "now serving %s v%s from channel %r (was v%s)",
            incoming.model.name,
            incoming.model.version,
            self.channel,
            previous.model.version,
        )
