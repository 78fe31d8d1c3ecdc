"""Admin routes of model distribution: only platform operators, specific errors."""

from __future__ import annotations

from pathlib import Path

from tests.functions.api.conftest import Api
from tests.functions.distribution.artifacts import make_model_dir


def _operator(api: Api) -> str:
    return api.token("admin", "op-1", "platform")


def test_status_shows_channels_and_history(api: Api, tmp_path: Path) -> None:
    service = api.distribution()
    service.publish(make_model_dir(tmp_path, 1))
    service.promote("stable", 1, actor="ops")
    response = api.call("GET", "/v1/models/channels", token=_operator(api))
    assert response.status == 200
    stable = next(c for c in response.json()["channels"] if c["channel"] == "stable")
    assert stable["state"]["version"] == 1
    assert stable["history"][0]["actor"] == "ops"


def test_changes_record_the_operator_as_actor(api: Api, tmp_path: Path) -> None:
    api.distribution().publish(make_model_dir(tmp_path, 1))
    response = api.call(
        "POST",
        "/v1/models/channels/canary/promote",
        token=_operator(api),
        json_body={"version": 1, "rollout_percent": 5, "reason": "first canary"},
    )
    assert response.status == 200
    assert response.json()["updated_by"] == "admin:op-1@platform"
    assert response.json()["rollout_percent"] == 5


def test_a_tenant_admin_cannot_change_what_the_whole_fleet_runs(api: Api) -> None:
    for token in (api.token("admin", "a", "acme"), api.token("app"), api.token("device", "dev-1")):
        response = api.call(
            "POST", "/v1/models/channels/stable/promote", token=token, json_body={"version": 1}
        )
        assert response.status == 403
        assert api.call("GET", "/v1/models/channels", token=token).status == 403


def test_distribution_errors_are_specific_client_errors(api: Api, tmp_path: Path) -> None:
    operator = _operator(api)
    unpublished = api.call(
        "POST", "/v1/models/channels/stable/promote", token=operator, json_body={"version": 9}
    )
    assert unpublished.status == 422
    assert "not published" in unpublished.detail
    nothing = api.call("POST", "/v1/models/channels/stable/rollback", token=operator, json_body={})
    assert nothing.status == 409
    assert "never been promoted" in nothing.detail
    api.distribution().publish(make_model_dir(tmp_path, 1))
    partial = api.call(
        "POST",
        "/v1/models/channels/stable/promote",
        token=operator,
        json_body={"version": 1, "rollout_percent": 50},
    )
    assert partial.status == 422
    assert "canary" in partial.detail
    bad_channel = api.call(
        "POST", "/v1/models/channels/beta/promote", token=operator, json_body={"version": 1}
    )
    assert bad_channel.status == 422
    assert "channel" in bad_channel.detail
