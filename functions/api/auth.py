"""Who is calling: a verified JWT bearer token → ``Principal(subject, tenant, role)``.

Two modes (``EDGESCRIBE_AUTH_MODE``):

- ``verify`` (default; the local stack and tests): the handler verifies the token itself —
  signature with a trusted key, ``iss``, ``aud``, ``exp`` (and ``nbf``), with 30 s of clock leeway.
  Trusted keys come from ``EDGESCRIBE_JWT_KEYS`` (comma-separated PEM files and/or JWKS JSON files),
  issuer and audience from ``EDGESCRIBE_JWT_ISSUER`` / ``EDGESCRIBE_JWT_AUDIENCE``.
- ``gateway`` (the cloud): API Gateway's JWT authorizer has verified exactly those things before
  the function runs; the handler reads the claims it passes in ``requestContext.authorizer.jwt``.

Either way the same claims become the principal: ``sub``, ``tenant`` and ``role``
(``app | device | admin``). Rules against known attacks:

- the algorithm comes from the *key*, never from the token: Ed25519 keys verify ``EdDSA`` only, RSA
  keys ``RS256``, P-256 keys ``ES256``; ``alg: none`` and HMAC tokens are refused (alg confusion);
- ``exp``, ``iss``, ``aud`` and ``sub`` are required, so a token minted for another service or
  without an expiry is refused;
- a malformed tenant claim (``../other``) is refused here, before any storage key is built from it.

What a principal may do (a device only as itself, a tenant only its own data) is decided by the
routes with the helpers at the bottom.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Literal, get_args

import jwt
from cryptography.hazmat.primitives.asymmetric.ec import SECP256R1, EllipticCurvePublicKey
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from functions.api.problems import Forbidden, ServiceUnavailable, Unauthorized
from models.runtime import storage_layout

Role = Literal["app", "device", "admin"]
ROLES: tuple[Role, ...] = get_args(Role)
AuthMode = Literal["verify", "gateway"]
LEEWAY_SECONDS = 30
REQUIRED_CLAIMS = ("exp", "iss", "aud", "sub")


class AuthConfigurationError(Exception):
    """The function is deployed without what it needs to authenticate anyone (a server fault)."""


@dataclass(frozen=True)
class Principal:
    subject: str
    tenant: str
    role: Role

    @property
    def actor(self) -> str:
        """How audit records name this caller."""
        return f"{self.role}:{self.subject}@{self.tenant}"


@dataclass(frozen=True)
class VerificationKey:
    key: Any
    algorithm: str
    kid: str | None = None


@dataclass(frozen=True)
class JwtSettings:
    issuer: str
    audience: str
    key_files: tuple[str, ...]
    tenant_claim: str = "tenant"
    role_claim: str = "role"


def auth_mode() -> AuthMode:
    mode = os.environ.get("EDGESCRIBE_AUTH_MODE", "verify")
    if mode not in ("verify", "gateway"):
        raise AuthConfigurationError(
            f"EDGESCRIBE_AUTH_MODE={mode!r}; expected 'verify' or 'gateway'"
        )
    return mode  # type: ignore[return-value]


def jwt_settings_from_environment() -> JwtSettings:
    issuer = os.environ.get("EDGESCRIBE_JWT_ISSUER", "")
    audience = os.environ.get("EDGESCRIBE_JWT_AUDIENCE", "")
    files = tuple(f for f in os.environ.get("EDGESCRIBE_JWT_KEYS", "").split(",") if f.strip())
    if not (issuer and audience and files):
        raise AuthConfigurationError(
            "token verification needs EDGESCRIBE_JWT_ISSUER, EDGESCRIBE_JWT_AUDIENCE and "
            "EDGESCRIBE_JWT_KEYS"
        )
    return JwtSettings(
        issuer=issuer,
        audience=audience,
        key_files=tuple(f.strip() for f in files),
        tenant_claim=claim_names()[0],
        role_claim=claim_names()[1],
    )


def claim_names() -> tuple[str, str]:
    """(tenant claim, role claim): ``tenant``/``role`` unless the IdP names them otherwise
    (Cognito custom attributes arrive as ``custom:tenant``)."""
    return (
        os.environ.get("EDGESCRIBE_JWT_TENANT_CLAIM", "tenant"),
        os.environ.get("EDGESCRIBE_JWT_ROLE_CLAIM", "role"),
    )


def algorithm_for(key: Any) -> str:
    """The one algorithm a key may verify (alg-confusion defence)."""
    if isinstance(key, Ed25519PublicKey):
        return "EdDSA"
    if isinstance(key, RSAPublicKey):
        return "RS256"
    if isinstance(key, EllipticCurvePublicKey) and isinstance(key.curve, SECP256R1):
        return "ES256"
    raise AuthConfigurationError(f"unsupported token key type {type(key).__name__}")


@cache
def load_verification_keys(files: tuple[str, ...]) -> tuple[VerificationKey, ...]:
    """Parse the key files once per process (PEM public keys, or a JWKS JSON document)."""
    keys: list[VerificationKey] = []
    for name in files:
        path = Path(name)
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise AuthConfigurationError(f"cannot read token key file {path}: {exc}") from exc
        if data.lstrip().startswith(b"{"):
            for jwk in json.loads(data).get("keys", []):
                parsed = jwt.PyJWK(jwk)
                keys.append(
                    VerificationKey(
                        key=parsed.key, algorithm=algorithm_for(parsed.key), kid=jwk.get("kid")
                    )
                )
            continue
        marker = b"-----BEGIN PUBLIC KEY-----"
        for block in data.split(marker)[1:]:
            key = load_pem_public_key(marker + block)
            keys.append(VerificationKey(key=key, algorithm=algorithm_for(key)))
    if not keys:
        raise AuthConfigurationError(f"no public keys in {', '.join(files)}")
    return tuple(keys)


def verify_token(token: str, settings: JwtSettings) -> dict[str, Any]:
    """The token's claims if it verifies; ``Unauthorized`` naming the failed check otherwise."""
    keys = load_verification_keys(settings.key_files)
    try:
        header = jwt.get_unverified_header(token)
    except jwt.DecodeError as exc:
        raise Unauthorized(f"malformed bearer token: {exc}") from exc
    algorithm = header.get("alg")
    if algorithm not in {key.algorithm for key in keys}:
        raise Unauthorized(f"token algorithm {algorithm!r} is not accepted")
    kid = header.get("kid")
    candidates = [
        key
        for key in keys
        if key.algorithm == algorithm and (key.kid is None or kid is None or key.kid == kid)
    ]
    if not candidates:
        raise Unauthorized(f"token key id {kid!r} is not trusted")
    last_error: jwt.PyJWTError | None = None
    for candidate in candidates:
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                candidate.key,
                algorithms=[candidate.algorithm],
                audience=settings.audience,
                issuer=settings.issuer,
                leeway=LEEWAY_SECONDS,
                options={"require": list(REQUIRED_CLAIMS)},
            )
            return claims
        except jwt.InvalidSignatureError as exc:
            last_error = exc
            continue
        except jwt.ExpiredSignatureError as exc:
            raise Unauthorized("token expired") from exc
        except jwt.ImmatureSignatureError as exc:
            raise Unauthorized("token is not valid yet (nbf/iat in the future)") from exc
        except jwt.InvalidAudienceError as exc:
            raise Unauthorized(f"token audience is not {settings.audience!r}") from exc
        except jwt.InvalidIssuerError as exc:
            raise Unauthorized(f"token issuer is not {settings.issuer!r}") from exc
        except jwt.MissingRequiredClaimError as exc:
            raise Unauthorized(f"token lacks the required {exc.claim!r} claim") from exc
        except jwt.PyJWTError as exc:
            raise Unauthorized(f"invalid bearer token: {exc}") from exc
    raise Unauthorized("token signature does not verify with any trusted key") from last_error


