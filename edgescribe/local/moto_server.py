"""A real moto server on 127.0.0.1: S3, SQS and DynamoDB over HTTP, as boto3 sees AWS.

Tests and the demo talk to it through ``AWS_ENDPOINT_URL`` so the code under test makes the same
HTTP calls it makes in the cloud (not in-process mocks). The server runs as a child process on a
free port and is always terminated when the context exits.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from edgescribe.local.ports import free_port, wait_for_port

#: Credentials moto accepts; never real ones.
FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@dataclass(frozen=True)
class MotoServer:
    endpoint_url: str
    port: int

    def environment(self) -> dict[str, str]:
        """Environment that points boto3 at this server."""
        return {**FAKE_CREDENTIALS, "AWS_ENDPOINT_URL": self.endpoint_url}


@contextmanager
def run_moto_server(port: int | None = None) -> Iterator[MotoServer]:
    """Start ``moto.server`` on ``port`` (a free one by default); stop it on exit."""
    port = port or free_port()
    env = {**os.environ, **FAKE_CREDENTIALS}
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    try:
        wait_for_port(port, timeout=60)
        yield MotoServer(endpoint_url=f"http://127.0.0.1:{port}", port=port)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
