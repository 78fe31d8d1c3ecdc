"""The device protocol: model decisions, signed downloads, canary rollout, heartbeats, isolation."""

from __future__ import annotations

import hashlib
import urllib.request
from pathlib import Path

import pytest

from functions.distribution.bucketing import in_rollout
from functions.fleet.registry import DeviceRegistry
from models.runtime.artifacts import released_model_dir
from models.runtime.manifest import ModelManifest, count_valid_signatures
from models.runtime.rollback_directive import RollbackDirective
from tests.functions.api.conftest import Api, ApiResponse
from tests.functions.distribution.artifacts import make_model_dir

REAL_MODEL = released_model_dir()


def _model_dir(tmp_path: Path, version: int) -> Path:
    """The released edge model (renumbered) when it exists, else a small stand-in artifact."""
    if (REAL_MODEL / "manifest.json").exists() and version == 1:
        return REAL_MODEL
    return make_model_dir(tmp_path, version)


def _ask(api: Api, device: str, current: int | None, tenant: str = "acme") -> ApiResponse:
    query = {"current": str(current)} if current is not None else None
    return api.call(
        "GET", f"/v1/devices/{device}/model", token=api.token("device", device, tenant), query=query
    )


def _download(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=30) as reply:  # noqa: S310 - the moto server's URL
        return bytes(reply.read())


def test_nothing_published_means_action_none(api: Api) -> None:
    decision = _ask(api, "dev-1", 0).json()
    assert (decision["action"], decision["manifest"], decision["url"]) == ("none", None, None)


def test_device_gets_a_signed_manifest_and_a_url_to_exactly_those_bytes(
    api: Api, tmp_path: Path
) -> None:
    service = api.distribution()
    service.publish(_model_dir(tmp_path, 1), version=1)
    service.promote("stable", 1, actor="ops")
    decision = _ask(api, "dev-1", None).json()
    assert (decision["action"], decision["channel"], decision["version"]) == ("update", "stable", 1)
    manifest = ModelManifest.model_validate(decision["manifest"])
    assert count_valid_signatures(manifest, api.signer.trusted_keys()) == 1
    assert manifest.expires_at is not None
    data = _download(decision["url"])
    assert len(data) == manifest.size
    assert hashlib.sha256(data).hexdigest() == manifest.sha256
    assert decision["url_expires_at"] is not None
    again = _ask(api, "dev-1", 1).json()
    assert (again["action"], again["url"]) == ("none", None)
    assert again["manifest"]["version"] == 1  # a fresh manifest even when nothing changes


def test_canary_at_ten_percent_reaches_about_a_tenth_of_the_fleet_and_stays_put(
    api: Api, tmp_path: Path
) -> None:
    service = api.distribution()
    for version in (1, 2):
        service.publish(make_model_dir(tmp_path, version))
    service.promote("stable", 1, actor="ops")
    service.promote("canary", 2, actor="ops", rollout_percent=10)
    fleet = [f"unit-{n:04d}" for n in range(1000)]
    expected = {d for d in fleet if in_rollout(d, "edgescribe-edge", 10)}
    assert 70 <= len(expected) <= 130
    # Through the API for a sample of the fleet (every call is a real request), twice.
    sample = sorted(expected)[:15] + sorted(set(fleet) - expected)[:15]
    for _ in range(2):
        for device in sample:
            decision = _ask(api, device, 1).json()
            assert decision["version"] == (2 if device in expected else 1), device
            assert decision["channel"] == ("canary" if device in expected else "stable")


def test_promote_and_rollback_are_visible_on_the_next_request(api: Api, tmp_path: Path) -> None:
    service = api.distribution()
    for version in (1, 2):
        service.publish(make_model_dir(tmp_path, version))
    service.promote("stable", 1, actor="ops")
    assert _ask(api, "dev-1", 1).json()["action"] == "none"

    promoted = api.call(
        "POST",
        "/v1/models/channels/stable/promote",
        token=api.token("admin", "op", "platform"),
        json_body={"version": 2, "reason": "gate passed"},
    )
    assert promoted.status == 200, promoted.body
    update = _ask(api, "dev-1", 1).json()
    assert (update["action"], update["version"]) == ("update", 2)

    rolled = api.call(
        "POST",
        "/v1/models/channels/stable/rollback",
        token=api.token("admin", "op", "platform"),
        json_body={"reason": "crash reports"},
    )
    assert rolled.status == 200, rolled.body
    down = _ask(api, "dev-1", 2).json()
    assert (down["action"], down["version"]) == ("rollback", 1)
    directive = RollbackDirective.model_validate(down["rollback"])
    assert count_valid_signatures(directive, api.signer.trusted_keys()) == 1
    assert directive.permits(installed=2, offered=1)
    assert hashlib.sha256(_download(down["url"])).hexdigest() == down["manifest"]["sha256"]
    # A device that never took version 2 has nothing to do.
    assert _ask(api, "dev-2", 1).json()["action"] == "none"


