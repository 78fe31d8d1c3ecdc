"""A real Triton Inference Server on one machine: the ``tritonserver`` from ``nvidia-pytriton``.

Tests and ``make demo`` serve the local rendering of the model repository (python backend wrapping
onnxruntime, see ``models.triton``) with the same binary, protocol and dynamic batcher the cloud
uses. This module only knows how to *run* the binary; what it serves is the caller's business.

Platform quirks this module handles (each cost a debugging session; keep them):

* The wheel ships ``tritonserver`` and the python backend, but the backend's *stub* executable is
  kept per Python version under ``python_backend_stubs/<major.minor>/``. Triton looks for
  ``triton_python_backend_stub`` inside ``<backend-directory>/python/``, so we assemble a private
  backend directory (pytriton does the same copy in ``Triton._prepare_triton_inference_server``).
* The stub links ``libpython3.X.so.1.0``; without the interpreter's ``LIBDIR`` on
  ``LD_LIBRARY_PATH`` the loader may pick the distribution's libpython instead of ours and the
  stub dies at start-up. The copied stub also loses its ``$ORIGIN`` RPATH to
  ``nvidia_pytriton.libs``, so that folder goes on ``LD_LIBRARY_PATH`` too.
* The stub's embedded interpreter finds its ``sys.prefix`` through ``python3`` on ``PATH``;
  putting this interpreter's ``bin/`` first makes ``model.py`` import onnxruntime and numpy from
  our virtualenv.
* The python backend talks to its stubs through ``/dev/shm`` regions named by a prefix; each server
  gets a unique prefix so parallel test sessions never share regions.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from edgescribe.local.ports import free_port

if TYPE_CHECKING:
    from models.triton.spec import TritonModelSpec

_SHM_BYTES = 16 * 1024 * 1024


class TritonServerError(RuntimeError):
    """Triton could not be found, started, or did not become ready (the log tail says why)."""


@dataclass(frozen=True)
class TritonInstallation:
    """Where the bundled Triton's pieces live inside the installed ``nvidia-pytriton`` wheel."""

    binary: Path
    python_backend: Path
    stub: Path
    libs: Path

    @classmethod
    def discover(cls) -> TritonInstallation:
        """Locate the binary, python backend, stub for this interpreter, and bundled shared libs."""
        try:
            import pytriton
        except ImportError as exc:
            raise TritonServerError(
                "nvidia-pytriton is not installed; install the 'triton' extra "
                "(pip install -e '.[triton]')"
            ) from exc
        package_dir = Path(pytriton.__file__).resolve().parent
        dist = package_dir / "tritonserver"
        version = f"{sys.version_info.major}.{sys.version_info.minor}"
        installation = cls(
            binary=dist / "bin" / "tritonserver",
            python_backend=dist / "backends" / "python",
            stub=dist / "python_backend_stubs" / version / "triton_python_backend_stub",
            libs=package_dir.parent / "nvidia_pytriton.libs",
        )
        for path in (installation.binary, installation.python_backend, installation.stub):
            if not path.exists():
                raise TritonServerError(f"nvidia-pytriton install is incomplete: {path} is missing")
        return installation


def server_environment(installation: TritonInstallation) -> dict[str, str]:
    """The environment ``tritonserver`` and its python stubs need (see the module docstring)."""
    env = dict(os.environ)
    libdir = str(sysconfig.get_config_var("LIBDIR") or "")
    library_path = [p for p in (libdir, str(installation.libs)) if p]
    if env.get("LD_LIBRARY_PATH"):
        library_path.append(env["LD_LIBRARY_PATH"])
    env["LD_LIBRARY_PATH"] = ":".join(library_path)
    env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '')}"
    # model.py files import numpy/onnxruntime; cap BLAS threads the same way ORT threads are capped.
    env.setdefault("OMP_NUM_THREADS", "1")
    return env


def assemble_backend_directory(installation: TritonInstallation, destination: Path) -> Path:
    """Write ``<destination>/python/``: the backend library, its utils and this Python's stub."""
    python_dir = destination / "python"
    python_dir.mkdir(parents=True, exist_ok=True)
    for item in installation.python_backend.iterdir():
        if item.is_file():
            shutil.copy2(item, python_dir / item.name)
    shutil.copy2(installation.stub, python_dir / "triton_python_backend_stub")
    return destination


def child_process_ids(pid: int) -> list[int]:
    """Direct children of ``pid`` (Linux ``/proc``; empty elsewhere)."""
    children: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        with contextlib.suppress(OSError):
            children.extend(int(child) for child in task.read_text().split())
    return children


