"""Authentication on every route, and the attacks token verification must stop."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edgescribe.local.api_server import LOCAL_AUDIENCE, LOCAL_ISSUER
from tests.functions.api.conftest import Api
from tests.functions.api.routes import concrete, operations


def _claims(**overrides: Any) -> dict[str, Any]:
    now = datetime.now(UTC)
    claims: dict[str, Any] = {
        "iss": LOCAL_ISSUER,
        "aud": LOCAL_AUDIENCE,
        "sub": "dev-1",
        "tenant": "acme",
        "role": "device",
        "iat": int(now.timestamp()),
        "exp": int((now + timedelta(minutes=10)).timestamp()),
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def _signed_by_the_authority(api: Api, **overrides: Any) -> str:
    return api.tokens.sign(_claims(**overrides))


def _model_route(api: Api, token: str | None) -> Any:
    return api.call("GET", "/v1/devices/dev-1/model", token=token)


@pytest.mark.parametrize(("method", "path"), operations())
def test_every_route_refuses_a_request_without_a_token(api: Api, method: str, path: str) -> None:
    response = api.call(method, concrete(path), token=None, json_body={})
    assert response.status == 401
    assert "missing Authorization header" in response.detail
    assert response.headers["WWW-Authenticate"].startswith("Bearer error=")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"exp": int((datetime.now(UTC) - timedelta(minutes=5)).timestamp())}, "token expired"),
        ({"aud": "someone-else"}, "audience is not"),
        ({"iss": "https://evil.example"}, "issuer is not"),
        ({"exp": None}, "'exp'"),
        ({"sub": None}, "'sub'"),
        ({"nbf": int((datetime.now(UTC) + timedelta(hours=1)).timestamp())}, "not valid yet"),
        ({"role": "root"}, "role 'root'"),
        ({"tenant": "../globex"}, "tenant is malformed"),
        ({"tenant": None}, "'tenant' claim"),
    ],
)
def test_rejects_tokens_failing_a_claim_check(
    api: Api, overrides: dict[str, Any], message: str
) -> None:
    response = _model_route(api, _signed_by_the_authority(api, **overrides))
    assert response.status == 401
    assert message in response.detail


def test_rejects_a_token_signed_by_an_untrusted_key(api: Api) -> None:
    forged = jwt.encode(_claims(), Ed25519PrivateKey.generate(), algorithm="EdDSA")
    response = _model_route(api, forged)
    assert response.status == 401
    assert "does not verify with any trusted key" in response.detail


def test_rejects_alg_none_tokens(api: Api) -> None:
    header = base64.urlsafe_b64encode(json.dumps({"alg": "none", "typ": "JWT"}).encode()).rstrip(
        b"="
    )
    payload = base64.urlsafe_b64encode(json.dumps(_claims(role="admin")).encode()).rstrip(b"=")
    response = _model_route(api, f"{header.decode()}.{payload.decode()}.")
    assert response.status == 401
    assert "'none' is not accepted" in response.detail


def test_rejects_hmac_tokens_keyed_with_the_public_key(api: Api) -> None:
    """Algorithm confusion: HS256 'signed' with the verifier's public key bytes."""
    public_pem = api.tokens.public_key_path.read_bytes()
    header = base64.urlsafe_b64encode(json.dumps({"alg": "HS256", "typ": "JWT"}).encode()).rstrip(
        b"="
    )
    payload = base64.urlsafe_b64encode(json.dumps(_claims()).encode()).rstrip(b"=")
    import hashlib
    import hmac

    signing_input = header + b"." + payload
    signature = base64.urlsafe_b64encode(
        hmac.new(public_pem, signing_input, hashlib.sha256).digest()
    ).rstrip(b"=")
    response = _model_route(api, (signing_input + b"." + signature).decode())
    assert response.status == 401
    assert "'HS256' is not accepted" in response.detail


