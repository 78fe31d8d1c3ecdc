"""Distribution tests run against a fresh stack on the real moto server, with a real signing key."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from functions.distribution.service import DistributionService
from functions.distribution.signing import ManifestSigner, generate_signing_key
from tests.functions.batch_stack import BatchStack


class Clock:
    """Time that moves only when a test says so (expiry tests never sleep)."""

    def __init__(self) -> None:
        self.now = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def signer(tmp_path: Path) -> ManifestSigner:
    return generate_signing_key(tmp_path / "keys" / "signing.pem")


@pytest.fixture
def service(batch_stack: BatchStack, signer: ManifestSigner, clock: Clock) -> DistributionService:
    return DistributionService(
        batch_stack.s3, batch_stack.names.models_bucket, signer=signer, clock=clock
    )
