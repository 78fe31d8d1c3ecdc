"""Device routes: which model to run, heartbeats, offline transcripts, and (admin) the fleet view
and channel pins.

A device may act only as itself (token ``sub`` == path id); an admin may act for the devices of its
own tenant. A device id registered to another tenant answers 404, exactly like an unknown one.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body, Header, Query

from functions.api import config
from functions.api.auth import Principal, require_device_self_or_admin, require_role
from functions.api.edge_transcript_store import store_edge_transcript
from functions.api.problems import (
    NotFound,
    ServiceUnavailable,
    Unprocessable,
    problem_responses,
)
from functions.api.routes import checked_id, principal_of
from functions.api.schemas import (
    MAX_EDGE_TRANSCRIPT_BYTES,
    ChannelPinRequest,
    DeviceModelResponse,
    EdgeTranscriptReceipt,
    EdgeTranscriptUpload,
    FleetListing,
    HeartbeatAck,
    HeartbeatRequest,
)
from functions.common.aws_clients import dynamodb_client, s3_client
from functions.common.environment import resource_name
from functions.distribution.service import service_from_environment
from functions.fleet.registry import (
    DeviceOwnershipError,
    DeviceRecord,
    DeviceRegistry,
    HeartbeatReport,
)

router = Router()  # type: ignore[no-untyped-call]  # powertools leaves __init__ unannotated


def _registry() -> DeviceRegistry:
    return DeviceRegistry(dynamodb_client(), resource_name("DEVICES_TABLE"))


def _not_found(device_id: str) -> NotFound:
    return NotFound(f"no device {device_id!r} in your tenant")


def _device_for(principal: Principal, device_id: str) -> DeviceRecord:
    """The device's record: registered on first contact by the device itself, never by others."""
    registry = _registry()
    try:
        if principal.role == "device":
            return registry.ensure_registered(device_id, principal.tenant)
        record = registry.get_for_tenant(device_id, principal.tenant)
    except DeviceOwnershipError as exc:
        raise _not_found(device_id) from exc
    if record is None:
        raise _not_found(device_id)
    return record


@router.get(
    "/v1/devices/<device_id>/model",
    summary="What model the device should run: none, update or rollback",
    tags=["devices"],
    responses={
        200: {
            "description": "Decision",
            "content": {"application/json": {"model": DeviceModelResponse}},
        },
        **problem_responses(400, 401, 403, 404, 422, 503),
    },
)
def get_device_model(
    device_id: str,
    current: Annotated[
        int | None, Query(ge=0, description="Installed model version (0 or absent: none)")
    ] = None,
) -> DeviceModelResponse:
    principal = principal_of(router)
    device_id = checked_id(device_id, "device id")
    require_device_self_or_admin(principal, device_id)
    record = _device_for(principal, device_id)
    service = service_from_environment()
    decision, manifest = service.decide_for_device(device_id, current, record.channel)
    if decision.version is not None and manifest is None:
        raise ServiceUnavailable(
            f"channel {decision.channel} points at version {decision.version}, whose manifest is "
            "missing from the models bucket"
        )
    url = None
    url_expires_at = None
    if manifest is not None and decision.action in ("update", "rollback"):
        ttl = config.model_url_ttl_seconds()
        url = service.models.presigned_model_url(manifest.name, manifest.version, ttl)
        url_expires_at = datetime.now(UTC) + timedelta(seconds=ttl)
    return DeviceModelResponse(
        action=decision.action,
        channel=decision.channel,
        version=decision.version,
        manifest=manifest,
        url=url,
        url_expires_at=url_expires_at,
        rollback=decision.directive,
    )


@router.post(
    "/v1/devices/<device_id>/heartbeat",
    summary="Report the device's installed version, health and outbox depth",
    tags=["devices"],
    responses={
        200: {"description": "Recorded", "content": {"application/json": {"model": HeartbeatAck}}},
        **problem_responses(400, 401, 403, 404, 415, 422),
    },
)
def post_heartbeat(device_id: str, heartbeat: Annotated[HeartbeatRequest, Body()]) -> HeartbeatAck:
    principal = principal_of(router)
    device_id = checked_id(device_id, "device id")
    require_role(principal, "device")
    require_device_self_or_admin(principal, device_id)
    now = datetime.now(UTC)
    try:
        record = _registry().record_heartbeat(
            device_id,
            principal.tenant,
            HeartbeatReport(**heartbeat.model_dump()),
            now,
        )
    except DeviceOwnershipError as exc:
        raise _not_found(device_id) from exc
    return HeartbeatAck(device_id=device_id, received_at=now, channel=record.channel)


