"""Agent settings: a TOML file, overridden by ``EDGESCRIBE_AGENT_*`` environment variables.

The file is what fleet provisioning writes once; the environment is for containers and tests. Every
value has a safe default except the three that identify the device (``device_id``, ``api_url`` and
its token) and the pinned keys — a device that trusts no key must refuse every update, so an empty
key list is a configuration error, not a default.

Example ``/etc/edgescribe/agent.toml``::

    device_id = "kiosk-0042"
    api_url = "https://api.example.com"
    token_file = "/etc/edgescribe/device.jwt"
    state_dir = "/var/lib/edgescribe"
    trusted_keys = ["<base64 raw Ed25519 public key>"]
    signature_threshold = 1
"""

from __future__ import annotations

import base64
import binascii
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from edge.errors import ConfigError
from models.runtime.manifest import key_id
from models.runtime.storage_layout import InvalidKeyError, validate_id

#: The agent's own version, compared with a manifest's ``min_agent_version``.
AGENT_VERSION = "0.1.0"

ENV_PREFIX = "EDGESCRIBE_AGENT_"
ASSETS_DIR = Path(__file__).resolve().parent / "assets"
SMOKE_CLIP = ASSETS_DIR / "smoke_clip.wav"
SMOKE_CLIP_TEXT = ASSETS_DIR / "smoke_clip.txt"


@dataclass(frozen=True)
class AgentConfig:
    device_id: str
    api_url: str
    state_dir: Path
    trusted_keys: tuple[str, ...]  # base64 raw Ed25519 public keys (32 bytes each)
    token: str = ""
    token_file: Path | None = None
    model_name: str = "edgescribe-edge"
    signature_threshold: int = 1
    require_expiry: bool = True
    # --- sync ---
    poll_interval_seconds: float = 300.0
    backoff_base_seconds: float = 2.0
    backoff_cap_seconds: float = 900.0
    connect_timeout_seconds: float = 10.0
    read_timeout_seconds: float = 30.0
    max_model_bytes: int = 256 * 1024 * 1024  # hard cap, whatever a manifest claims
    min_download_bytes_per_second: float = 16 * 1024.0  # below this the retrieval is too slow
    download_grace_seconds: float = 30.0
    # --- smoke test and health ---
    smoke_clip: Path = SMOKE_CLIP
    smoke_timeout_seconds: float = 120.0
    smoke_max_cer: float | None = None  # None: any non-empty transcript passes
    # --- inference router ---
    prefer_cloud: bool = True
    cloud_timeout_seconds: float = 15.0
    breaker_failure_threshold: int = 3
    breaker_reset_seconds: float = 60.0
    intra_op_threads: int = 1
    # --- outbox ---
    outbox_max_items: int = 10_000
    outbox_max_bytes: int = 64 * 1024 * 1024
    outbox_batch: int = 50
    extra: dict[str, Any] = field(default_factory=dict)

    # -- derived paths --------------------------------------------------------------------------
    @property
    def slots_dir(self) -> Path:
        return self.state_dir / "slots"

    @property
    def downloads_dir(self) -> Path:
        return self.state_dir / "downloads"

    @property
    def state_file(self) -> Path:
        return self.state_dir / "state.json"

    @property
    def trust_file(self) -> Path:
        return self.state_dir / "trust.json"

    @property
    def outbox_file(self) -> Path:
        return self.state_dir / "outbox.sqlite"

    def bearer_token(self) -> str:
        """The device JWT: inline ``token`` or the contents of ``token_file`` (re-read each call,
        so a rotated token is picked up without a restart)."""
        if self.token:
            return self.token
        if self.token_file is not None:
            try:
                return self.token_file.read_text().strip()
            except OSError as exc:
                raise ConfigError(f"cannot read token_file {self.token_file}: {exc}") from exc
        return ""

    def pinned_keys(self) -> dict[str, Ed25519PublicKey]:
        return parse_public_keys(self.trusted_keys)


