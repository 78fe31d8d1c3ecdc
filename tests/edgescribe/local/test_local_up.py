"""``edgescribe local up`` as a user runs it: a foreground process that serves until Ctrl-C."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import boto3
import pytest
from botocore.exceptions import ClientError

from edgescribe.demo.http_calls import call
from edgescribe.local.moto_server import FAKE_CREDENTIALS
from edgescribe.local.ports import free_port
from edgescribe.settings import ResourceNames

#: The console script users run (``python -m edgescribe.cli`` would load the CLI twice, as
#: ``__main__`` and as ``edgescribe.cli``, and its ``UserError`` handling would not match).
EDGESCRIBE = [str(Path(sys.executable).parent / "edgescribe")]


@pytest.mark.slow
def test_local_up_transcribes_uploads_and_stops_cleanly_on_ctrl_c(speech_wav: bytes) -> None:
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "edgescribe.cli",
            "local",
            "up",
            "--port",
            str(port),
            "--stack",
            "up",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "POWERTOOLS_METRICS_DISABLED": "true"},
    )
    try:
        banner = _read_until(process, "Press Ctrl-C")
        endpoint = re.search(r"endpoint\s+(\S+)", banner)
        assert endpoint is not None, banner
        assert endpoint.group(1) == f"http://127.0.0.1:{port}"
        names = ResourceNames(stack="up")
        assert names.recordings_bucket in banner
        assert names.transcription_dlq in banner
        api = re.search(r"api\s+(http://127\.0\.0\.1:\d+)", banner)
        token = re.search(r"export EDGESCRIBE_APP_TOKEN=(\S+)", banner)
        assert api is not None, banner
        assert token is not None, banner
        answered = call(
            "POST",
            f"{api.group(1)}/v1/transcriptions",
            token=token.group(1),
            body=speech_wav,
            content_type="audio/wav",
        )
        assert answered.status == 200, answered.detail

        s3 = boto3.session.Session(
            aws_access_key_id=FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            region_name=FAKE_CREDENTIALS["AWS_DEFAULT_REGION"],
        ).client("s3", endpoint_url=endpoint.group(1))
        s3.put_object(Bucket=names.recordings_bucket, Key="recordings/me/clip.wav", Body=speech_wav)
        deadline = time.monotonic() + 60
        while True:
            try:
                s3.head_object(Bucket=names.transcripts_bucket, Key="transcripts/me/clip.json")
                break
            except ClientError:
                assert time.monotonic() < deadline, "no transcript within 60 s"
                time.sleep(0.2)

        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()

    assert process.returncode == 0, output
    assert "stopped" in output
    assert not _listening(port), "moto server outlived local up"
    assert not _listening(int(api.group(1).rsplit(":", 1)[1])), "API server outlived local up"


@pytest.mark.slow
def test_local_up_shuts_everything_down_on_sigterm_not_only_on_ctrl_c() -> None:
    """``kill``, ``docker stop`` and systemd send SIGTERM; moto must not be left running."""
    port = free_port()
    process = subprocess.Popen(
        [*EDGESCRIBE, "local", "up", "--port", str(port), "--no-poller", "--no-api"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        banner = _read_until(process, "Press Ctrl-C")
        assert "api          off" in banner
        assert _listening(port)
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()

    assert process.returncode == 0, output
    assert "stopped" in output
    assert not _listening(port), "moto server outlived local up"


def _listening(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_local_up_refuses_a_port_in_use() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = subprocess.run(
            [*EDGESCRIBE, "local", "up", "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert result.returncode == 2
    assert f"port {port} is in use" in result.stderr


def _read_until(process: subprocess.Popen[str], marker: str, timeout: float = 90.0) -> str:
    assert process.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            raise AssertionError(f"local up exited early:\n{''.join(lines)}")
        lines.append(line)
        if marker in line:
            return "".join(lines)
    raise AssertionError(f"no {marker!r} within {timeout:.0f} s:\n{''.join(lines)}")


def test_local_up_refuses_a_stack_name_that_cannot_name_a_bucket() -> None:
    result = subprocess.run(
        [*EDGESCRIBE, "local", "up", "--stack", "My_Stack"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "--stack 'My_Stack'" in result.stderr
