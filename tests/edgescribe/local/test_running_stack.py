"""The whole local batch path in one process: moto, provisioning, poller thread, real handler."""

from __future__ import annotations

import os
import socket
import time
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from edgescribe.local.running_stack import run_local_stack
from functions.common import aws_clients
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
