"""One module per resource; each exposes a powertools ``Router`` that ``functions.api.app`` includes."""

from __future__ import annotations

from aws_lambda_powertools.event_handler.api_gateway import Router

from functions.api.auth import Principal
from functions.api.problems import BadRequest, Unauthorized
from models.runtime import storage_layout


def principal_of(router: Router) -> Principal:
    """The caller, authenticated by ``functions.api.app.handler`` before routing."""
    principal = router.context.get("principal")
    if not isinstance(principal, Principal):
        raise Unauthorized("request is not authenticated")
    return principal


def checked_id(value: str, what: str) -> str:
    """A path id that may become part of a storage key (``../x``, ``%2F`` and friends → 400)."""
    try:
        return storage_layout.validate_id(value, what)
    except storage_layout.InvalidKeyError as exc:
        raise BadRequest(str(exc)) from exc
