"""Configuration errors are named; the environment overrides the file; no keys, no updates."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edge.config import encode_public_key, load_config
from edge.errors import ConfigError

KEY = encode_public_key(Ed25519PrivateKey.generate().public_key())


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "agent.toml"
    path.write_text(text)
    return path


def test_file_then_environment_overrides(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        f'device_id = "kiosk-1"\napi_url = "https://api.example"\nstate_dir = "{tmp_path}"\n'
        f'trusted_keys = ["{KEY}"]\npoll_interval_seconds = 30\n',
    )
    config = load_config(path, env={"EDGESCRIBE_AGENT_POLL_INTERVAL_SECONDS": "5"})
    assert config.device_id == "kiosk-1"
    assert config.poll_interval_seconds == 5.0
    assert config.state_dir == tmp_path.resolve()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('device_id = "x"', "missing setting"),
        ("this is = = not toml", "not valid TOML"),
        ('colour = "blue"', "unknown setting"),
    ],
)
def test_bad_config_file_is_named(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(write(tmp_path, text), env={})


def base_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {
        "EDGESCRIBE_AGENT_DEVICE_ID": "kiosk-1",
        "EDGESCRIBE_AGENT_API_URL": "https://api.example",
        "EDGESCRIBE_AGENT_STATE_DIR": str(tmp_path),
        "EDGESCRIBE_AGENT_TRUSTED_KEYS": KEY,
        **extra,
    }


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"EDGESCRIBE_AGENT_TRUSTED_KEYS": ""}, "trusts no key"),
        ({"EDGESCRIBE_AGENT_TRUSTED_KEYS": "not-base64!"}, "not a base64 raw Ed25519 key"),
        ({"EDGESCRIBE_AGENT_SIGNATURE_THRESHOLD": "2"}, "signature_threshold"),
        ({"EDGESCRIBE_AGENT_DEVICE_ID": "../etc"}, "invalid device id"),
        ({"EDGESCRIBE_AGENT_API_URL": "ftp://x"}, "http"),
        ({"EDGESCRIBE_AGENT_POLL_INTERVAL_SECONDS": "soon"}, "bad setting"),
    ],
)
def test_bad_settings_are_refused(tmp_path: Path, extra: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(None, env=base_env(tmp_path, **extra))


def test_token_file_is_read_on_each_use(tmp_path: Path) -> None:
    token = tmp_path / "device.jwt"
    token.write_text("one\n")
    config = load_config(None, env=base_env(tmp_path, EDGESCRIBE_AGENT_TOKEN_FILE=str(token)))
    assert config.bearer_token() == "one"
    token.write_text("two")  # rotated by the provisioning service
    assert config.bearer_token() == "two"


def test_cli_reports_config_error_without_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from edge.cli import main

    for name in ("DEVICE_ID", "API_URL", "STATE_DIR", "TRUSTED_KEYS", "CONFIG"):
        monkeypatch.delenv(f"EDGESCRIBE_AGENT_{name}", raising=False)
    assert main(["status"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("edgescribe-agent: error: missing setting")
    assert "Traceback" not in err


def test_console_script_is_installed() -> None:
    import subprocess
    import sys
    from pathlib import Path

    script = Path(sys.executable).with_name("edgescribe-agent")
    assert script.exists(), "run `pip install -e .` to register the edgescribe-agent script"
    shown = subprocess.run([str(script), "--help"], capture_output=True, text=True, check=True)
    for command in ("run", "sync", "transcribe", "status"):
        assert command in shown.stdout
