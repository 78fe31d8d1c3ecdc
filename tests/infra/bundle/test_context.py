"""The image build step: what it stages, and every way it refuses a context (torch first)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from infra.bundle.closure import source_closure
from infra.bundle.context import BUILD_INFO, StagedImage, stage_image
from infra.bundle.errors import (
    BundleError,
    ForbiddenImportError,
    MissingDependencyError,
    MissingHandlerError,
    MissingModuleError,
)
from infra.bundle.imports import ImportSyntaxError
from infra.catalog import IMAGES, ImageName
from tests.infra.bundle.conftest import REPOSITORY

Plant = Callable[[str, str], Path]


def _stage(root: Path, out: Path, image: ImageName = "transcriber", **kwargs: bool) -> StagedImage:
    return stage_image(
        IMAGES[image],
        source_root=root,
        out_dir=out,
        constraints=root / "constraints.txt",
        dockerfiles=root / "infra" / "images",
        **kwargs,
    )


def test_stages_exactly_what_the_handlers_reach(mini_repo: Path, tmp_path: Path) -> None:
    staged = _stage(mini_repo, tmp_path / "out")
    assert staged.handlers == (
        "functions.batch_transcription.handler",
        "functions.api.app.handler",
    )
    files = set(staged.app_files)
    assert {
        "functions/__init__.py",
        "functions/batch_transcription.py",
        "functions/common/__init__.py",
        "functions/common/util.py",
        "functions/api/app.py",
        "functions/api/routes.py",
        "functions/api/openapi.json",  # package data of a reached package
        "edgescribe/__init__.py",
        "edgescribe/settings.py",
        "models/released/edgescribe-edge/model.onnx",
        "models/released/edgescribe-edge/manifest.json",
    } <= files
    # Training code imports torch but no handler reaches it: it never enters the image.
    assert not any(name.startswith("models/training") for name in files)
    # The control image's handlers are not in the transcriber image.
    assert "functions/model_distribution.py" not in files
    context = staged.directory
    assert {p.name for p in context.iterdir()} == {
        "Dockerfile",
        "requirements.lock",
        "app",
        "verify_image.py",
        BUILD_INFO,
    }


@pytest.mark.parametrize(
    "planted",
    [
        "import torch\n",
        "from torch import nn\n",
        "import torchaudio.functional as F\n",
        "def lazy():\n    import torch\n    return torch\n",
        "import importlib\nengine = importlib.import_module('torch')\n",
        "engine = __import__('torchvision')\n",
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import torch\n",
        "try:\n    import torch\nexcept ImportError:\n    torch = None\n",
    ],
)
def test_refuses_handler_code_that_imports_torch(
    mini_repo: Path, tmp_path: Path, plant: Plant, planted: str
) -> None:
    plant("functions/common/util.py", f"from edgescribe.settings import SAMPLE_RATE\n{planted}")
    with pytest.raises(ForbiddenImportError, match=r"functions/common/util\.py:\d+ imports torch"):
        _stage(mini_repo, tmp_path / "out")
    assert not (tmp_path / "out" / "transcriber").exists(), "nothing is staged for a refused image"


def test_refuses_torch_reached_through_a_relative_import(
    mini_repo: Path, tmp_path: Path, plant: Plant
) -> None:
    plant("functions/api/routes.py", "from .heavy import ROUTES\n")
    plant("functions/api/heavy.py", "import torch\nROUTES = ()\n")
    with pytest.raises(ForbiddenImportError, match=r"functions/api/heavy\.py:1 imports torch"):
        _stage(mini_repo, tmp_path / "out")


def test_refuses_torch_in_a_package_init_that_a_handler_imports_through(
    mini_repo: Path, tmp_path: Path, plant: Plant
) -> None:
    plant("functions/common/__init__.py", "import torch  # runs on `from functions.common ...`\n")
    with pytest.raises(ForbiddenImportError, match=r"functions/common/__init__\.py"):
        _stage(mini_repo, tmp_path / "out")


def test_refuses_an_import_the_image_does_not_install(
    mini_repo: Path, tmp_path: Path, plant: Plant
) -> None:
    plant("functions/common/util.py", "import requests\n")
    with pytest.raises(MissingDependencyError, match=r"util\.py:1 imports requests"):
        _stage(mini_repo, tmp_path / "out")


def test_allows_guarded_and_type_only_imports_the_image_lacks(
    mini_repo: Path, tmp_path: Path, plant: Plant
) -> None:
    plant(
        "functions/common/util.py",
        """
        from typing import TYPE_CHECKING

        if TYPE_CHECKING:
            from mypy_boto3_s3 import S3Client

        try:
            import orjson as fast_json
        except ImportError:
            fast_json = None
        """,
    )
    _stage(mini_repo, tmp_path / "out")


def test_control_image_refuses_code_that_needs_numpy(
    mini_repo: Path, tmp_path: Path, plant: Plant
) -> None:
    plant("functions/model_distribution.py", "import numpy\n\ndef handler(e, c):\n    return 1\n")
    with pytest.raises(MissingDependencyError, match="the control image"):
        _stage(mini_repo, tmp_path / "out", "control")


def test_refuses_a_missing_handler_module_unless_told_it_is_not_written_yet(
    mini_repo: Path, tmp_path: Path
) -> None:
    (mini_repo / "functions/retraining_trigger.py").unlink()
    with pytest.raises(MissingHandlerError, match=r"functions/retraining_trigger\.py"):
        _stage(mini_repo, tmp_path / "out", "control")
    staged = _stage(mini_repo, tmp_path / "out", "control", require_all=False)
    assert staged.missing_handlers == ("functions.retraining_trigger.handler",)
    assert staged.handlers == ("functions.model_distribution.handler",)


def test_refuses_a_handler_module_without_its_handler(
    mini_repo: Path, tmp_path: Path, plant: Plant
) -> None:
    plant("functions/retraining_trigger.py", "def handle(event, context):\n    return None\n")
    with pytest.raises(MissingHandlerError, match="defines no 'handler'"):
        _stage(mini_repo, tmp_path / "out", "control", require_all=False)


def test_refuses_an_import_of_a_first_party_module_that_does_not_exist(
    mini_repo: Path, tmp_path: Path, plant: Plant
) -> None:
    plant("functions/common/util.py", "from functions.common.vanished import thing\n")
    with pytest.raises(MissingModuleError, match=r"functions\.common\.vanished"):
        _stage(mini_repo, tmp_path / "out")


def test_refuses_source_that_does_not_parse(mini_repo: Path, tmp_path: Path, plant: Plant) -> None:
    plant("functions/common/util.py", "def broken(:\n")
    with pytest.raises(ImportSyntaxError, match="does not parse"):
        _stage(mini_repo, tmp_path / "out")


def test_refuses_a_transcriber_image_without_its_model(mini_repo: Path, tmp_path: Path) -> None:
    shutil.rmtree(mini_repo / "models/released")
    with pytest.raises(BundleError, match="models/released/edgescribe-edge"):
        _stage(mini_repo, tmp_path / "out")


def test_digest_is_stable_and_covers_every_staged_byte(
    mini_repo: Path, tmp_path: Path, plant: Plant
) -> None:
    first = _stage(mini_repo, tmp_path / "a")
    again = _stage(mini_repo, tmp_path / "b")
    assert first.digest == again.digest
    (mini_repo / "models/released/edgescribe-edge/model.onnx").write_bytes(b"\x08\x07other")
    changed = _stage(mini_repo, tmp_path / "c")
    assert changed.digest != first.digest
    info = json.loads((changed.directory / BUILD_INFO).read_text(encoding="utf-8"))
    assert info["digest"] == changed.digest
    assert info["handlers"] == list(changed.handlers)
    assert info["requirements"] == [r.line() for r in changed.requirements]
    assert "torch" in info["banned_distributions"]


def test_restaging_replaces_a_previous_context_but_never_a_foreign_directory(
    mini_repo: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    _stage(mini_repo, out)
    (out / "transcriber" / "app" / "stale.py").write_text("import torch\n", encoding="utf-8")
    staged = _stage(mini_repo, out)
    assert "stale.py" not in staged.app_files
    foreign = tmp_path / "elsewhere" / "transcriber"
    foreign.mkdir(parents=True)
    (foreign / "notes.txt").write_text("mine", encoding="utf-8")
    with pytest.raises(BundleError, match="not a staged image context"):
        _stage(mini_repo, tmp_path / "elsewhere")
    assert (foreign / "notes.txt").read_text(encoding="utf-8") == "mine"


def test_repository_images_build_without_torch(tmp_path: Path) -> None:
    """The real handlers, their real closure and the real lock (CI runs this on every change)."""
    for image in IMAGES:
        staged = _stage(REPOSITORY, tmp_path / "out", image, require_all=False)
        assert staged.handlers, f"no handler of the {image} image exists yet"
        assert not any(
            name.startswith(("models/training/", "models/export/", "tests/"))
            for name in staged.app_files
        )
        locked = {r.name for r in staged.requirements}
        assert not any(name.startswith("torch") or name.startswith("nvidia") for name in locked)
    transcriber = _stage(REPOSITORY, tmp_path / "t", "transcriber", require_all=False)
    assert {"functions.batch_transcription.handler", "functions.api.app.handler"} <= set(
        transcriber.handlers
    )


def test_repository_handlers_reach_no_training_code() -> None:
    closure = source_closure(
        REPOSITORY,
        ["functions.batch_transcription", "functions.api.app", "functions.model_distribution"],
    )
    reached = {p.relative_to(REPOSITORY).as_posix() for p in closure.files}
    assert "models/runtime/session.py" in reached
    assert not any(p.startswith(("models/training", "models/export")) for p in reached)
