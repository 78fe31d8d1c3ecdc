"""Fixtures for edge tests: a releaser key, signed test releases over the real model, a fake device
API on a free port, and an agent provisioned with release v1 in slot ``a``."""

from __future__ import annotations

import shutil
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edge.agent import Agent
from edge.clock import FakeClock
from edge.config import AgentConfig, encode_public_key, validate_config
from edge.errors import SmokeTestFailedError
from edge.smoke import run_smoke_test
from models.runtime.manifest import ModelManifest, sha256_file, sign_manifest
from tests.edge.fake_device_api import FakeDeviceApi, Offer, serve_fake_device_api
from tests.edge.model_factory import distinct_version, real_model_bytes, synthetic_model

MODEL_NAME = "edgescribe-edge"
DEVICE_ID = "dev-0001"


@dataclass(frozen=True)
class Release:
    manifest: ModelManifest
    data: bytes
    blob_name: str

    @property
    def manifest_json(self) -> dict[str, object]:
        return self.manifest.model_dump(mode="json")

    def offer(self, action: str = "update", **extra: object) -> Offer:
        return Offer(action=action, manifest=self.manifest_json, blob_name=self.blob_name, **extra)  # type: ignore[arg-type]

    def write_dir(self, directory: Path) -> Path:
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "model.onnx").write_bytes(self.data)
        (directory / "manifest.json").write_text(self.manifest.to_json())
        return directory


@pytest.fixture(scope="session")
def releaser_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture(scope="session")
def rogue_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture(scope="session")
def base_model_bytes(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """The released INT8 model if it passes the smoke test; else a contract-true stand-in.

    The agent's mechanics are under test here, not the model's accuracy: while the released
    model is a partly trained export that hears the smoke clip as silence, the updates carry a
    synthetic model that honours the same ONNX contract (and the run says so).
    """
    data = real_model_bytes()
    probe = tmp_path_factory.mktemp("probe")
    (probe / "model.onnx").write_bytes(data)
    manifest = ModelManifest(
        name=MODEL_NAME, version=1, sha256=sha256_file(probe / "model.onnx"), size=len(data)
    )
    (probe / "manifest.json").write_text(manifest.to_json())
    try:
        run_smoke_test(probe)
    except SmokeTestFailedError as exc:
        warnings.warn(
            f"released edge model fails the smoke test ({exc}); edge tests use a synthetic model",
            stacklevel=1,
        )
        return synthetic_model(favoured_symbol=3)
    return data


class Releases:
    """Builds signed releases and publishes their bytes on the fake API."""

    def __init__(
        self, api: FakeDeviceApi, key: Ed25519PrivateKey, base: bytes, clock: FakeClock
    ) -> None:
        self.api = api
        self.key = key
        self.base = base
        self.clock = clock

    def make(
        self,
        version: int,
        data: bytes | None = None,
        *,
        keys: list[Ed25519PrivateKey] | None = None,
        expires_at: datetime | None = None,
        name: str = MODEL_NAME,
        **fields: object,
    ) -> Release:
        data = data if data is not None else distinct_version(self.base, f"v{version}")
        import hashlib

        manifest = ModelManifest(
            name=name,
            version=version,
            sha256=hashlib.sha256(data).hexdigest(),
            size=len(data),
            quantization="int8-dynamic",
            expires_at=expires_at or self.clock.now() + timedelta(days=30),
            **fields,  # type: ignore[arg-type]
        )
        for key in [self.key] if keys is None else keys:
            manifest = sign_manifest(manifest, key)
        blob = f"{name}-v{version}-{manifest.sha256[:8]}.onnx"
        self.api.blobs[blob] = data
        return Release(manifest=manifest, data=data, blob_name=blob)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(start=datetime.now(UTC))


@pytest.fixture
def api() -> Iterator[FakeDeviceApi]:
    with serve_fake_device_api() as server:
        yield server


@pytest.fixture
def releases(
    api: FakeDeviceApi, releaser_key: Ed25519PrivateKey, base_model_bytes: bytes, clock: FakeClock
) -> Releases:
    return Releases(api, releaser_key, base_model_bytes, clock)


def make_config(
    state_dir: Path, api_url: str, key: Ed25519PrivateKey, **overrides: object
) -> AgentConfig:
    config = AgentConfig(
        device_id=DEVICE_ID,
        api_url=api_url,
        state_dir=state_dir,
        trusted_keys=(encode_public_key(key.public_key()),),
        token="device-token",
        read_timeout_seconds=2.0,
        connect_timeout_seconds=2.0,
        min_download_bytes_per_second=256 * 1024.0,
        download_grace_seconds=3.0,
        poll_interval_seconds=60.0,
        backoff_base_seconds=1.0,
        backoff_cap_seconds=60.0,
        smoke_timeout_seconds=120.0,
        cloud_timeout_seconds=5.0,
    )
    return validate_config(replace(config, **overrides))  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def provisioned_template(
    tmp_path_factory: pytest.TempPathFactory,
    releaser_key: Ed25519PrivateKey,
    base_model_bytes: bytes,
) -> tuple[Path, ModelManifest]:
    """A state dir with release v1 installed in slot ``a`` (provisioned once, copied per test)."""
    root = tmp_path_factory.mktemp("template")
    data = distinct_version(base_model_bytes, "v1")
    import hashlib

    manifest = sign_manifest(
        ModelManifest(
            name=MODEL_NAME,
            version=1,
            sha256=hashlib.sha256(data).hexdigest(),
            size=len(data),
            quantization="int8-dynamic",
            expires_at=datetime.now(UTC) + timedelta(days=365),
        ),
        releaser_key,
    )
    release = Release(manifest=manifest, data=data, blob_name="v1")
    model_dir = release.write_dir(root / "release-v1")
    config = make_config(root / "state", "http://127.0.0.1:9", releaser_key)
    Agent(config).updater.provision(model_dir)
    return root / "state", manifest


@pytest.fixture
def config(
    tmp_path: Path,
    api: FakeDeviceApi,
    releaser_key: Ed25519PrivateKey,
    provisioned_template: tuple[Path, ModelManifest],
) -> AgentConfig:
    """Config of an agent that runs release v1 (slot ``a``) and talks to the fake API."""
    state_dir = tmp_path / "agent"
    shutil.copytree(provisioned_template[0], state_dir)
    return make_config(state_dir, api.base_url, releaser_key)


@pytest.fixture
def agent(config: AgentConfig, clock: FakeClock) -> Agent:
    return Agent(config, clock=clock)
