"""The local stack in one process: moto, provisioning, poller thread, API server, Triton."""

from __future__ import annotations

import os
import shutil
import socket
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from botocore.exceptions import ClientError

from edgescribe.demo.http_calls import call
from edgescribe.local.running_stack import LocalStackError, run_local_stack
from functions.common import aws_clients
from models.runtime.artifacts import released_model_dir
from models.runtime.transcript import Transcript

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


def test_upload_is_transcribed_by_the_polling_function(speech_wav: bytes) -> None:
    endpoint_before = os.environ.get("AWS_ENDPOINT_URL")
    with run_local_stack(stack="e2e", quiet=True, visibility_timeout=1) as stack:
        assert os.environ["AWS_ENDPOINT_URL"] == stack.endpoint_url
        s3 = aws_clients.s3_client()
        s3.put_object(
            Bucket=stack.names.recordings_bucket, Key="recordings/acme/e2e.wav", Body=speech_wav
        )
        transcript = Transcript.model_validate_json(
            _wait_for(s3, stack.names.transcripts_bucket, "transcripts/acme/e2e.json")
        )

    assert transcript.id == "e2e"
    assert os.environ.get("AWS_ENDPOINT_URL") == endpoint_before  # environment restored
    assert stack.poller is not None
    assert not stack.poller.running
    assert not _listening(stack.server.port), "moto server still running after the stack exited"


def _listening(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _wait_for(s3: S3Client, bucket: str, key: str, timeout: float = 60.0) -> bytes:
    deadline = time.monotonic() + timeout
    while True:
        try:
            return s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        except ClientError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def test_api_verifies_the_stacks_tokens_and_stops_with_the_stack(speech_wav: bytes) -> None:
    with run_local_stack(stack="e2e-api", poll=False, quiet=True, api=True) as stack:
        assert stack.api is not None
        assert stack.credentials is not None
        token = stack.credentials.tokens.issue(subject="app", tenant="acme", role="app")
        url = f"{stack.api.url}/v1/transcriptions"
        answered = call("POST", url, token=token, body=speech_wav, content_type="audio/wav")
        anonymous = call("POST", url, body=speech_wav, content_type="audio/wav")
        key_file = stack.credentials.signing_key_path
        assert os.environ["EDGESCRIBE_SIGNING_KEY_FILE"] == str(key_file)
        assert key_file.is_file()

    assert answered.status == 200, answered.detail
    transcript = Transcript.model_validate_json(answered.body)
    assert transcript.engine == "onnxruntime-cloud"
    assert anonymous.status == 401
    assert not _listening(stack.api.port), "API server still running after the stack exited"
    assert not key_file.exists(), "the throwaway signing key outlived the stack"
    assert os.environ.get("EDGESCRIBE_SIGNING_KEY_FILE") != str(key_file)  # restored


@pytest.mark.slow
@pytest.mark.triton
def test_functions_transcribe_through_triton_when_the_stack_serves_it(speech_wav: bytes) -> None:
    with run_local_stack(
        stack="e2e-triton", quiet=True, visibility_timeout=1, triton=True
    ) as stack:
        assert stack.triton is not None
        s3 = aws_clients.s3_client()
        s3.put_object(
            Bucket=stack.names.recordings_bucket,
            Key="recordings/acme/via-triton.wav",
            Body=speech_wav,
        )
        transcript = Transcript.model_validate_json(
            _wait_for(s3, stack.names.transcripts_bucket, "transcripts/acme/via-triton.json")
        )
        triton_process = stack.triton.server.process

    assert transcript.engine == "triton"
    assert transcript.model.name == stack.triton.spec.name
    assert triton_process.poll() is not None, "tritonserver outlived the stack"
    assert os.environ.get("EDGESCRIBE_INFERENCE") != "triton-grpc"


def test_a_models_folder_without_both_models_is_refused_before_anything_starts(
    tmp_path: Path,
) -> None:
    (tmp_path / "edgescribe-edge").mkdir()
    with (
        pytest.raises(LocalStackError, match="edgescribe-cloud"),
        run_local_stack(models_dir=tmp_path),
    ):
        pytest.fail("the stack started without the models it was told to run")


def test_a_cloud_model_triton_cannot_serve_stops_the_stack_with_the_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("edgescribe-edge", "edgescribe-cloud"):
        shutil.copytree(released_model_dir(name), tmp_path / name)
    (tmp_path / "edgescribe-cloud" / "model.onnx").write_bytes(b"not an onnx graph")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)

    with (
        pytest.raises(LocalStackError, match="Triton could not serve"),
        run_local_stack(poll=False, triton=True, models_dir=tmp_path),
    ):
        pytest.fail("the stack came up without a servable cloud model")
    assert "AWS_ENDPOINT_URL" not in os.environ  # moto's environment was never left behind