def process_alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie (a killed orphan waits for init to reap it)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return False
    return fields[0] != "Z"


def wait_until_gone(pids: Sequence[int], timeout: float) -> None:
    """Wait for SIGKILLed processes to actually end (signals are delivered asynchronously)."""
    deadline = time.monotonic() + timeout
    while any(process_alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.05)


@dataclass(frozen=True)
class TritonEndpoints:
    """Where a running server listens (all on 127.0.0.1)."""

    http_port: int
    grpc_port: int
    metrics_port: int
    sagemaker_port: int | None = None

    @property
    def http_url(self) -> str:
        """``host:port`` as tritonclient.http expects it (no scheme)."""
        return f"127.0.0.1:{self.http_port}"

    @property
    def grpc_url(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.metrics_port}/metrics"

    @property
    def sagemaker_url(self) -> str | None:
        """SageMaker's container contract (``/ping``, ``/invocations``), when enabled."""
        return None if self.sagemaker_port is None else f"http://127.0.0.1:{self.sagemaker_port}"


@dataclass
class TritonServer:
    """One ``tritonserver`` child process serving ``model_repository``.

    Use :func:`run_triton_server` (a context manager) unless a test needs to kill the server
    mid-flight, which is what :meth:`kill` is for.
    """

    model_repository: Path
    endpoints: TritonEndpoints
    log_path: Path
    process: subprocess.Popen[bytes]
    shm_prefix: str
    _workdir: Path = field(repr=False)
    _log_handle: IO[bytes] = field(repr=False)

    @property
    def running(self) -> bool:
        return self.process.poll() is None

    def log_tail(self, limit: int = 4000) -> str:
        """Error lines and the last lines of the server log, minus its wide settings tables."""
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        text = [line for line in lines if not line.startswith(("|", "+"))]
        errors = [line for line in text if line.startswith("E")]
        tail = [line for line in text[-8:] if line not in errors]
        return "\n".join(errors + tail)[-limit:]

    def is_ready(self) -> bool:
        """True when the server answers ``/v2/health/ready`` with 200 (every model loaded)."""
        url = f"http://{self.endpoints.http_url}/v2/health/ready"
        try:
            with urllib.request.urlopen(url, timeout=1.0) as response:
                return int(response.status) == 200
        except (urllib.error.URLError, OSError):
            return False

    def wait_until_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.running:
                raise TritonServerError(
                    f"tritonserver exited with status {self.process.returncode} before it was "
                    f"ready; log tail:\n{self.log_tail()}"
                )
            if self.is_ready():
                return
            time.sleep(0.2)
        raise TritonServerError(
            f"tritonserver not ready after {timeout:.0f}s; log tail:\n{self.log_tail()}"
        )

    def kill(self) -> None:
        """SIGKILL: what a crashed or OOM-killed server looks like to clients (fault injection).

        A SIGKILLed server cannot stop its python-backend stubs (they would linger, orphaned,
        holding a model in memory), so they are killed by process id right after it, and the
        shared-memory regions it cannot unlink are removed.
        """
        if self.running:
            stubs = child_process_ids(self.process.pid)
            self.process.kill()
            self.process.wait()
            for pid in stubs:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            wait_until_gone(stubs, timeout=10.0)
        self._remove_shared_memory()

    def _remove_shared_memory(self) -> None:
        shm = Path("/dev/shm")  # noqa: S108 - POSIX shm mount; only our unique prefix is removed
        if shm.is_dir():
            for region in shm.glob(f"{self.shm_prefix}*"):
                region.unlink(missing_ok=True)

    def stop(self, timeout: float = 30.0) -> None:
        """SIGINT (Triton's graceful shutdown: unload models, stop stubs), then SIGKILL if stuck."""
        if self.running:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        self._remove_shared_memory()
        self._log_handle.close()
        shutil.rmtree(self._workdir, ignore_errors=True)


