"""The API function: authentication, then powertools routing with pydantic validation, then problems.

Request life cycle (the order is part of the contract):

1. ``handler`` authenticates the caller (``auth.authenticate``) *before* routing or validation, as
   API Gateway's JWT authorizer does in the cloud: an anonymous caller learns nothing, not even
   which bodies a route would accept;
2. the envelope is checked: body size, an accepted content type, base64 and UTF-8 of JSON bodies;
3. powertools routes the request and validates path, query and body against the route's types;
4. the route runs; anything it raises as ``ApiProblem`` (or a distribution error) becomes an
   ``application/problem+json`` response with a specific ``detail``.

Only a fault on our side produces a 5xx, and its body never carries a stack trace.
"""

from __future__ import annotations

import base64
import binascii
import logging
import re
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestUnsupportedContentType,
    RequestValidationError,
)
from aws_lambda_powertools.event_handler.openapi.models import HTTPBearer

from functions.api.audio_body import MIME_FORMATS, media_type, strict_json_loads
from functions.api.auth import authenticate
from functions.api.problems import (
    PROBLEM_CONTENT_TYPE,
    ApiProblem,
    BadRequest,
    Conflict,
    FieldError,
    InternalError,
    MalformedJson,
    NotFound,
    PayloadTooLarge,
    ServiceUnavailable,
    Unprocessable,
    UnsupportedMediaType,
)
from functions.api.routes import devices, feedback, models, transcriptions
from functions.api.schemas import MAX_AUDIO_BASE64_CHARS, MAX_EDGE_TRANSCRIPT_BYTES
from functions.distribution.errors import (
    ArtifactMismatchError,
    ChannelConflictError,
    DistributionError,
    InvalidRolloutError,
    NothingToRollBackError,
    SigningKeyError,
    VersionConflictError,
    VersionNotPublishedError,
)

logger = logging.getLogger(__name__)

API_TITLE = "EdgeScribe API"
API_VERSION = "1.0.0"
#: The largest body any route accepts (an inline clip, base64 in JSON); bigger is 413 unread.
MAX_BODY_CHARS = MAX_AUDIO_BASE64_CHARS + 64 * 1024
#: Routes that accept less than ``MAX_BODY_CHARS``: (path pattern, largest body in bytes, what).
_ROUTE_BODY_CAPS: tuple[tuple[re.Pattern[str], int, str], ...] = (
    (
        re.compile(r"/v1/devices/[^/]+/transcripts"),
        MAX_EDGE_TRANSCRIPT_BYTES,
        "a transcript upload",
    ),
)
_JSON_TYPES = ("", "application/json")
_METHODS_WITH_BODY = frozenset({"POST", "PUT", "PATCH"})
_BINARY_TYPES = frozenset(MIME_FORMATS) | {"application/octet-stream"}

