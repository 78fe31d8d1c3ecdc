"""The in-image check (``verify_image.py``) and the CLI and Dockerfiles around it."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from infra.bundle import image_check
from infra.bundle.__main__ import main
from infra.catalog import BANNED_DISTRIBUTION_PREFIXES, BANNED_DISTRIBUTIONS, IMAGES
from tests.infra.bundle.conftest import REPOSITORY


def _install_fake(site: Path, name: str, version: str) -> None:
    info = site / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n", encoding="utf-8"
    )


def test_finds_torch_installed_in_the_image(tmp_path: Path) -> None:
    _install_fake(tmp_path, "numpy", "1.26.4")
    _install_fake(tmp_path, "torch", "2.13.0")
    _install_fake(tmp_path, "nvidia-cudnn-cu12", "9.1.0.70")
    found = image_check.banned_installed(
        BANNED_DISTRIBUTIONS, BANNED_DISTRIBUTION_PREFIXES, [str(tmp_path)]
    )
    assert found == ["nvidia-cudnn-cu12==9.1.0.70", "torch==2.13.0"]


def test_finds_what_the_lock_did_not_name(tmp_path: Path) -> None:
    _install_fake(tmp_path, "numpy", "1.26.4")
    _install_fake(tmp_path, "requests", "2.34.2")
    _install_fake(tmp_path, "scipy", "1.16.0")
    surprises = image_check.unlocked_installed(["numpy==1.26.4", "scipy==1.17.1"], str(tmp_path))
    assert surprises == ["requests==2.34.2", "scipy==1.16.0"]


def test_finds_handlers_that_do_not_import_or_are_not_callable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    package = tmp_path / "es_probe"
    package.mkdir()
    (package / "__init__.py").write_text("", encoding="utf-8")
    (package / "good.py").write_text(
        "def handler(event, context):\n    return 1\n", encoding="utf-8"
    )
    (package / "flat.py").write_text("handler = 42\n", encoding="utf-8")
    (package / "broken.py").write_text("import es_probe_missing_dependency\n", encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    problems = image_check.broken_handlers(
        ["es_probe.good.handler", "es_probe.flat.handler", "es_probe.broken.handler"]
    )
    assert len(problems) == 2
    assert problems[0].startswith("es_probe.flat.handler: es_probe.flat has no callable")
    assert "ModuleNotFoundError" in problems[1]


def test_verify_image_script_fails_the_build_on_a_problem(tmp_path: Path) -> None:
    task_root = tmp_path / "task"
    (task_root / "fn").mkdir(parents=True)
    (task_root / "fn" / "__init__.py").write_text("", encoding="utf-8")
    (task_root / "fn" / "app.py").write_text("def handler(e, c):\n    return 0\n", encoding="utf-8")
    _install_fake(task_root, "pydantic", "2.14.4")
    info = {
        "image": "control",
        "handlers": ["fn.app.handler"],
        "requirements": ["pydantic==2.14.4"],
        "banned_distributions": ["es-probe-banned"],
        "banned_distribution_prefixes": [],
        "banned_imports": ["es_probe_banned_module"],
    }
    info_path = tmp_path / "build-info.json"
    info_path.write_text(json.dumps(info), encoding="utf-8")
    script = Path(image_check.__file__)
    ok = subprocess.run(
        [sys.executable, str(script), str(info_path), str(task_root)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert ok.returncode == 0, ok.stderr
    _install_fake(task_root, "es-probe-banned", "1.0")
    refused = subprocess.run(
        [sys.executable, str(script), str(info_path), str(task_root)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert refused.returncode == 1
    assert "banned distribution installed: es-probe-banned==1.0" in refused.stderr
    assert "not in requirements.lock: es-probe-banned==1.0" in refused.stderr


def test_verify_image_uses_only_the_standard_library() -> None:
    """It runs in the bare Lambda base image before anything of ours is importable."""
    source = Path(image_check.__file__).read_text(encoding="utf-8")
    imported = set(re.findall(r"^(?:from|import) ([a-z_]+)", source, flags=re.MULTILINE))
    assert imported <= set(sys.stdlib_module_names) | {"__future__"}


@pytest.mark.parametrize("image", sorted(IMAGES))
def test_dockerfile_installs_only_the_lock_and_verifies_the_image(image: str) -> None:
    dockerfile = (REPOSITORY / "infra" / "images" / image / "Dockerfile").read_text(
        encoding="utf-8"
    )
    instructions = [
        line for line in dockerfile.splitlines() if line.strip() and not line.startswith("#")
    ]
    assert instructions[0] == "FROM public.ecr.aws/lambda/python:3.11"
    assert "--no-deps" in dockerfile
    assert "--only-binary=:all:" in dockerfile
    assert "requirements.lock" in dockerfile
    assert "verify_image.py /opt/edgescribe/build-info.json" in dockerfile
    assert "torch" not in "\n".join(instructions).lower()
    assert re.search(r"^CMD \[\"functions\.[a-z_.]+\.handler\"\]$", dockerfile, re.MULTILINE)


def test_cli_builds_contexts_and_reports_refusals(
    mini_repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "images"
    assert main(["build", "--root", str(mini_repo), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "transcriber:" in printed
    assert "control:" in printed
    assert "no torch" in printed
    assert (out / "transcriber" / "Dockerfile").is_file()
    assert (out / "control" / "requirements.lock").is_file()

    (mini_repo / "functions/batch_transcription.py").write_text(
        textwrap.dedent(
            """
            import torch

            def handler(event, context):
                return torch.zeros(1)
            """
        ),
        encoding="utf-8",
    )
    assert main(["check", "--root", str(mini_repo)]) == 2
    error = capsys.readouterr().err
    assert error.startswith("infra.bundle: error: ")
    assert "functions/batch_transcription.py:2 imports torch" in error


def _pypi_reachable() -> bool:
    import socket

    try:
        with socket.create_connection(("pypi.org", 443), timeout=3):
            return True
    except OSError:
        return False


@pytest.mark.slow
@pytest.mark.skipif(not _pypi_reachable(), reason="needs PyPI to download the Lambda wheels")
def test_control_image_imports_its_handlers_with_only_its_lock_installed(tmp_path: Path) -> None:
    """The Docker-free image test: Lambda's wheels for the lock, the staged source, ``python -S``."""
    from infra.bundle.__main__ import smoke_test
    from infra.bundle.context import stage_image

    staged = stage_image(
        IMAGES["control"],
        source_root=REPOSITORY,
        out_dir=tmp_path,
        constraints=REPOSITORY / "constraints.txt",
        dockerfiles=REPOSITORY / "infra" / "images",
        require_all=False,
    )
    assert smoke_test(staged).startswith("verify_image: control image OK")
