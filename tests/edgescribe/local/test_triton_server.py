"""The local Triton launcher: the bundled binary starts, serves, reports, and stops cleanly.

A tiny python-backend model (doubles its input, and reports which interpreter runs it) keeps this
test about the launcher, not the ASR model; the model-serving tests live in
tests/functions/inference.
"""

from __future__ import annotations

import sys
import textwrap
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient

from edgescribe.local.triton_server import (
    TritonInstallation,
    TritonServer,
    TritonServerError,
    child_process_ids,
    process_alive,
    run_triton_server,
    serve_released_model,
    server_environment,
    start_triton_server,
)

pytestmark = [pytest.mark.triton, pytest.mark.slow]

MODEL_PY = textwrap.dedent(
    """
    import sys

    import numpy as np
    import onnxruntime  # noqa: F401 - proves the venv's packages import inside the stub
    import triton_python_backend_utils as pb_utils


    class TritonPythonModel:
        def execute(self, requests):
            responses = []
            for request in requests:
                x = pb_utils.get_input_tensor_by_name(request, "x").as_numpy()
                prefix = np.frombuffer(sys.prefix.encode(), dtype=np.uint8).copy()
                responses.append(pb_utils.InferenceResponse([
                    pb_utils.Tensor("y", x * 2),
                    pb_utils.Tensor("prefix", prefix.reshape(1, -1)),
                ]))
            return responses
    """
)

CONFIG = textwrap.dedent(
    """
    backend: "python"
    max_batch_size: 4
    input [ { name: "x" data_type: TYPE_FP32 dims: [ -1 ] } ]
    output [
      { name: "y" data_type: TYPE_FP32 dims: [ -1 ] },
      { name: "prefix" data_type: TYPE_UINT8 dims: [ -1 ] }
    ]
    """
)


def doubler_repository(root: Path, config: str = CONFIG) -> Path:
    version = root / "doubler" / "1"
    version.mkdir(parents=True)
    (root / "doubler" / "config.pbtxt").write_text(config)
    (version / "model.py").write_text(MODEL_PY)
    return root


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TritonServer]:
    with run_triton_server(doubler_repository(tmp_path_factory.mktemp("repo"))) as running:
        yield running


def test_server_answers_over_http_and_grpc_on_its_own_ports(server: TritonServer) -> None:
    ports = {server.endpoints.http_port, server.endpoints.grpc_port, server.endpoints.metrics_port}
    assert len(ports) == 3
    x = np.arange(3, dtype=np.float32).reshape(1, 3)

    http = httpclient.InferenceServerClient(server.endpoints.http_url)
    request = httpclient.InferInput("x", [1, 3], "FP32")
    request.set_data_from_numpy(x)
    assert http.infer("doubler", [request]).as_numpy("y").tolist() == [[0.0, 2.0, 4.0]]
    http.close()

    grpc = grpcclient.InferenceServerClient(server.endpoints.grpc_url)
    grpc_request = grpcclient.InferInput("x", [1, 3], "FP32")
    grpc_request.set_data_from_numpy(x)
    assert grpc.infer("doubler", [grpc_request]).as_numpy("y").tolist() == [[0.0, 2.0, 4.0]]
    grpc.close()


def test_python_stub_runs_this_virtualenv(server: TritonServer) -> None:
    """The stub must import our numpy/onnxruntime: its interpreter prefix is our venv."""
    client = httpclient.InferenceServerClient(server.endpoints.http_url)
    request = httpclient.InferInput("x", [1, 1], "FP32")
    request.set_data_from_numpy(np.zeros((1, 1), dtype=np.float32))
    prefix = client.infer("doubler", [request]).as_numpy("prefix").tobytes().decode()
    client.close()
    assert Path(prefix).resolve() == Path(sys.prefix).resolve()


def test_metrics_endpoint_reports_inference_counts(server: TritonServer) -> None:
    with urllib.request.urlopen(server.endpoints.metrics_url, timeout=10) as response:  # noqa: S310
        text = response.read().decode()
    assert 'nv_inference_count{model="doubler",version="1"}' in text


def test_environment_puts_interpreter_libdir_and_bundled_libs_on_the_loader_path() -> None:
    import sysconfig

    installation = TritonInstallation.discover()
    env = server_environment(installation)

    paths = env["LD_LIBRARY_PATH"].split(":")
    assert paths[0] == sysconfig.get_config_var("LIBDIR")
    assert str(installation.libs) in paths
    assert env["PATH"].split(":")[0] == str(Path(sys.executable).parent)


def test_stop_ends_server_and_stubs_and_removes_scratch(tmp_path: Path) -> None:
    server = start_triton_server(doubler_repository(tmp_path / "repo"))
    stubs = child_process_ids(server.process.pid)
    workdir = server.log_path.parent
    assert stubs, "the python backend should run one stub per model instance"

    server.stop()

    assert not server.running
    assert not workdir.exists()
    assert not [pid for pid in stubs if process_alive(pid)]
    assert not list(Path("/dev/shm").glob(f"{server.shm_prefix}*"))


def test_kill_leaves_no_orphaned_stubs_or_shared_memory(tmp_path: Path) -> None:
    server = start_triton_server(doubler_repository(tmp_path / "repo"))
    stubs = child_process_ids(server.process.pid)

    server.kill()

    assert not server.running
    assert stubs
    assert not [pid for pid in stubs if process_alive(pid)]
    assert not list(Path("/dev/shm").glob(f"{server.shm_prefix}*"))
    server.stop()


def test_broken_model_config_fails_start_with_the_servers_reason(tmp_path: Path) -> None:
    repository = doubler_repository(tmp_path / "repo", config="backend: python\nthis is not pbtxt")

    with pytest.raises(TritonServerError) as caught:
        start_triton_server(repository, startup_timeout=60)

    message = str(caught.value)
    assert "exited with status 1 before it was ready" in message
    assert "failed to read text proto" in message
    assert "doubler/config.pbtxt" in message


def test_missing_repository_is_refused_before_starting(tmp_path: Path) -> None:
    with pytest.raises(TritonServerError, match="is not a directory"):
        start_triton_server(tmp_path / "nowhere")


def test_serve_released_model_serves_the_cloud_model_and_cleans_up() -> None:
    from functions.inference.triton_grpc import TritonGrpcBackend
    from models.runtime.artifacts import CLOUD_MODEL_NAME, released_model_dir

    model_dir = released_model_dir(CLOUD_MODEL_NAME)
    if not (model_dir / "manifest.json").is_file():
        pytest.skip("no released cloud model")
    with serve_released_model(model_dir) as (running, spec):
        backend = TritonGrpcBackend.connect(running.endpoints.grpc_url, spec.name)
        (log_probs,) = backend.infer([np.zeros(16_000, dtype=np.float32)])
        backend.close()
        repository = running.model_repository

    assert log_probs.shape[1] == spec.vocabulary_size
    assert not running.running
    assert not repository.exists()