app = APIGatewayHttpResolver(
    enable_validation=True,
    json_body_deserializer=strict_json_loads,  # type: ignore[arg-type]  # any JSON value, not only dicts
)
app.configure_openapi(
    title=API_TITLE,
    version=API_VERSION,
    description=(
        "Speech-to-text for mobile apps and fleet devices. Every request carries a JWT bearer "
        "token (claims: sub, tenant, role app|device|admin). Errors are application/problem+json."
    ),
    security_schemes={"bearerAuth": HTTPBearer(bearerFormat="JWT")},
    security=[{"bearerAuth": []}],
)
for _module in (transcriptions, feedback, devices, models):
    app.include_router(_module.router)


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Lambda entry point (API Gateway HTTP API, payload format 2.0)."""
    try:
        principal = authenticate(event)
        _check_envelope(event)
    except ApiProblem as problem:
        return _problem_event_response(problem)
    app.append_context(principal=principal)  # type: ignore[no-untyped-call]
    return app.resolve(event, context)


# --- error responses ----------------------------------------------------------------------------


def problem_response(problem: ApiProblem) -> Response[str]:
    return Response(
        status_code=int(problem.status),
        content_type=PROBLEM_CONTENT_TYPE,
        body=problem.body(),
        headers=problem.headers or None,
    )


def _on_api_problem(problem: ApiProblem) -> Response[str]:
    return problem_response(problem)


def _on_validation_error(error: RequestValidationError) -> Response[str]:
    raw = list(error.errors())
    for item in raw:
        if item.get("type") == "json_invalid":
            reason = item.get("ctx", {}).get("error", "invalid syntax")
            return problem_response(MalformedJson(f"request body is not valid JSON: {reason}"))
    errors = [
        FieldError(
            loc=[part for part in item.get("loc", ()) if isinstance(part, str | int)],
            msg=str(item.get("msg", "invalid")),
            type=str(item.get("type", "invalid")),
        )
        for item in raw
    ]
    detail = (
        "; ".join(f"{'.'.join(str(part) for part in e.loc)}: {e.msg}" for e in errors[:3])
        or "invalid request"
    )
    return problem_response(Unprocessable(detail, errors=errors))


def _on_unsupported_content_type(error: RequestUnsupportedContentType) -> Response[str]:
    kind = media_type(app.current_event.headers.get("content-type"))
    return problem_response(
        UnsupportedMediaType(f"this route accepts application/json, not {kind!r}")
    )


_DISTRIBUTION_PROBLEMS: dict[type[DistributionError], type[ApiProblem]] = {
    VersionNotPublishedError: Unprocessable,
    InvalidRolloutError: Unprocessable,
    ArtifactMismatchError: Unprocessable,
    NothingToRollBackError: Conflict,
    ChannelConflictError: Conflict,
    VersionConflictError: Conflict,
    SigningKeyError: ServiceUnavailable,
}


def _on_distribution_error(error: DistributionError) -> Response[str]:
    kind = next(
        (problem for cls, problem in _DISTRIBUTION_PROBLEMS.items() if isinstance(error, cls)),
        BadRequest,
    )
    return problem_response(kind(str(error)))


def _on_not_found(error: NotFoundError) -> Response[str]:
    event = app.current_event
    return problem_response(NotFound(f"no route for {event.http_method} {event.path}"))


def _on_unexpected(error: Exception) -> Response[str]:
    logger.exception(
        "unhandled error in %s %s", app.current_event.http_method, app.current_event.path
    )
    return problem_response(
        InternalError(f"internal error ({type(error).__name__}); the request was not completed")
    )


# Registered by call, not decorator: powertools' decorators are untyped and would erase ours.
app.exception_handler(ApiProblem)(_on_api_problem)
app.exception_handler(RequestValidationError)(_on_validation_error)
app.exception_handler(RequestUnsupportedContentType)(_on_unsupported_content_type)
app.exception_handler(DistributionError)(_on_distribution_error)
app.exception_handler(Exception)(_on_unexpected)
app.not_found(_on_not_found)


def _problem_event_response(problem: ApiProblem) -> dict[str, Any]:
    """A problem as the raw API Gateway response (for failures before routing)."""
    return {
        "statusCode": int(problem.status),
        "headers": {"Content-Type": PROBLEM_CONTENT_TYPE, **problem.headers},
        "body": problem.body(),
        "isBase64Encoded": False,
    }


# --- envelope checks ----------------------------------------------------------------------------


def _check_envelope(event: dict[str, Any]) -> None:
    body = event.get("body")
    method = str(event.get("requestContext", {}).get("http", {}).get("method", "")).upper()
    if not body or method not in _METHODS_WITH_BODY:
        return  # a body on GET/DELETE means nothing to any route; it is ignored, not judged
    if not isinstance(body, str):
        raise BadRequest("request body must be a string in the API Gateway event")
    if len(body) > MAX_BODY_CHARS:
        raise PayloadTooLarge(
            f"request body is {len(body)} bytes; the most any route accepts is {MAX_BODY_CHARS}"
        )
    _check_route_cap(event, body)
    headers = event.get("headers") or {}
    content_type = next(
        (v for k, v in headers.items() if isinstance(k, str) and k.lower() == "content-type"), ""
    )
    kind = media_type(str(content_type))
    if kind in _BINARY_TYPES or kind.startswith("audio/"):
        return
    if kind not in _JSON_TYPES:
        raise UnsupportedMediaType(
            f"unsupported Content-Type {kind!r}; send application/json (or audio to "
            "POST /v1/transcriptions)"
        )
    if event.get("isBase64Encoded"):
        try:
            decoded = base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise BadRequest(f"request body is not valid base64: {exc}") from exc
        try:
            decoded.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise MalformedJson(f"request body is not UTF-8 JSON ({exc.reason})") from exc


def _check_route_cap(event: dict[str, Any], body: str) -> None:
    path = str(event.get("rawPath") or event.get("requestContext", {}).get("http", {}).get("path"))
    size = len(body) * 3 // 4 if event.get("isBase64Encoded") else len(body.encode("utf-8"))
    for pattern, cap, what in _ROUTE_BODY_CAPS:
        if pattern.fullmatch(path) and size > cap:
            raise PayloadTooLarge(f"request body is {size} bytes; {what} may be at most {cap}")


__all__ = ["API_TITLE", "API_VERSION", "app", "handler"]
