"""The agent against the real local stack: the API function served over HTTP by
``edgescribe.local.api_server``, the moto server's buckets and tables, real device JWTs, models
published and promoted by ``functions.distribution``, bytes fetched from moto's pre-signed URLs.

Skipped (with the reason) only if the API server module is not importable in this checkout.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edge.agent import Agent
from edge.clock import FakeClock
from edge.config import SMOKE_CLIP, AgentConfig, encode_public_key
from edge.router import InferenceRouter, LocalModel, correction_payload
from edge.slots import Slots
from models.runtime.fallback import CircuitBreaker
from models.runtime.manifest import ModelManifest
from tests.edge.conftest import make_config
from tests.edge.model_factory import distinct_version

api_server = pytest.importorskip(
    "edgescribe.local.api_server", reason="the local API server (issue 5) is not in this checkout"
)
pytest.importorskip(
    "functions.api.app", reason="the API function (issue 5) is not in this checkout"
)

TENANT = "acme"
DEVICE = "kiosk-7"


@dataclass
class LocalCloud:
    url: str
    s3: Any
    names: Any
    service: Any
    tokens: Any
    signer: Any

    def feedback_records(self) -> list[dict[str, Any]]:
        listing = self.s3.list_objects_v2(Bucket=self.names.feedback_bucket, Prefix="feedback/")
        return [
            json.loads(
                self.s3.get_object(Bucket=self.names.feedback_bucket, Key=item["Key"])[
                    "Body"
                ].read()
            )
            for item in listing.get("Contents", [])
            if item["Key"].endswith(".json")
        ]


@pytest.fixture
def cloud(aws_env: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalCloud]:
    import boto3

    from edgescribe.local.stack import provision_stack
    from edgescribe.settings import ResourceNames
    from functions.distribution.service import DistributionService
    from functions.distribution.signing import generate_signing_key

    names = ResourceNames(stack=f"e{uuid.uuid4().hex[:10]}")
    provision_stack(aws_env.endpoint_url, names)
    for variable, value in names.as_environment().items():
        monkeypatch.setenv(variable, value)
    tokens = api_server.LocalTokenAuthority(tmp_path / "tokens")
    for variable, value in tokens.environment().items():
        monkeypatch.setenv(variable, value)
    signer = generate_signing_key(tmp_path / "signing-key.pem")
    monkeypatch.setenv("EDGESCRIBE_SIGNING_KEY_FILE", str(tmp_path / "signing-key.pem"))
    monkeypatch.delenv("EDGESCRIBE_SIGNING_KEY_SECRET_ID", raising=False)
    s3 = boto3.session.Session().client("s3", endpoint_url=aws_env.endpoint_url)
    service = DistributionService(s3, names.models_bucket, signer=signer)
    with api_server.serve_api() as served:
        yield LocalCloud(served.url, s3, names, service, tokens, signer)


def device_config(
    cloud: LocalCloud,
    template: tuple[Path, ModelManifest],
    releaser_key: Ed25519PrivateKey,
    tmp_path: Path,
) -> AgentConfig:
    import shutil

    state_dir = tmp_path / "device"
    shutil.copytree(template[0], state_dir)
    config = make_config(state_dir, cloud.url, releaser_key)
    return replace(
        config,
        device_id=DEVICE,
        token=cloud.tokens.issue(subject=DEVICE, tenant=TENANT, role="device"),
        # The factory model was signed by the release key; the cloud signs with its own. Pin both.
        trusted_keys=(*config.trusted_keys, encode_public_key(cloud.signer.public_key)),
    )


def publish(cloud: LocalCloud, directory: Path, data: bytes, version: int) -> None:
    import hashlib

    directory.mkdir(parents=True)
    (directory / "model.onnx").write_bytes(data)
    manifest = ModelManifest(
        name="edgescribe-edge",
        version=version,
        sha256=hashlib.sha256(data).hexdigest(),
        size=len(data),
        quantization="int8-dynamic",
    )
    (directory / "manifest.json").write_text(manifest.to_json())
    cloud.service.publish(directory, version=version)


@pytest.mark.slow
def test_device_updates_rolls_back_and_uploads_corrections_through_local_stack(
    cloud: LocalCloud,
    provisioned_template: tuple[Path, ModelManifest],
    releaser_key: Ed25519PrivateKey,
    base_model_bytes: bytes,
    tmp_path: Path,
) -> None:
    config = device_config(cloud, provisioned_template, releaser_key, tmp_path)
    agent = Agent(config, clock=FakeClock())
    # v1 is what the device was provisioned with; v2 is new.
    publish(cloud, tmp_path / "v1", (config.slots_dir / "a" / "model.onnx").read_bytes(), 1)
    publish(cloud, tmp_path / "v2", distinct_version(base_model_bytes, "v2"), 2)
    cloud.service.promote("stable", 2, actor="test")

    result = agent.sync_once()
    assert result.action == "update"
    assert result.update is not None
    assert result.update.outcome is not None
    assert result.update.outcome.result == "installed", result.update.outcome.reason
    assert Slots(config.slots_dir).validate("b").version == 2

    # Operators withdraw v2: the signed directive from functions.distribution brings the device
    # back to v1 — from its previous slot, without downloading.
    cloud.service.rollback("stable", actor="test", to_version=1, reason="regression")
    result = agent.sync_once()
    assert result.action == "rollback"
    assert result.update is not None
    assert result.update.outcome is not None
    assert result.update.outcome.result == "installed", result.update.outcome.reason
    assert result.update.fetched_bytes == 0
    assert Slots(config.slots_dir).active() == "a"

    # Offline corrections reach the feedback bucket exactly once, however often they are sent.
    router = InferenceRouter(
        device_id=DEVICE,
        local=LocalModel(Slots(config.slots_dir)),
        outbox=agent.outbox,
        client=agent.client,
        breaker=CircuitBreaker(),
    )
    try:
        routed = router.transcribe(
            SMOKE_CLIP.read_bytes(), filename="clip.wav", transcript_id="edge-1", offline=True
        )
    finally:
        router.close()
    key, payload = correction_payload(agent.outbox, "edge-1", "the device is checking its model")
    agent.outbox.enqueue("correction", key, payload)
    agent.flush_outbox()
    agent.outbox.enqueue("correction", key + "-replay", payload)  # the same feedback, re-sent
    agent.flush_outbox()
    records = cloud.feedback_records()
    assert len(records) == 1
    assert records[0]["corrected_text"] == "the device is checking its model"
    assert records[0]["original_text"] == routed.transcript.text
    assert records[0]["transcript_id"] == "edge-1"
    assert agent.outbox.stats().corrections == 0


@pytest.mark.slow
def test_heartbeat_is_accepted_by_the_api_schema(
    cloud: LocalCloud,
    provisioned_template: tuple[Path, ModelManifest],
    releaser_key: Ed25519PrivateKey,
    tmp_path: Path,
) -> None:
    config = device_config(cloud, provisioned_template, releaser_key, tmp_path)
    agent = Agent(config, clock=FakeClock())
    agent.client.heartbeat(agent.heartbeat_report())  # raises on 4xx (extra fields, bad health)
    admin = cloud.tokens.issue(subject="ops", tenant=TENANT, role="admin")
    from edge.client import DeviceClient

    record = (
        DeviceClient(cloud.url, DEVICE, lambda: admin).request("GET", f"v1/devices/{DEVICE}").json()
    )
    assert record["current_version"] == 1
    assert record["health"] == "ok"


@pytest.mark.slow
def test_offline_transcripts_reach_transcripts_bucket_exactly_once(
    cloud: LocalCloud,
    provisioned_template: tuple[Path, ModelManifest],
    releaser_key: Ed25519PrivateKey,
    tmp_path: Path,
) -> None:
    config = device_config(cloud, provisioned_template, releaser_key, tmp_path)
    agent = Agent(config, clock=FakeClock())
    router = InferenceRouter(
        device_id=DEVICE,
        local=LocalModel(Slots(config.slots_dir)),
        outbox=agent.outbox,
        client=agent.client,
        breaker=CircuitBreaker(),
    )
    try:
        for index in range(3):
            router.transcribe(
                SMOKE_CLIP.read_bytes(),
                filename="c.wav",
                transcript_id=f"edge-{index}",
                offline=True,
            )
    finally:
        router.close()
    assert agent.flush_outbox().sent == 3
    for index in range(3):
        key = f"transcripts/{TENANT}/edge-{index}.json"
        body = cloud.s3.get_object(Bucket=cloud.names.transcripts_bucket, Key=key)["Body"].read()
        assert json.loads(body)["engine"] == "onnxruntime-edge"
