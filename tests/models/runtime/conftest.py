"""Fixtures for runtime tests: the real released model (or a clear skip)."""

from __future__ import annotations

from pathlib import Path

import pytest

from models.runtime.transcriber import Transcriber
from tests.models.runtime.model_under_test import model_dir_or_skip


@pytest.fixture(scope="session")
def model_dir() -> Path:
    return model_dir_or_skip()


@pytest.fixture(scope="session")
def transcriber(model_dir: Path) -> Transcriber:
    """One session for the whole test run, as in production (loading is the expensive part)."""
    return Transcriber.from_model_dir(model_dir)
