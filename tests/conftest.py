"""Fixtures shared by every test package: a real moto server, fake AWS credentials."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from edgescribe.local.moto_server import MotoServer, run_moto_server


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoServer]:
    """One moto server (HTTP, free port) for the whole test session."""
    with run_moto_server() as server:
        yield server


@pytest.fixture
def aws_env(moto_server: MotoServer, monkeypatch: pytest.MonkeyPatch) -> MotoServer:
    """Point boto3 at the moto server for one test (and never at real AWS)."""
    for name, value in moto_server.environment().items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    return moto_server


@pytest.fixture(autouse=True)
def _no_real_aws(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test may reach real AWS: fake credentials unless a test points at moto."""
    if "AWS_ENDPOINT_URL" not in os.environ:
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
