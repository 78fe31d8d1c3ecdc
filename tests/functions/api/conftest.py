"""The API under test: a fresh stack on the session's moto server, real tokens, the real handler.

``api.call(...)`` turns a request into the API Gateway v2 event the local HTTP server would build
(``edgescribe.local.api_server.event_from_request``) and passes it to ``functions.api.app.handler``;
boto3 inside the handler talks HTTP to the moto server. ``api.tokens`` issues real EdDSA JWTs the
handler verifies.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from edgescribe.local.api_server import LocalTokenAuthority, event_from_request
from edgescribe.local.lambda_context import LocalLambdaContext
from functions.distribution.service import DistributionService
from functions.distribution.signing import ManifestSigner, generate_signing_key
from tests.functions.batch_stack import BatchStack


@dataclass
class ApiResponse:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def content_type(self) -> str:
        return self.headers.get("Content-Type", "")

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def detail(self) -> str:
        """The problem's detail (asserts the response is a problem)."""
        assert self.content_type == "application/problem+json", (self.status, self.body[:300])
        return str(self.json()["detail"])


@dataclass
class Api:
    stack: BatchStack
    tokens: LocalTokenAuthority
    signer: ManifestSigner
    default_token: dict[str, str] = field(
        default_factory=lambda: {"role": "app", "subject": "user-1", "tenant": "acme"}
    )

    def token(self, role: str = "app", subject: str = "user-1", tenant: str = "acme") -> str:
        return self.tokens.issue(subject=subject, tenant=tenant, role=role)

    def call(
        self,
        method: str,
        path: str,
        *,
        token: str | None = "default",  # noqa: S107 - a sentinel, not a secret
        json_body: Any = None,
        body: bytes | None = None,
        content_type: str | None = None,
        query: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> ApiResponse:
        request_headers: dict[str, str] = {"host": "api.local", **(headers or {})}
        if token == "default":
            token = self.token(**self.default_token)
        if token is not None:
            request_headers["authorization"] = f"Bearer {token}"
        data = b""
        if json_body is not None:
            data = json.dumps(json_body).encode()
            request_headers.setdefault("content-type", "application/json")
        if body is not None:
            data = body
        if content_type is not None:
            request_headers["content-type"] = content_type
        target = path + (f"?{urlencode(query)}" if query else "")
        event = event_from_request(method, target, list(request_headers.items()), data)
        from functions.api.app import handler

        result = handler(event, LocalLambdaContext(function_name="edgescribe-api"))
        assert isinstance(result["body"], str)
        headers_out = {str(k): str(v) for k, v in (result.get("headers") or {}).items()}
        return ApiResponse(int(result["statusCode"]), headers_out, result["body"].encode())

    def distribution(self, **kwargs: Any) -> DistributionService:
        return DistributionService(
            self.stack.s3, self.stack.names.models_bucket, signer=self.signer, **kwargs
        )


@pytest.fixture
def api(batch_stack: BatchStack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Api:
    authority = LocalTokenAuthority(tmp_path / "tokens")
    for name, value in authority.environment().items():
        monkeypatch.setenv(name, value)
    signer = generate_signing_key(tmp_path / "signing-key.pem")
    monkeypatch.setenv("EDGESCRIBE_SIGNING_KEY_FILE", str(tmp_path / "signing-key.pem"))
    monkeypatch.delenv("EDGESCRIBE_SIGNING_KEY_SECRET_ID", raising=False)
    monkeypatch.setenv("EDGESCRIBE_PLATFORM_TENANT", "platform")
    return Api(stack=batch_stack, tokens=authority, signer=signer)


def fake_clock(start: datetime | None = None) -> tuple[list[datetime], Any]:
    """A clock tests move by hand: returns (cell, clock); set ``cell[0]`` to change the time."""
    cell = [start or datetime.now(UTC)]
    return cell, lambda: cell[0]


__all__ = ["Api", "ApiResponse", "fake_clock", "timedelta"]
