"""Fixtures for the model-repository tests: the released cloud model and its spec."""

from __future__ import annotations

from pathlib import Path

import pytest

from models.runtime.artifacts import CLOUD_MODEL_NAME, released_model_dir
from models.triton.spec import TritonModelSpec, spec_for_release


@pytest.fixture(scope="session")
def cloud_model_dir() -> Path:
    directory = released_model_dir(CLOUD_MODEL_NAME)
    if not (directory / "manifest.json").is_file():
        pytest.skip(f"no released cloud model at {directory} (export one with models/export)")
    return directory


@pytest.fixture(scope="session")
def cloud_spec(cloud_model_dir: Path) -> TritonModelSpec:
    return spec_for_release(cloud_model_dir)
