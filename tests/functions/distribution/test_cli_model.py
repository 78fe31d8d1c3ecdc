"""``edgescribe model ...`` in-process against the moto server."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edgescribe.cli import main
from tests.functions.batch_stack import BatchStack
from tests.functions.distribution.artifacts import make_model_dir


def test_keygen_publish_promote_rollback_status(
    batch_stack: BatchStack, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key = tmp_path / "signing.pem"
    assert main(["model", "keygen", "--out", str(key), "--public", str(tmp_path / "pub.pem")]) == 0
    for version in (1, 2):
        folder = make_model_dir(tmp_path, version)
        assert main(["model", "publish", str(folder), "--signing-key", str(key)]) == 0
    assert (
        main(["model", "promote", "stable", "1", "--signing-key", str(key), "--actor", "ana"]) == 0
    )
    assert (
        main(["model", "promote", "canary", "2", "--percent", "10", "--signing-key", str(key)]) == 0
    )
    capsys.readouterr()
    assert main(["model", "status"]) == 0
    text = capsys.readouterr().out
    assert "stable  edgescribe-edge v1 at 100 %" in text
    assert "canary  edgescribe-edge v2 at 10 %" in text
    assert (
        main(["model", "rollback", "canary", "--to-version", "1", "--signing-key", str(key)]) == 0
    )
    assert "canary: back to edgescribe-edge v1 (withdrawn: 2)" in capsys.readouterr().out
    assert main(["model", "status", "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    canary = next(c for c in status["channels"] if c["channel"] == "canary")
    assert canary["state"]["rollback"]["revoked_versions"] == [2]


def test_promoting_an_unpublished_version_is_a_user_error_not_a_traceback(
    batch_stack: BatchStack, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["model", "promote", "stable", "42"]) == 2
    error = capsys.readouterr().err
    assert "version 42 of 'edgescribe-edge' is not published" in error
    assert "Traceback" not in error


def test_publish_without_a_key_says_how_to_provide_one(
    batch_stack: BatchStack,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("EDGESCRIBE_SIGNING_KEY_FILE", raising=False)
    monkeypatch.delenv("EDGESCRIBE_SIGNING_KEY_SECRET_ID", raising=False)
    assert main(["model", "publish", str(make_model_dir(tmp_path, 1))]) == 2
    assert "--signing-key" in capsys.readouterr().err
