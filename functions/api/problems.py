"""Errors as RFC 9457 problem details (``application/problem+json``), each with a specific message.

Routes raise an ``ApiProblem`` subclass; ``app`` turns it into a response. The ``detail`` is the
sentence a client developer needs ("audio is 41.2 s; the synchronous limit is 30 s"), never a stack
trace. Client mistakes are always 4xx: only a fault on our side may be 5xx.
"""

from __future__ import annotations

import json
from http import HTTPStatus
from typing import Any, ClassVar

from pydantic import BaseModel, Field

PROBLEM_CONTENT_TYPE = "application/problem+json"
PROBLEM_TYPE_PREFIX = "urn:edgescribe:problem:"


class FieldError(BaseModel):
    """One invalid field of a request (from validation)."""

    loc: list[str | int]
    msg: str
    type: str


class ProblemDetails(BaseModel):
    """The body of every error response."""

    type: str = Field(description="A URN naming the kind of problem.")
    title: str
    status: int
    detail: str = Field(description="What went wrong with this request, specifically.")
    errors: list[FieldError] | None = None


class ApiProblem(Exception):  # noqa: N818 - RFC 9457 calls these problems
    """Base class: raise a subclass from a route; ``detail`` is shown to the client."""

    status: ClassVar[HTTPStatus] = HTTPStatus.BAD_REQUEST
    slug: ClassVar[str] = "bad-request"

    def __init__(
        self,
        detail: str,
        *,
        errors: list[FieldError] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors
        self.headers = headers or {}

    def to_problem(self) -> ProblemDetails:
        return ProblemDetails(
            type=PROBLEM_TYPE_PREFIX + self.slug,
            title=self.status.phrase,
            status=int(self.status),
            detail=self.detail,
            errors=self.errors,
        )

    def body(self) -> str:
        return json.dumps(self.to_problem().model_dump(mode="json", exclude_none=True))


class BadRequest(ApiProblem):
    status = HTTPStatus.BAD_REQUEST
    slug = "bad-request"


class MalformedJson(ApiProblem):
    status = HTTPStatus.BAD_REQUEST
    slug = "malformed-json"


class Unauthorized(ApiProblem):
    status = HTTPStatus.UNAUTHORIZED
    slug = "unauthorized"

    def __init__(self, detail: str) -> None:
        quoted = detail.replace('"', "'")
        super().__init__(
            detail,
            headers={
                "WWW-Authenticate": f'Bearer error="invalid_token", error_description="{quoted}"'
            },
        )


class Forbidden(ApiProblem):
    status = HTTPStatus.FORBIDDEN
    slug = "forbidden"


class NotFound(ApiProblem):
    status = HTTPStatus.NOT_FOUND
    slug = "not-found"


class MethodNotAllowed(ApiProblem):
    status = HTTPStatus.METHOD_NOT_ALLOWED
    slug = "method-not-allowed"


class Conflict(ApiProblem):
    status = HTTPStatus.CONFLICT
    slug = "conflict"


class PayloadTooLarge(ApiProblem):
    status = HTTPStatus.REQUEST_ENTITY_TOO_LARGE
    slug = "payload-too-large"


class UnsupportedMediaType(ApiProblem):
    status = HTTPStatus.UNSUPPORTED_MEDIA_TYPE
    slug = "unsupported-media-type"


class Unprocessable(ApiProblem):
    status = HTTPStatus.UNPROCESSABLE_ENTITY
    slug = "unprocessable"


class ServiceUnavailable(ApiProblem):
    status = HTTPStatus.SERVICE_UNAVAILABLE
    slug = "service-unavailable"


class InternalError(ApiProblem):
    status = HTTPStatus.INTERNAL_SERVER_ERROR
    slug = "internal-error"


def problem_responses(*statuses: int) -> dict[int, Any]:
    """OpenAPI ``responses`` entries for the given error statuses, all with ``ProblemDetails``.

    422 is always included: powertools documents a validation error on every route, and ours is a
    problem document, not its default shape.
    """
    return {
        status: {
            "description": HTTPStatus(status).phrase,
            "content": {PROBLEM_CONTENT_TYPE: {"model": ProblemDetails}},
        }
        for status in sorted({*statuses, 422})
    }
