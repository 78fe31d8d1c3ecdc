"""edgescribe.local.api_server: real HTTP on 127.0.0.1 → API Gateway v2 events → the real handler."""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from edgescribe.local.api_server import (
    LocalApi,
    event_from_request,
    parse_token_spec,
    response_from_result,
    serve_api,
)
from tests.functions.api.conftest import Api
from tests.functions.distribution.artifacts import make_model_dir


@pytest.fixture
def server(api: Api) -> Iterator[LocalApi]:
    with serve_api() as local:
        yield local


def _request(
    server: LocalApi,
    method: str,
    path: str,
    token: str | None,
    body: bytes | None = None,
    content_type: str | None = None,
) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(server.url + path, data=body, method=method)  # noqa: S310
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    if content_type:
        request.add_header("Content-Type", content_type)
    try:
        with urllib.request.urlopen(request, timeout=30) as reply:  # noqa: S310 - 127.0.0.1
            return reply.status, dict(reply.headers), reply.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def test_event_has_the_api_gateway_v2_shape() -> None:
    event = event_from_request(
        "post",
        "/v1/devices/dev%201/heartbeat?current=3&tag=a&tag=b",
        [
            ("Host", "127.0.0.1:9"),
            ("X-Trace", "1"),
            ("x-trace", "2"),
            ("Cookie", "a=1; b=2"),
            ("Content-Type", "application/json"),
        ],
        b'{"health": "ok"}',
    )
    assert event["version"] == "2.0"
    assert event["rawPath"] == "/v1/devices/dev%201/heartbeat"
    assert event["rawQueryString"] == "current=3&tag=a&tag=b"
    assert event["queryStringParameters"] == {"current": "3", "tag": "a,b"}
    assert event["headers"]["x-trace"] == "1,2"
    assert event["cookies"] == ["a=1", "b=2"]
    assert event["requestContext"]["http"]["method"] == "POST"
    assert (event["body"], event["isBase64Encoded"]) == ('{"health": "ok"}', False)


def test_binary_bodies_are_base64_encoded_as_api_gateway_does() -> None:
    audio = bytes(range(256))
    event = event_from_request("POST", "/v1/transcriptions", [("Content-Type", "audio/wav")], audio)
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == audio
    invalid_text = event_from_request(
        "POST", "/x", [("Content-Type", "application/json")], b"\xff\xfe"
    )
    assert invalid_text["isBase64Encoded"] is True


def test_results_become_http_responses() -> None:
    response = response_from_result(
        {
            "statusCode": 201,
            "headers": {"Content-Type": "image/png"},
            "body": base64.b64encode(b"\x89PNG").decode(),
            "isBase64Encoded": True,
            "cookies": ["s=1"],
        }
    )
    assert (response.status, response.body) == (201, b"\x89PNG")
    assert ("Set-Cookie", "s=1") in response.headers


def test_token_specs_parse_role_subject_and_tenant() -> None:
    assert parse_token_spec("device:dev-1@acme") == ("device", "dev-1", "acme")
    with pytest.raises(ValueError, match="role:subject@tenant"):
        parse_token_spec("device-only")


def test_a_device_updates_over_real_http_and_downloads_from_moto(
    api: Api, server: LocalApi, tmp_path: Path
) -> None:
    service = api.distribution()
    service.publish(make_model_dir(tmp_path, 1))
    service.promote("stable", 1, actor="ops")
    token = api.token("device", "dev-1")
    status, _headers, body = _request(server, "GET", "/v1/devices/dev-1/model?current=0", token)
    assert status == 200
    decision: dict[str, Any] = json.loads(body)
    assert decision["action"] == "update"
    with urllib.request.urlopen(decision["url"], timeout=30) as reply:  # noqa: S310 - moto's URL
        assert hashlib.sha256(reply.read()).hexdigest() == decision["manifest"]["sha256"]
    beat = json.dumps({"version": 1, "health": "ok", "queue_depth": 0}).encode()
    status, _, _ = _request(
        server, "POST", "/v1/devices/dev-1/heartbeat", token, beat, "application/json"
    )
    assert status == 200


def test_a_curl_user_posts_raw_audio_and_gets_problem_json_for_junk(
    api: Api, server: LocalApi
) -> None:
    status, headers, body = _request(
        server, "POST", "/v1/transcriptions", api.token(), b"\x00" * 64, "audio/wav"
    )
    assert status == 422
    assert headers["Content-Type"] == "application/problem+json"
    assert "audio rejected" in json.loads(body)["detail"]


def test_unauthenticated_http_requests_get_401_with_a_challenge(server: LocalApi) -> None:
    status, headers, _ = _request(server, "GET", "/v1/transcriptions/abc", None)
    assert status == 401
    assert headers["WWW-Authenticate"].startswith("Bearer")


def test_oversize_and_chunked_bodies_are_refused_before_reading(server: LocalApi) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    connection.putrequest("POST", "/v1/transcriptions")
    connection.putheader("Content-Length", str(50 * 1024 * 1024))
    connection.endheaders()
    assert connection.getresponse().status == 413
    connection.close()
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    connection.putrequest("POST", "/v1/transcriptions")
    connection.putheader("Transfer-Encoding", "chunked")
    connection.endheaders()
    connection.send(b"0\r\n\r\n")
    assert connection.getresponse().status == 411
    connection.close()