def principal_from_claims(
    claims: dict[str, Any], tenant_claim: str = "tenant", role_claim: str = "role"
) -> Principal:
    subject = claims.get("sub")
    tenant = claims.get(tenant_claim)
    role = claims.get(role_claim)
    if not isinstance(subject, str) or not subject:
        raise Unauthorized("token has no subject ('sub')")
    if not isinstance(tenant, str):
        raise Unauthorized(f"token has no {tenant_claim!r} claim")
    try:
        storage_layout.validate_id(tenant, "tenant")
    except storage_layout.InvalidKeyError as exc:
        raise Unauthorized(f"token tenant is malformed: {exc}") from exc
    if role not in ROLES:
        raise Unauthorized(f"token role {role!r} is not one of {', '.join(ROLES)}")
    return Principal(subject=subject, tenant=tenant, role=role)


def authenticate(event: dict[str, Any]) -> Principal:
    """The principal of an API Gateway v2 event (raises ``Unauthorized``)."""
    try:
        mode = auth_mode()
        if mode == "gateway":
            claims = (
                event.get("requestContext", {}).get("authorizer", {}).get("jwt", {}).get("claims")
            )
            if not isinstance(claims, dict):
                raise Unauthorized("no verified claims from the API Gateway authorizer")
            return principal_from_claims(claims, *claim_names())
        settings = jwt_settings_from_environment()
        token = _bearer_token(event)
        return principal_from_claims(
            verify_token(token, settings), settings.tenant_claim, settings.role_claim
        )
    except AuthConfigurationError as exc:
        raise ServiceUnavailable(f"authentication is not configured: {exc}") from exc


def _bearer_token(event: dict[str, Any]) -> str:
    headers = event.get("headers") or {}
    value = next(
        (v for k, v in headers.items() if isinstance(k, str) and k.lower() == "authorization"), None
    )
    if not value:
        raise Unauthorized("missing Authorization header (expected 'Bearer <token>')")
    scheme, _, token = str(value).partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("Authorization header must be 'Bearer <token>'")
    return token.strip()


# --- authorization rules ------------------------------------------------------------------------


def require_role(principal: Principal, *roles: Role) -> None:
    if principal.role not in roles:
        raise Forbidden(f"role {principal.role!r} may not do this; needs {' or '.join(roles)}")


def require_device_self_or_admin(principal: Principal, device_id: str) -> None:
    """A device acts only as itself; an admin may act for any device of its tenant."""
    if principal.role == "admin":
        return
    if principal.role != "device":
        raise Forbidden(f"role {principal.role!r} may not act for a device")
    if principal.subject != device_id:
        raise Forbidden("a device may only act as itself")


def platform_tenant() -> str:
    """The operators' tenant: only its admins change what the whole fleet runs."""
    return os.environ.get("EDGESCRIBE_PLATFORM_TENANT", "platform")


def require_platform_admin(principal: Principal) -> None:
    """Model distribution is global: a tenant's admin must not roll models out to other tenants."""
    require_role(principal, "admin")
    if principal.tenant != platform_tenant():
        raise Forbidden(
            f"model distribution is for platform operators (admins of tenant {platform_tenant()!r})"
        )