def test_pinned_lab_device_follows_shadow(api: Api, tmp_path: Path) -> None:
    service = api.distribution()
    for version in (1, 2):
        service.publish(make_model_dir(tmp_path, version))
    service.promote("stable", 1, actor="ops")
    service.promote("shadow", 2, actor="ops")
    _ask(api, "lab-1", 1)  # first contact registers it
    admin = api.token("admin", "fleet-admin", "acme")
    pinned = api.call(
        "PUT", "/v1/devices/lab-1/channel", token=admin, json_body={"channel": "shadow"}
    )
    assert pinned.status == 200
    assert pinned.json()["channel"] == "shadow"
    assert _ask(api, "lab-1", 1).json()["version"] == 2
    other_tenant_admin = api.token("admin", "x", "globex")
    assert (
        api.call(
            "PUT",
            "/v1/devices/lab-1/channel",
            token=other_tenant_admin,
            json_body={"channel": None},
        ).status
        == 404
    )


def test_a_device_may_only_act_as_itself(api: Api) -> None:
    impostor = api.token("device", "dev-2")
    assert api.call("GET", "/v1/devices/dev-1/model", token=impostor).status == 403
    response = api.call(
        "POST", "/v1/devices/dev-1/heartbeat", token=impostor, json_body={"health": "ok"}
    )
    assert response.status == 403
    assert "only act as itself" in response.detail
    assert api.call("GET", "/v1/devices/dev-1/model", token=api.token("app")).status == 403


def test_a_device_id_of_another_tenant_is_not_found(api: Api) -> None:
    assert _ask(api, "dev-1", 0, tenant="acme").status == 200
    hijack = _ask(api, "dev-1", 0, tenant="globex")
    assert hijack.status == 404
    beat = api.call(
        "POST",
        "/v1/devices/dev-1/heartbeat",
        token=api.token("device", "dev-1", "globex"),
        json_body={"version": 9, "health": "failing"},
    )
    assert beat.status == 404
    record = DeviceRegistry(api.stack.dynamodb, api.stack.names.devices_table).get("dev-1")
    assert record is not None
    assert record.tenant == "acme"
    assert record.health is None
    assert (
        api.call("GET", "/v1/devices/dev-1", token=api.token("admin", "a", "globex")).status == 404
    )


def test_heartbeat_lands_in_the_fleet_registry(api: Api) -> None:
    response = api.call(
        "POST",
        "/v1/devices/dev-1/heartbeat",
        token=api.token("device", "dev-1"),
        json_body={
            "version": 3,
            "health": "degraded",
            "queue_depth": 12,
            "last_error": "smoke test failed",
        },
    )
    assert response.status == 200, response.body
    record = DeviceRegistry(api.stack.dynamodb, api.stack.names.devices_table).get("dev-1")
    assert record is not None
    assert (
        record.tenant,
        record.current_version,
        record.health,
        record.queue_depth,
        record.last_error,
    ) == ("acme", 3, "degraded", 12, "smoke test failed")
    fleet = api.call("GET", "/v1/devices", token=api.token("admin", "a", "acme")).json()
    assert fleet["summary"] == {"devices": 1, "by_version": {"3": 1}, "by_health": {"degraded": 1}}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"health": "exploded"}, "health"),
        ({"health": "ok", "queue_depth": -1}, "queue_depth"),
        ({"health": "ok", "version": "three"}, "version"),
        ({"health": "ok", "uptime": 5}, "uptime"),
        ({}, "health"),
    ],
)
def test_rejects_malformed_heartbeats(api: Api, body: dict[str, object], message: str) -> None:
    response = api.call(
        "POST", "/v1/devices/dev-1/heartbeat", token=api.token("device", "dev-1"), json_body=body
    )
    assert response.status == 422
    assert message in response.detail


@pytest.mark.parametrize("current", ["-1", "abc", "1.5"])
def test_rejects_a_nonsense_installed_version(api: Api, current: str) -> None:
    response = api.call(
        "GET",
        "/v1/devices/dev-1/model",
        token=api.token("device", "dev-1"),
        query={"current": current},
    )
    assert response.status == 422
    assert "current" in response.detail


@pytest.mark.parametrize("raw_id", ["..", "..%2Fchannels", "%2e%2e%2fx", "dev 1", "-" * 200])
def test_rejects_path_traversal_looking_device_ids(api: Api, raw_id: str) -> None:
    response = api.call("GET", f"/v1/devices/{raw_id}/model", token=api.token("device", raw_id))
    assert response.status == 400
    assert "invalid device id" in response.detail
