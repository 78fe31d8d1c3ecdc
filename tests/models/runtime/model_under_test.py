"""Which model folder the runtime and CLI tests run against, and how they skip without one."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from models.runtime.artifacts import released_model_dir

#: Set to test against another model folder (e.g. a candidate before it is released).
MODEL_DIR_VARIABLE = "EDGESCRIBE_TEST_MODEL_DIR"


def model_dir_or_skip() -> Path:
    """The released edge model folder; the calling test skips, saying why, if it is missing."""
    override = os.environ.get(MODEL_DIR_VARIABLE)
    directory = Path(override) if override else released_model_dir()
    if not (directory / "manifest.json").is_file():
        pytest.skip(
            f"no released model at {directory} (export one with models/export, "
            f"or set {MODEL_DIR_VARIABLE})"
        )
    return directory