def start_triton_server(
    model_repository: Path,
    *,
    startup_timeout: float = 120.0,
    log_verbose: int = 0,
    sagemaker_model: str | None = None,
    extra_args: Sequence[str] = (),
) -> TritonServer:
    """Start ``tritonserver`` on free ports and return once every model is ready.

    ``sagemaker_model`` also opens Triton's SageMaker frontend (``/ping``, ``/invocations``, the
    contract of SageMaker's Triton container) serving that model, as
    ``SAGEMAKER_TRITON_DEFAULT_MODEL_NAME`` does in the cloud. Note that this frontend binds
    0.0.0.0 (tritonserver 2.51 has no address flag for it).

    Raises ``TritonServerError`` with the server log's tail when it cannot start; the process and
    its scratch directory are cleaned up in that case.
    """
    if not (model_repository / "").is_dir():
        raise TritonServerError(f"model repository {model_repository} is not a directory")
    installation = TritonInstallation.discover()
    workdir = Path(tempfile.mkdtemp(prefix="edgescribe-triton-"))
    backends = assemble_backend_directory(installation, workdir / "backends")
    endpoints = TritonEndpoints(
        http_port=free_port(),
        grpc_port=free_port(),
        metrics_port=free_port(),
        sagemaker_port=free_port() if sagemaker_model else None,
    )
    shm_prefix = f"edgescribe_{uuid.uuid4().hex[:12]}_"
    command = [
        str(installation.binary),
        f"--model-repository={model_repository.resolve()}",
        f"--backend-directory={backends}",
        f"--backend-config=python,shm-region-prefix-name={shm_prefix}",
        # Batches of long audio are tens of MB; growing the stub's region 1 MB at a time (the
        # default) costs a remap per MB on the first large batch.
        f"--backend-config=python,shm-default-byte-size={_SHM_BYTES}",
        f"--backend-config=python,shm-growth-byte-size={_SHM_BYTES}",
        "--http-address=127.0.0.1",
        f"--http-port={endpoints.http_port}",
        "--grpc-address=127.0.0.1",
        f"--grpc-port={endpoints.grpc_port}",
        "--metrics-address=127.0.0.1",
        f"--metrics-port={endpoints.metrics_port}",
        "--allow-metrics=true",
        "--allow-gpu-metrics=false",
        "--strict-readiness=true",
        "--exit-timeout-secs=10",
        f"--log-verbose={log_verbose}",
    ]
    if endpoints.sagemaker_port is not None:
        command += ["--allow-sagemaker=true", f"--sagemaker-port={endpoints.sagemaker_port}"]
    command += list(extra_args)
    log_path = workdir / "tritonserver.log"
    environment = server_environment(installation)
    if sagemaker_model:
        environment["SAGEMAKER_TRITON_DEFAULT_MODEL_NAME"] = sagemaker_model
    log_handle = log_path.open("wb")
    process = subprocess.Popen(
        command,
        stdout=log_handle,
        stderr=subprocess.STDOUT,
        env=environment,
        cwd=workdir,
    )
    server = TritonServer(
        model_repository=model_repository,
        endpoints=endpoints,
        log_path=log_path,
        process=process,
        shm_prefix=shm_prefix,
        _workdir=workdir,
        _log_handle=log_handle,
    )
    try:
        server.wait_until_ready(startup_timeout)
    except BaseException:
        server.stop(timeout=10)
        raise
    return server


@contextmanager
def run_triton_server(
    model_repository: Path,
    *,
    startup_timeout: float = 120.0,
    log_verbose: int = 0,
    sagemaker_model: str | None = None,
) -> Iterator[TritonServer]:
    """Serve ``model_repository`` for the ``with`` block; the server is always stopped."""
    server = start_triton_server(
        model_repository,
        startup_timeout=startup_timeout,
        log_verbose=log_verbose,
        sagemaker_model=sagemaker_model,
    )
    try:
        yield server
    finally:
        server.stop()


@contextmanager
def serve_released_model(
    model_dir: Path, *, sagemaker: bool = False, **spec_overrides: Any
) -> Iterator[tuple[TritonServer, TritonModelSpec]]:
    """Serve one released model folder locally: generate the *local* rendering of its Triton
    repository in a scratch folder, start the server, yield ``(server, spec)``; clean up after.

    What ``make demo`` and a developer need (``TritonGrpcBackend.connect(server.endpoints.grpc_url,
    spec.name)`` then talks to it); ``spec_overrides`` go to ``spec_for_release`` (e.g.
    ``cpu_instances=2``).
    """
    from models.triton.repository import write_repository
    from models.triton.spec import spec_for_release

    spec = spec_for_release(model_dir, **spec_overrides)
    with tempfile.TemporaryDirectory(prefix="edgescribe-triton-repo-") as scratch:
        repository = write_repository([spec], Path(scratch), "local")
        with run_triton_server(
            repository, sagemaker_model=spec.name if sagemaker else None
        ) as server:
            yield server, spec
