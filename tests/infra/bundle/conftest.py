"""A small source tree shaped like the repository, to plant problems in without touching the real one."""

from __future__ import annotations

import shutil
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

REPOSITORY = Path(__file__).resolve().parents[3]

#: path -> source of a tree whose four handlers exist and import only what their images install.
MINI_TREE: dict[str, str] = {
    "edgescribe/__init__.py": "",
    "edgescribe/settings.py": "SAMPLE_RATE = 16_000\n",
    "functions/__init__.py": "",
    "functions/common/__init__.py": "",
    "functions/common/util.py": """
        from __future__ import annotations

        from edgescribe.settings import SAMPLE_RATE


        def rate() -> int:
            import numpy

            return int(numpy.int64(SAMPLE_RATE))
    """,
    "functions/batch_transcription.py": """
        from functions.common import util


        def handler(event, context):
            return util.rate()
    """,
    "functions/api/__init__.py": "",
    "functions/api/app.py": """
        import boto3

        from . import routes


        def handler(event, context):
            return routes.ROUTES
    """,
    "functions/api/routes.py": "ROUTES = ('GET /v1/x',)\n",
    "functions/api/openapi.json": '{"paths": {}}\n',
    "functions/retraining_trigger.py": "def handler(event, context):\n    return None\n",
    "functions/model_distribution.py": """
        from pydantic import BaseModel


        class Event(BaseModel):
            action: str = "refresh"


        def _handle(event, context):
            return Event.model_validate(event).action


        handler = _handle
    """,
    "models/__init__.py": "",
    "models/runtime/__init__.py": "",
    "models/training/__init__.py": "",
    "models/training/train.py": "import torch\n",
    "models/released/edgescribe-edge/manifest.json": '{"name": "edgescribe-edge"}\n',
}


@pytest.fixture
def mini_repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    for relative, source in MINI_TREE.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(source).lstrip("\n"), encoding="utf-8")
    (root / "models/released/edgescribe-edge/model.onnx").write_bytes(b"\x08\x07onnx-bytes")
    shutil.copyfile(REPOSITORY / "constraints.txt", root / "constraints.txt")
    shutil.copytree(REPOSITORY / "infra" / "images", root / "infra" / "images")
    return root


@pytest.fixture
def plant(mini_repo: Path) -> Callable[[str, str], Path]:
    """Write (or overwrite) one file of the mini tree."""

    def write(relative: str, source: str) -> Path:
        path = mini_repo / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(source).lstrip("\n"), encoding="utf-8")
        return path

    return write
