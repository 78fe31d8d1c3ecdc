"""Which inference backend a function uses, decided once per process from its environment.

``EDGESCRIBE_INFERENCE`` picks the primary:

=================  ==========================================================================
``onnxruntime``    (default) in-process onnxruntime only — Lambda without a GPU tier
``triton-grpc``    Triton at ``TRITON_URL`` (``host:port``) over gRPC, onnxruntime as fallback
``triton-http``    the same over HTTP
``sagemaker``      the Triton container behind SageMaker endpoint ``SAGEMAKER_ENDPOINT``
=================  ==========================================================================

For the Triton modes ``TRITON_MODEL`` (default ``edgescribe-cloud``) and ``TRITON_MODEL_VERSION``
name what is served — infra deploys that version, so it sets the variable; transcripts record it.
The in-process fallback loads ``EDGESCRIBE_MODEL_DIR`` (default: the released edge model).
``EDGESCRIBE_TRITON_TIMEOUT_SECONDS``, ``EDGESCRIBE_BREAKER_FAILURES`` and
``EDGESCRIBE_BREAKER_RESET_SECONDS`` tune the fallback (see ``models.runtime.fallback``).

``EDGESCRIBE_MODEL_CHANNEL`` (``stable`` in the cloud; unset: the in-process model never changes)
makes the in-process model follow that channel in the models bucket (``MODELS_BUCKET``): the
baked-in model serves until the channel names another version of it, which is then downloaded,
verified and swapped in (``functions.inference.channel_following``; the channel is read at most
once per ``EDGESCRIBE_MODEL_CHANNEL_TTL_SECONDS``, default 60, and never fails a request).

Nothing here contacts Triton or S3 at start-up: a cold start while Triton is down must still
transcribe (through the fallback), not crash.
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final, Literal, TypeVar, cast, get_args

from models.runtime import storage_layout
from models.runtime.transcript import Engine, ModelRef

if TYPE_CHECKING:
    from functions.distribution.channels import Channel
    from functions.inference.channel_following import ChannelFollowingTranscriber
    from models.runtime.backend import InferenceBackend, OnnxRuntimeBackend
    from models.runtime.fallback import CircuitBreaker
    from models.runtime.transcriber import Transcriber

Mode = Literal["onnxruntime", "triton-grpc", "triton-http", "sagemaker"]
DEFAULT_TRITON_MODEL: Final = "edgescribe-cloud"
MODEL_CHANNEL_VARIABLE: Final = "EDGESCRIBE_MODEL_CHANNEL"
MODEL_CHANNEL_TTL_VARIABLE: Final = "EDGESCRIBE_MODEL_CHANNEL_TTL_SECONDS"
#: How long a container trusts the channel pointer it read: a promote or rollback reaches every
#: container within this time, at one small GET per container per period.
DEFAULT_MODEL_CHANNEL_TTL_SECONDS: Final = 60.0


class InferenceConfigurationError(ValueError):
    """The environment asks for a backend it does not fully describe (names the variable)."""


@dataclass(frozen=True)
class InferenceSettings:
    mode: Mode = "onnxruntime"
    triton_url: str | None = None
    triton_model: str = DEFAULT_TRITON_MODEL
    triton_model_version: int | None = None
    sagemaker_endpoint: str | None = None
    timeout_seconds: float = 10.0
    breaker_failures: int = 3
    breaker_reset_seconds: float = 30.0
    local_model_dir: Path | None = None
    local_engine: Engine = "onnxruntime-cloud"
    intra_op_threads: int = 1
    #: The channel the in-process model follows; ``None``: the baked-in model, always.
    model_channel: Channel | None = None
    model_channel_ttl_seconds: float = DEFAULT_MODEL_CHANNEL_TTL_SECONDS
    #: Where the channel and its models are (set only when ``model_channel`` is).
    models_bucket: str | None = None

    @classmethod
    def from_environment(cls, env: Mapping[str, str] | None = None) -> InferenceSettings:
        env = os.environ if env is None else env
        mode = env.get("EDGESCRIBE_INFERENCE", "onnxruntime")
        if mode not in get_args(Mode):
            raise InferenceConfigurationError(
                f"EDGESCRIBE_INFERENCE={mode!r}; expected one of {', '.join(get_args(Mode))}"
            )
        version = env.get("TRITON_MODEL_VERSION")
        channel = _model_channel(env)
        settings = cls(
            mode=mode,  # type: ignore[arg-type]  # checked against Mode above
            triton_url=env.get("TRITON_URL") or None,
            triton_model=env.get("TRITON_MODEL", DEFAULT_TRITON_MODEL),
            triton_model_version=_number(env, "TRITON_MODEL_VERSION", int) if version else None,
            sagemaker_endpoint=env.get("SAGEMAKER_ENDPOINT") or None,
            timeout_seconds=_number(env, "EDGESCRIBE_TRITON_TIMEOUT_SECONDS", float, 10.0),
            breaker_failures=_number(env, "EDGESCRIBE_BREAKER_FAILURES", int, 3),
            breaker_reset_seconds=_number(env, "EDGESCRIBE_BREAKER_RESET_SECONDS", float, 30.0),
            local_model_dir=Path(env["EDGESCRIBE_MODEL_DIR"])
            if env.get("EDGESCRIBE_MODEL_DIR")
            else None,
            intra_op_threads=_number(env, "EDGESCRIBE_INTRA_OP_THREADS", int, 1),
            model_channel=channel,
            model_channel_ttl_seconds=_seconds(
                env, MODEL_CHANNEL_TTL_VARIABLE, DEFAULT_MODEL_CHANNEL_TTL_SECONDS
            ),
            models_bucket=_models_bucket(env) if channel else None,
        )
        settings.check()
        return settings

    def check(self) -> None:
        if self.mode in ("triton-grpc", "triton-http") and not self.triton_url:
            raise InferenceConfigurationError(f"EDGESCRIBE_INFERENCE={self.mode} needs TRITON_URL")
        if self.mode == "sagemaker" and not self.sagemaker_endpoint:
            raise InferenceConfigurationError(
                "EDGESCRIBE_INFERENCE=sagemaker needs SAGEMAKER_ENDPOINT"
            )
        if self.mode != "onnxruntime" and self.triton_model_version is None:
            raise InferenceConfigurationError(
                f"EDGESCRIBE_INFERENCE={self.mode} needs TRITON_MODEL_VERSION "
                "(the version infra deployed)"
            )


_Number = TypeVar("_Number", int, float)


def _number(
    env: Mapping[str, str], name: str, kind: type[_Number], default: _Number | None = None
) -> _Number:
    raw = env.get(name)
    if not raw:
        if default is None:
            raise InferenceConfigurationError(f"{name} is required")
        return default
    try:
        value = kind(raw)
    except ValueError as exc:
        raise InferenceConfigurationError(f"{name}={raw!r} is not a {kind.__name__}") from exc
    if value <= 0:
        raise InferenceConfigurationError(f"{name}={raw!r} must be positive")
    return value


def _model_channel(env: Mapping[str, str]) -> Channel | None:
    raw = env.get(MODEL_CHANNEL_VARIABLE, "").strip()
    if not raw:
        return None
    if raw not in storage_layout.CHANNELS:
        raise InferenceConfigurationError(
            f"{MODEL_CHANNEL_VARIABLE}={raw!r}; expected one of {', '.join(storage_layout.CHANNELS)}"
        )
    return cast("Channel", raw)


def _seconds(env: Mapping[str, str], name: str, default: float) -> float:
    """A duration that may be zero (a demo that wants every promote seen at once)."""
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError as exc:
        raise InferenceConfigurationError(f"{name}={raw!r} is not a number of seconds") from exc
    if not math.isfinite(value) or value < 0:
        raise InferenceConfigurationError(f"{name}={raw!r} must be zero or more seconds")
    return value


def _models_bucket(env: Mapping[str, str]) -> str:
    from functions.common.environment import resource_name

    return env.get("MODELS_BUCKET") or resource_name("MODELS_BUCKET")


def local_backend(settings: InferenceSettings) -> OnnxRuntimeBackend:
    """In-process onnxruntime over the local model (verified: size + sha256)."""
    from models.runtime.artifacts import released_model_dir
    from models.runtime.backend import OnnxRuntimeBackend
    from models.runtime.session import AcousticModel

    model = AcousticModel.load(
        settings.local_model_dir or released_model_dir(), intra_op_threads=settings.intra_op_threads
    )
    return OnnxRuntimeBackend(model, engine=settings.local_engine)


def remote_backend(settings: InferenceSettings) -> InferenceBackend:
    """The Triton primary the settings describe (no network traffic until the first request)."""
    if settings.triton_model_version is None:
        raise InferenceConfigurationError("TRITON_MODEL_VERSION is required for a Triton backend")
    model = ModelRef(name=settings.triton_model, version=settings.triton_model_version)
    if settings.mode == "triton-grpc":
        from functions.inference.triton_grpc import TritonGrpcBackend

        return TritonGrpcBackend(
            str(settings.triton_url), model, timeout_seconds=settings.timeout_seconds
        )
    if settings.mode == "triton-http":
        from functions.inference.triton_http import TritonHttpBackend

        return TritonHttpBackend(
            str(settings.triton_url), model, timeout_seconds=settings.timeout_seconds
        )
    if settings.mode == "sagemaker":
        from functions.inference.sagemaker_triton import SageMakerTritonBackend

        return SageMakerTritonBackend(
            str(settings.sagemaker_endpoint), model, timeout_seconds=settings.timeout_seconds
        )
    raise InferenceConfigurationError(f"mode {settings.mode!r} has no remote backend")


def build_backend(
    settings: InferenceSettings,
    local: OnnxRuntimeBackend | None = None,
    *,
    remote: InferenceBackend | None = None,
    breaker: CircuitBreaker | None = None,
) -> InferenceBackend:
    """The backend for ``settings``: local only, or remote first with the local one behind it.

    ``remote`` and ``breaker`` let a channel-following transcriber keep one Triton client and one
    breaker across model swaps (Triton's health does not change because the fallback did).
    """
    from models.runtime.fallback import FallbackBackend

    local = local or local_backend(settings)
    if settings.mode == "onnxruntime":
        return local
    return FallbackBackend(
        remote or remote_backend(settings),
        local,
        timeout_seconds=settings.timeout_seconds,
        breaker=breaker or circuit_breaker(settings),
    )


def circuit_breaker(settings: InferenceSettings) -> CircuitBreaker:
    from models.runtime.fallback import CircuitBreaker

    return CircuitBreaker(
        failure_threshold=settings.breaker_failures, reset_timeout=settings.breaker_reset_seconds
    )


def channel_following_transcriber(
    settings: InferenceSettings,
    *,
    work_dir: Path | None = None,
    monotonic: Callable[[], float] = time.monotonic,
) -> ChannelFollowingTranscriber:
    """The transcriber for ``settings`` whose in-process model follows ``settings.model_channel``.

    Loads the baked-in model (no network); the channel is first read by the first request.
    Downloaded models go under ``work_dir`` (default: the system's temporary folder, ``/tmp`` on
    Lambda); ``monotonic`` is the clock of the channel TTL.
    """
    from functions.common import aws_clients
    from functions.inference.channel_following import ChannelFollowingTranscriber
    from models.runtime.backend import OnnxRuntimeBackend
    from models.runtime.session import AcousticModel
    from models.runtime.transcriber import Transcriber

    if settings.model_channel is None or settings.models_bucket is None:
        raise InferenceConfigurationError(
            f"{MODEL_CHANNEL_VARIABLE} is not set: there is no channel to follow"
        )
    remote = remote_backend(settings) if settings.mode != "onnxruntime" else None
    breaker = circuit_breaker(settings) if remote is not None else None

    def build(model: AcousticModel) -> Transcriber:
        local = OnnxRuntimeBackend(model, engine=settings.local_engine)
        backend = build_backend(settings, local, remote=remote, breaker=breaker)
        return Transcriber(backend, model.manifest)

    return ChannelFollowingTranscriber(
        local_backend(settings).acoustic_model,
        build=build,
        s3=aws_clients.s3_client(),
        models_bucket=settings.models_bucket,
        channel=settings.model_channel,
        ttl_seconds=settings.model_channel_ttl_seconds,
        intra_op_threads=settings.intra_op_threads,
        work_dir=work_dir,
        monotonic=monotonic,
    )


_lock = threading.Lock()
_transcribers: dict[InferenceSettings, Transcriber] = {}


_follower: tuple[tuple[InferenceSettings, str | None], ChannelFollowingTranscriber] | None = None


def transcriber_from_environment(env: Mapping[str, str] | None = None) -> Transcriber:
    """The process-wide transcriber for this environment's settings (built once, then reused)."""
    settings = InferenceSettings.from_environment(env)
    if settings.model_channel is not None:
        return _channel_follower(settings)
    with _lock:
        transcriber = _transcribers.get(settings)
        if transcriber is None:
            from models.runtime.transcriber import Transcriber

            local = local_backend(settings)
            # CTC decoding uses the local model's manifest (vocabulary, frame shift); the cloud
            # and edge models are released from one training run and share both.
            transcriber = Transcriber(build_backend(settings, local), local.acoustic_model.manifest)
            _transcribers[settings] = transcriber
        return transcriber


def _channel_follower(settings: InferenceSettings) -> ChannelFollowingTranscriber:
    """One channel-following transcriber at a time: another configuration (another stack in the
    local tests) replaces it, and the models it downloaded are deleted."""
    from functions.common import aws_clients

    global _follower
    key = (settings, aws_clients.endpoint_url())
    with _lock:
        if _follower is not None and _follower[0] == key:
            return _follower[1]
        if _follower is not None:
            _follower[1].close()
        follower = channel_following_transcriber(settings)
        _follower = (key, follower)
        return follower