@pytest.mark.parametrize(
    ("authorization", "message"),
    [
        ("Basic dXNlcjpwYXNz", "must be 'Bearer <token>'"),
        ("Bearer", "must be 'Bearer <token>'"),
        ("Bearer not.a.jwt", "malformed bearer token"),
        ("Bearer " + "A" * 5000, "malformed bearer token"),
    ],
)
def test_rejects_malformed_authorization_headers(
    api: Api, authorization: str, message: str
) -> None:
    response = api.call(
        "GET", "/v1/devices/dev-1/model", token=None, headers={"authorization": authorization}
    )
    assert response.status == 401
    assert message in response.detail


def test_accepts_rs256_and_es256_keys_published_as_a_jwks(
    api: Api, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ec_key = ec.generate_private_key(ec.SECP256R1())
    jwks = {
        "keys": [
            {
                **json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(rsa_key.public_key())),
                "kid": "rsa-1",
            },
            {**json.loads(jwt.algorithms.ECAlgorithm.to_jwk(ec_key.public_key())), "kid": "ec-1"},
        ]
    }
    (tmp_path / "jwks.json").write_text(json.dumps(jwks))
    monkeypatch.setenv(
        "EDGESCRIBE_JWT_KEYS", f"{api.tokens.public_key_path},{tmp_path / 'jwks.json'}"
    )
    for key, algorithm, kid in ((rsa_key, "RS256", "rsa-1"), (ec_key, "ES256", "ec-1")):
        token = jwt.encode(_claims(), key, algorithm=algorithm, headers={"kid": kid})
        assert _model_route(api, token).status == 200
    wrong_kid = jwt.encode(_claims(), rsa_key, algorithm="RS256", headers={"kid": "ec-1"})
    assert _model_route(api, wrong_kid).status == 401


def test_gateway_mode_trusts_only_the_authorizer_claims(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    from edgescribe.local.api_server import event_from_request
    from functions.api.app import handler

    monkeypatch.setenv("EDGESCRIBE_AUTH_MODE", "gateway")
    event = event_from_request("GET", "/v1/devices/dev-1/model", [("host", "x")], b"")
    assert handler(event, None)["statusCode"] == 401
    event["requestContext"]["authorizer"] = {
        "jwt": {"claims": {"sub": "dev-1", "tenant": "acme", "role": "device"}, "scopes": None}
    }
    assert handler(event, None)["statusCode"] == 200
    event["requestContext"]["authorizer"]["jwt"]["claims"]["tenant"] = "a/b"
    assert handler(event, None)["statusCode"] == 401


def test_unconfigured_verification_is_a_server_fault_not_an_open_door(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("EDGESCRIBE_JWT_KEYS")
    response = _model_route(api, api.token("device", "dev-1"))
    assert response.status == 503
    assert "authentication is not configured" in response.detail


def test_authentication_runs_before_body_validation(api: Api) -> None:
    """An anonymous caller learns nothing about what bodies a route accepts."""
    response = api.call(
        "POST", "/v1/feedback", token=None, body=b"{not json", content_type="application/json"
    )
    assert response.status == 401


def test_a_public_key_file_of_another_type_is_used_only_with_its_algorithm(api: Api) -> None:
    """The Ed25519 verification key must not verify an RS256 token even if bytes were reused."""
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    token = jwt.encode(_claims(), rsa_key, algorithm="RS256")
    response = _model_route(api, token)
    assert response.status == 401
    assert "'RS256' is not accepted" in response.detail


def test_gateway_mode_reads_the_claim_names_the_identity_provider_uses(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    from edgescribe.local.api_server import event_from_request
    from functions.api.app import handler

    monkeypatch.setenv("EDGESCRIBE_AUTH_MODE", "gateway")
    monkeypatch.setenv("EDGESCRIBE_JWT_TENANT_CLAIM", "custom:tenant")
    monkeypatch.setenv("EDGESCRIBE_JWT_ROLE_CLAIM", "custom:role")
    event = event_from_request("GET", "/v1/devices/dev-1/model", [("host", "x")], b"")
    claims = {"sub": "dev-1", "custom:tenant": "acme", "custom:role": "device"}
    event["requestContext"]["authorizer"] = {"jwt": {"claims": claims, "scopes": None}}
    assert handler(event, None)["statusCode"] == 200
    claims["tenant"] = claims.pop("custom:tenant")  # the default name is not trusted instead
    assert handler(event, None)["statusCode"] == 401
