"""Admin routes of model distribution: status, promote, rollback.

Publishing is not an HTTP route: model files are megabytes and come from a training job, so they
go through ``edgescribe model publish`` or the distribution function (docs/decisions/0301-model-distribution.md).
"""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body

from functions.api.auth import require_platform_admin
from functions.api.problems import problem_responses
from functions.api.routes import principal_of
from functions.api.schemas import PromoteRequest, RollbackRequest, RollbackResult
from functions.distribution.channels import Channel, ChannelState
from functions.distribution.service import DistributionStatus, service_from_environment

router = Router()  # type: ignore[no-untyped-call]  # powertools leaves __init__ unannotated


@router.get(
    "/v1/models/channels",
    summary="Channels, their versions, expiry and recent history (admin)",
    tags=["models"],
    responses={
        200: {
            "description": "Status",
            "content": {"application/json": {"model": DistributionStatus}},
        },
        **problem_responses(401, 403),
    },
)
def distribution_status() -> DistributionStatus:
    require_platform_admin(principal_of(router))
    return service_from_environment().status()


@router.post(
    "/v1/models/channels/<channel>/promote",
    summary="Point a channel at a published version with a rollout percentage (admin)",
    tags=["models"],
    responses={
        200: {"description": "New state", "content": {"application/json": {"model": ChannelState}}},
        **problem_responses(400, 401, 403, 409, 415, 422, 503),
    },
)
def promote_channel(channel: Channel, request: Annotated[PromoteRequest, Body()]) -> ChannelState:
    principal = principal_of(router)
    require_platform_admin(principal)
    return service_from_environment().promote(
        channel,
        request.version,
        actor=principal.actor,
        rollout_percent=request.rollout_percent,
        name=request.name,
        reason=request.reason,
    )


@router.post(
    "/v1/models/channels/<channel>/rollback",
    summary="Return a channel to an older version with a signed rollback directive (admin)",
    tags=["models"],
    responses={
        200: {
            "description": "New states",
            "content": {"application/json": {"model": RollbackResult}},
        },
        **problem_responses(400, 401, 403, 409, 415, 422, 503),
    },
)
def rollback_channel(
    channel: Channel, request: Annotated[RollbackRequest, Body()]
) -> RollbackResult:
    principal = principal_of(router)
    require_platform_admin(principal)
    states = service_from_environment().rollback(
        channel, actor=principal.actor, to_version=request.to_version, reason=request.reason
    )
    return RollbackResult(states=states)
