"""The cloud on one machine: moto server + resources + event-source poller, optionally the HTTP API
and a Triton server.

``run_local_stack()`` is what ``edgescribe local up``, ``edgescribe demo`` and the end-to-end tests
start. While it runs, this process's environment points boto3 at the moto server and names the
stack's resources exactly as infra names them for a Lambda (``ResourceNames.as_environment``), so
the handlers the poller and the API server call read the same variables they read in AWS.

What each option adds, and the variables it sets (the ones infra sets in the cloud):

* ``api=True`` — the API function behind a real HTTP server (``edgescribe.local.api_server``), a
  throwaway token authority (``EDGESCRIBE_AUTH_MODE=verify``, ``EDGESCRIBE_JWT_*``) and a throwaway
  Ed25519 model-signing key (``EDGESCRIBE_SIGNING_KEY_FILE``), both in a private temporary folder:
  the distribution service publishes with it and devices pin its public half.
* ``triton=True`` — ``tritonserver`` serving the released cloud model (python backend), and the
  functions routed through it as in the cloud's GPU tier (``EDGESCRIBE_INFERENCE=triton-grpc``,
  ``TRITON_URL``, ``TRITON_MODEL``, ``TRITON_MODEL_VERSION``), with in-process onnxruntime behind
  it as the fallback.
* ``models_dir`` — a folder laid out like ``models/released`` (``edgescribe-edge/``,
  ``edgescribe-cloud/``) to run instead of the released models (``EDGESCRIBE_MODEL_DIR``).

Everything is undone when the context exits — also on Ctrl-C: the API server and the poller
stop, Triton is shut down, the moto server is terminated, the temporary folder (keys) is removed
and the environment is restored.
"""

from __future__ import annotations

import base64
import logging
import os
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from edgescribe.local.moto_server import MotoServer, run_moto_server
from edgescribe.local.poller import SqsEventSourcePoller
from edgescribe.local.stack import ProvisionedStack, provision_stack
from edgescribe.settings import ResourceNames
from models.runtime.artifacts import CLOUD_MODEL_NAME, DEFAULT_MODEL_NAME, RELEASED_ROOT

if TYPE_CHECKING:
    from edgescribe.local.api_server import LocalApi, LocalTokenAuthority
    from edgescribe.local.triton_server import TritonServer
    from functions.distribution.signing import ManifestSigner
    from models.triton.spec import TritonModelSpec

BATCH_FUNCTION_NAME = "edgescribe-batch-transcription"
SIGNING_KEY_FILE = "model-signing-key.pem"


@dataclass(frozen=True)
class LocalCredentials:
    """The stack's throwaway secrets: who may call the API, and the key that signs models."""

    tokens: LocalTokenAuthority
    signer: ManifestSigner
    signing_key_path: Path

    @property
    def trusted_key(self) -> str:
        """The signing key as an edge agent pins it (``trusted_keys``: base64 of the raw key)."""
        from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

        raw = self.signer.public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)
        return base64.b64encode(raw).decode("ascii")


@dataclass(frozen=True)
class LocalTriton:
    """The running Triton server and what it serves."""

    server: TritonServer
    spec: TritonModelSpec


@dataclass(frozen=True)
class LocalStack:
    server: MotoServer
    resources: ProvisionedStack
    poller: SqsEventSourcePoller | None
    #: The released-model folders this stack runs (edge: devices, Lambda; cloud: Triton).
    edge_model_dir: Path
    cloud_model_dir: Path
    api: LocalApi | None = None
    credentials: LocalCredentials | None = None
    triton: LocalTriton | None = None

    @property
    def names(self) -> ResourceNames:
        return self.resources.names

    @property
    def endpoint_url(self) -> str:
        return self.server.endpoint_url


class LocalStackError(RuntimeError):
    """A part of the local stack could not start (the message names which and why)."""


def model_dirs(models_dir: Path | None) -> tuple[Path, Path]:
    """``(edge, cloud)`` model folders under ``models_dir`` (default: the released models)."""
    root = models_dir if models_dir is not None else RELEASED_ROOT
    edge, cloud = root / DEFAULT_MODEL_NAME, root / CLOUD_MODEL_NAME
    if models_dir is not None:
        missing = [str(path) for path in (edge, cloud) if not (path / "manifest.json").is_file()]
        if missing:
            raise LocalStackError(
                f"{models_dir} must hold {DEFAULT_MODEL_NAME}/ and {CLOUD_MODEL_NAME}/ model "
                f"folders (manifest.json + model.onnx); missing: {', '.join(missing)}"
            )
    return edge.resolve(), cloud.resolve()


