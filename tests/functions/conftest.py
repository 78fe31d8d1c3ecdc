"""Fixtures for the cloud-function tests: a fresh stack per test on the session's moto server."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgescribe.local.moto_server import MotoServer
from edgescribe.samples import Sample, list_samples
from tests.functions.batch_stack import BatchStack, provision_batch_stack

#: Small broken clips committed for the audio-decoding tests (shared, read-only here).
TEST_DATA = Path(__file__).resolve().parent.parent / "data"


@pytest.fixture
def batch_stack(aws_env: MotoServer, monkeypatch: pytest.MonkeyPatch) -> BatchStack:
    return provision_batch_stack(aws_env, monkeypatch)


@pytest.fixture(scope="session")
def speech_sample() -> Sample:
    """A committed speech clip with its reference text (WAV, 16 kHz)."""
    return next(sample for sample in list_samples() if sample.path.suffix == ".wav")


@pytest.fixture(scope="session")
def speech_wav(speech_sample: Sample) -> bytes:
    return speech_sample.path.read_bytes()