def parse_public_keys(encoded: tuple[str, ...] | list[str]) -> dict[str, Ed25519PublicKey]:
    """Base64 raw Ed25519 public keys → ``{key id: key}`` (key id as in ``models.runtime.manifest``)."""
    keys: dict[str, Ed25519PublicKey] = {}
    for text in encoded:
        try:
            raw = base64.b64decode(text, validate=True)
            public_key = Ed25519PublicKey.from_public_bytes(raw)
        except (binascii.Error, ValueError) as exc:
            raise ConfigError(
                f"trusted key {text[:16]!r}… is not a base64 raw Ed25519 key"
            ) from exc
        keys[key_id(public_key)] = public_key
    return keys


def encode_public_key(public_key: Ed25519PublicKey) -> str:
    """The config form of a public key (base64 of its 32 raw bytes)."""
    return base64.b64encode(public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)).decode()


_COERCE: dict[str, type] = {
    "state_dir": Path,
    "token_file": Path,
    "smoke_clip": Path,
}


def _coerce(name: str, value: Any, annotation: str) -> Any:
    if value is None:
        return None
    if name in _COERCE:
        return Path(str(value)).expanduser()
    if name == "trusted_keys":
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return tuple(str(item) for item in value)
    if annotation.startswith("bool"):
        if isinstance(value, str):
            return value.strip().lower() in {"1", "true", "yes", "on"}
        return bool(value)
    if annotation.startswith("int"):
        return int(value)
    if annotation.startswith("float"):
        return float(value)
    return str(value) if isinstance(value, str | int | float) else value


def load_config(path: Path | None = None, env: Mapping[str, str] | None = None) -> AgentConfig:
    """Read the TOML file (if any), apply ``EDGESCRIBE_AGENT_<FIELD>`` overrides, validate."""
    env = os.environ if env is None else env
    if path is None and env.get(ENV_PREFIX + "CONFIG"):
        path = Path(env[ENV_PREFIX + "CONFIG"])
    values: dict[str, Any] = {}
    if path is not None:
        try:
            values = tomllib.loads(path.read_text())
        except OSError as exc:
            raise ConfigError(f"cannot read config file {path}: {exc}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {path} is not valid TOML: {exc}") from exc
    known = {item.name: item for item in fields(AgentConfig) if item.name != "extra"}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ConfigError(f"unknown setting(s) in {path}: {', '.join(unknown)}")
    for name in known:
        override = env.get(ENV_PREFIX + name.upper())
        if override is not None:
            values[name] = override
    missing = [name for name in ("device_id", "api_url", "state_dir") if not values.get(name)]
    if missing:
        raise ConfigError(
            "missing setting(s): "
            + ", ".join(f"{name} (or {ENV_PREFIX}{name.upper()})" for name in missing)
        )
    try:
        coerced = {
            name: _coerce(name, value, str(known[name].type)) for name, value in values.items()
        }
        config = AgentConfig(**coerced)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"bad setting: {exc}") from exc
    return validate_config(config)


def validate_config(config: AgentConfig) -> AgentConfig:
    try:
        validate_id(config.device_id, "device id")
    except InvalidKeyError as exc:
        raise ConfigError(str(exc)) from exc
    if not config.api_url.startswith(("http://", "https://")):
        raise ConfigError(f"api_url must be an http(s) URL, got {config.api_url!r}")
    keys = parse_public_keys(config.trusted_keys)
    if not keys:
        raise ConfigError("trusted_keys is empty: a device that trusts no key can install nothing")
    if not 1 <= config.signature_threshold <= len(keys):
        raise ConfigError(
            f"signature_threshold {config.signature_threshold} must be between 1 and the "
            f"number of trusted keys ({len(keys)})"
        )
    if config.max_model_bytes < 1:
        raise ConfigError("max_model_bytes must be positive")
    return replace(config, state_dir=config.state_dir.expanduser().resolve())
