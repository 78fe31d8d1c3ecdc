"""Write a Triton model repository directory for one or more specs.

Layout (Triton's, one directory per model)::

    <root>/<name>/config.pbtxt
    <root>/<name>/<version>/model.onnx      # the released file, byte for byte
    <root>/<name>/<version>/model.py        # local flavour only (python backend)
    <root>/<name>/warmup/audio_lengths_<n>  # warm-up inputs referenced by config.pbtxt

The ONNX file is hard-linked when the filesystem allows (a repository is regenerated often and the
benchmark writes two models from one file) and copied otherwise. A model directory that already
exists is replaced as a whole, so a stale ``model.py`` or an old version never lingers.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from models.triton import python_model
from models.triton.render import (
    ONNX_FILENAME,
    Flavour,
    render_config,
    warmup_lengths_filename,
    warmup_shapes,
)
from models.triton.spec import TritonModelSpec


def _link_or_copy(source: Path, destination: Path) -> None:
    try:
        os.link(source, destination)
    except OSError:
        shutil.copy2(source, destination)


def write_model(spec: TritonModelSpec, root: Path, flavour: Flavour) -> Path:
    """Write one model directory under ``root``; return it."""
    model_dir = root / spec.name
    if model_dir.exists():
        shutil.rmtree(model_dir)
    version_dir = model_dir / str(spec.version)
    version_dir.mkdir(parents=True)
    (model_dir / "config.pbtxt").write_text(render_config(spec, flavour))
    _link_or_copy(spec.onnx_path, version_dir / ONNX_FILENAME)
    if flavour == "local":
        shutil.copyfile(Path(python_model.__file__), version_dir / "model.py")
    shapes = warmup_shapes(spec, flavour)
    if shapes:
        warmup_dir = model_dir / "warmup"
        warmup_dir.mkdir()
        for _, samples in shapes:
            data = np.array([samples], dtype="<i8").tobytes()
            (warmup_dir / warmup_lengths_filename(samples)).write_bytes(data)
    return model_dir


def write_repository(specs: Iterable[TritonModelSpec], root: Path, flavour: Flavour) -> Path:
    """Write every spec's model directory into ``root`` (created if missing); return ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    names = set()
    for spec in specs:
        if spec.name in names:
            raise ValueError(f"two specs share the Triton model name {spec.name!r}")
        names.add(spec.name)
        write_model(spec, root, flavour)
    return root