#: ``Idempotency-Key``: visible ASCII, as the edge outbox sends it (``transcript:<device>:<id>``).
IDEMPOTENCY_KEY_PATTERN = r"^[\x21-\x7e]{1,255}$"


@router.post(
    "/v1/devices/<device_id>/transcripts",
    summary="Upload a transcript the device made offline (idempotent by transcript id)",
    description=(
        "Stored at transcripts/<tenant>/<transcript id>.{txt,srt,vtt,json} with its engine as "
        "produced (onnxruntime-edge). A retry of a stored upload gets the original 201 and receipt "
        "again (header Idempotent-Replayed: true); different content under a stored transcript id "
        f"is 409. Bodies over {MAX_EDGE_TRANSCRIPT_BYTES} bytes are 413."
    ),
    tags=["devices"],
    responses={
        201: {
            "description": "Stored (or, for a retry, already stored)",
            "content": {"application/json": {"model": EdgeTranscriptReceipt}},
        },
        **problem_responses(400, 401, 403, 404, 409, 413, 415, 422, 503),
    },
)
def post_edge_transcript(
    device_id: str,
    upload: Annotated[EdgeTranscriptUpload, Body()],
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            pattern=IDEMPOTENCY_KEY_PATTERN,
            description="The outbox item's key; a retry sends the same one.",
        ),
    ] = None,
) -> Response[str]:
    principal = principal_of(router)
    device_id = checked_id(device_id, "device id")
    require_role(principal, "device")
    require_device_self_or_admin(principal, device_id)
    if upload.device_id is not None and upload.device_id != device_id:
        raise Unprocessable(
            f"body device_id {upload.device_id!r} does not match the path's {device_id!r}"
        )
    _device_for(principal, device_id)  # 404 for a device id registered to another tenant
    stored = store_edge_transcript(
        s3_client(),
        resource_name("TRANSCRIPTS_BUCKET"),
        tenant=principal.tenant,
        device_id=device_id,
        upload=upload,
        idempotency_key=idempotency_key,
        now=datetime.now(UTC),
    )
    headers = {"Location": stored.receipt.status_url}
    if stored.replayed:
        headers["Idempotent-Replayed"] = "true"
    return Response(
        status_code=201,
        content_type="application/json",
        body=stored.receipt.model_dump_json(),
        headers=headers,
    )


@router.get(
    "/v1/devices",
    summary="The tenant's fleet: every device and a summary (admin)",
    tags=["devices"],
    responses={
        200: {"description": "Fleet", "content": {"application/json": {"model": FleetListing}}},
        **problem_responses(401, 403),
    },
)
def list_devices() -> FleetListing:
    principal = principal_of(router)
    require_role(principal, "admin")
    registry = _registry()
    devices = registry.list_devices(principal.tenant)
    return FleetListing(summary=registry.summary(principal.tenant), devices=devices)


@router.get(
    "/v1/devices/<device_id>",
    summary="One device's registry record (the device itself, or an admin)",
    tags=["devices"],
    responses={
        200: {"description": "Record", "content": {"application/json": {"model": DeviceRecord}}},
        **problem_responses(400, 401, 403, 404),
    },
)
def get_device(device_id: str) -> DeviceRecord:
    principal = principal_of(router)
    device_id = checked_id(device_id, "device id")
    require_device_self_or_admin(principal, device_id)
    return _device_for(principal, device_id)


@router.put(
    "/v1/devices/<device_id>/channel",
    summary="Pin a device to a channel, or unpin it with null (admin)",
    tags=["devices"],
    responses={
        200: {"description": "Record", "content": {"application/json": {"model": DeviceRecord}}},
        **problem_responses(400, 401, 403, 404, 415, 422),
    },
)
def pin_device_channel(
    device_id: str, request: Annotated[ChannelPinRequest, Body()]
) -> DeviceRecord:
    principal = principal_of(router)
    device_id = checked_id(device_id, "device id")
    require_role(principal, "admin")
    _device_for(principal, device_id)  # 404 unless it is a device of this tenant
    try:
        return _registry().pin_channel(device_id, principal.tenant, request.channel)
    except DeviceOwnershipError as exc:
        raise _not_found(device_id) from exc