@contextmanager
def run_local_stack(
    *,
    port: int | None = None,
    stack: str = "local",
    poll: bool = True,
    quiet: bool = False,
    batch_size: int = 10,
    wait_seconds: int = 1,
    visibility_timeout: int = 30,
    api: bool = False,
    api_port: int | None = None,
    triton: bool = False,
    models_dir: Path | None = None,
) -> Iterator[LocalStack]:
    """Start moto on ``port`` (free by default), provision ``stack``, poll its queue; with
    ``api``/``triton`` also serve the API on ``api_port`` (free by default) and the cloud model.

    ``quiet`` silences the handlers' JSON logs and EMF metrics (the demo prints its own output);
    ``visibility_timeout`` is how long a failed message stays hidden before its retry.
    """
    edge_model_dir, cloud_model_dir = model_dirs(models_dir)
    names = ResourceNames(stack=stack)
    with ExitStack() as cleanup:
        server = cleanup.enter_context(run_moto_server(port))
        overrides = {**server.environment(), **names.as_environment()}
        # the functions serve what the stable channel names, as in the cloud (baked-in model
        # until something is promoted): a full rollout reaches the batch function and the API too
        overrides["EDGESCRIBE_MODEL_CHANNEL"] = "stable"
        if quiet:
            overrides["POWERTOOLS_METRICS_DISABLED"] = "true"
        if models_dir is not None:
            overrides["EDGESCRIBE_MODEL_DIR"] = str(edge_model_dir)
        local_triton = cleanup.enter_context(_triton(cloud_model_dir)) if triton else None
        if local_triton is not None:
            overrides.update(triton_environment(local_triton))
        credentials = None
        if api:
            folder = Path(cleanup.enter_context(tempfile.TemporaryDirectory(prefix="edgescribe-")))
            credentials = _credentials(folder)
            overrides.update(credentials.tokens.environment())
            overrides["EDGESCRIBE_SIGNING_KEY_FILE"] = str(credentials.signing_key_path)
        cleanup.enter_context(temporary_environment(overrides))
        resources = provision_stack(server.endpoint_url, names)
        if quiet:
            _silence_handler_logs(cleanup, poll=poll, api=api)
        poller = None
        if poll:
            from functions.batch_transcription import handler

            poller = SqsEventSourcePoller(
                queue_url=resources.queue_url,
                queue_arn=resources.queue_arn,
                handler=handler,
                endpoint_url=server.endpoint_url,
                region=resources.region,
                batch_size=batch_size,
                wait_seconds=wait_seconds,
                visibility_timeout=visibility_timeout,
                function_name=BATCH_FUNCTION_NAME,
            )
            poller.start()
            cleanup.callback(poller.stop)
        local_api = None
        if api:
            from edgescribe.local.api_server import serve_api

            local_api = cleanup.enter_context(serve_api(api_port))
        yield LocalStack(
            server=server,
            resources=resources,
            poller=poller,
            edge_model_dir=edge_model_dir,
            cloud_model_dir=cloud_model_dir,
            api=local_api,
            credentials=credentials,
            triton=local_triton,
        )


#: Seconds a function waits for the local Triton before falling back. Longer than the cloud's
#: default (10 s): here Triton runs on the CPU it shares with everything else on the machine, so a
#: burst of concurrent requests can be slow without Triton being unhealthy.
LOCAL_TRITON_TIMEOUT_SECONDS = 30


def triton_environment(triton: LocalTriton) -> dict[str, str]:
    """What a function needs to use this Triton (``functions.inference.selection``)."""
    return {
        "EDGESCRIBE_INFERENCE": "triton-grpc",
        "TRITON_URL": triton.server.endpoints.grpc_url,
        "TRITON_MODEL": triton.spec.name,
        "TRITON_MODEL_VERSION": str(triton.spec.version),
        "EDGESCRIBE_TRITON_TIMEOUT_SECONDS": str(LOCAL_TRITON_TIMEOUT_SECONDS),
    }


@contextmanager
def _triton(cloud_model_dir: Path) -> Iterator[LocalTriton]:
    from edgescribe.local.triton_server import TritonServerError, serve_released_model
    from models.triton.spec import ModelContractError

    with ExitStack() as running:
        try:
            server, spec = running.enter_context(serve_released_model(cloud_model_dir))
        except (TritonServerError, ModelContractError) as exc:
            raise LocalStackError(f"Triton could not serve {cloud_model_dir}: {exc}") from exc
        yield LocalTriton(server=server, spec=spec)


def _credentials(folder: Path) -> LocalCredentials:
    from edgescribe.local.api_server import LocalTokenAuthority
    from functions.distribution.signing import generate_signing_key

    key_path = folder / SIGNING_KEY_FILE
    return LocalCredentials(
        tokens=LocalTokenAuthority(folder),
        signer=generate_signing_key(key_path),
        signing_key_path=key_path,
    )


def _silence_handler_logs(cleanup: ExitStack, *, poll: bool, api: bool) -> None:
    """Only errors from the handlers' loggers (their INFO lines would drown the demo's output)."""
    loggers = []
    if poll:
        from functions.batch_transcription import SERVICE

        loggers.append(SERVICE)
    if api:
        loggers.append("functions.api")
    loggers.append("models.runtime.fallback")  # "primary failed" warnings: the demo says so itself
    loggers.append("functions.inference.channel_following")  # "no stable channel yet" warnings
    # powertools child loggers (``<service>.<module>``, e.g. the batch function's shadow runner)
    # carry their own level, so the parent's does not reach them
    from functions.learning import shadow  # noqa: F401  (creates its child logger)

    known = list(logging.root.manager.loggerDict)
    loggers += [name for name in known for parent in list(loggers) if name.startswith(f"{parent}.")]
    for name in loggers:
        logger = logging.getLogger(name)
        cleanup.callback(logger.setLevel, logger.level)
        logger.setLevel(logging.ERROR)


@contextmanager
def temporary_environment(values: Mapping[str, str]) -> Iterator[None]:
    """Set ``values`` in ``os.environ`` for the block; restore (or remove) them afterwards."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
