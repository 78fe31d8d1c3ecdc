"""Fixtures for the local-stack tests: a freshly provisioned stack on the session's moto server."""

from __future__ import annotations

import pytest

from edgescribe.local.moto_server import MotoServer
from edgescribe.samples import list_samples
from tests.functions.batch_stack import BatchStack, provision_batch_stack


@pytest.fixture
def provisioned(aws_env: MotoServer, monkeypatch: pytest.MonkeyPatch) -> BatchStack:
    return provision_batch_stack(aws_env, monkeypatch)


@pytest.fixture(scope="session")
def speech_wav() -> bytes:
    """A committed speech clip (WAV, 16 kHz)."""
    return next(s for s in list_samples() if s.path.suffix == ".wav").path.read_bytes()
