"""``edgescribe local up``: the cloud on this machine, in the foreground until Ctrl-C.

Starts a moto server (S3, SQS, DynamoDB over HTTP), provisions the stack's buckets, queues and
tables exactly as infra names them, runs the event-source poller that feeds the transcription
queue to the real batch handler, and serves the HTTP API function on 127.0.0.1 with throwaway dev
tokens and a throwaway model-signing key (``--no-api`` to skip). ``--triton`` also starts the
bundled tritonserver with the released cloud model and routes the functions through it.

Upload ``recordings/<tenant>/<id>.wav`` to the recordings bucket with any S3 client pointed at the
printed endpoint and the transcript appears; or POST a clip to the API with a printed token.
"""

from __future__ import annotations

import argparse
import re
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgescribe.cli import UserError
from edgescribe.local.moto_server import FAKE_CREDENTIALS
from edgescribe.local.ports import free_port

if TYPE_CHECKING:
    from edgescribe.local.running_stack import LocalStack

#: Stack names end up in S3 bucket names: lowercase, digits, hyphens.
_STACK_NAME = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,28}[a-z0-9])?$")
#: Who the printed dev tokens speak for.
DEV_TENANT = "dev"
DEV_APP = "dev-app"
DEV_DEVICE = "dev-device-1"
DEV_ADMIN = "dev-admin"


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("local", help="run the cloud's parts on this machine")
    actions = parser.add_subparsers(dest="local_command", required=True)
    up = actions.add_parser(
        "up",
        help="start moto + resources + the queue poller + the API; run until Ctrl-C",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    up.add_argument("--port", type=int, default=None, help="moto server port (default: a free one)")
    up.add_argument("--stack", default="local", help="stack name resources are named after")
    up.add_argument("--no-poller", action="store_true", help="provision only; do not transcribe")
    up.add_argument(
        "--batch-size", type=int, default=10, help="messages per handler invocation (1-10)"
    )
    up.add_argument("--no-api", action="store_true", help="do not serve the HTTP API")
    up.add_argument("--api-port", type=int, default=None, help="API port (default: a free one)")
    up.add_argument(
        "--triton",
        action="store_true",
        help="also serve the released cloud model with tritonserver; the functions use it",
    )
    up.add_argument(
        "--models",
        type=Path,
        default=None,
        metavar="DIR",
        help="a folder with edgescribe-edge/ and edgescribe-cloud/ to run instead of the "
        "released models",
    )
    up.set_defaults(handler=run_up)


def run_up(args: argparse.Namespace) -> int:
    from edgescribe.local.running_stack import LocalStackError, run_local_stack

    if not _STACK_NAME.match(args.stack):
        raise UserError(
            f"--stack {args.stack!r}: use 1-30 lowercase letters, digits or '-' "
            "(it becomes part of bucket names)"
        )
    for flag, value in (("--port", args.port), ("--api-port", args.api_port)):
        if value is not None and not 1 <= value <= 65535:
            raise UserError(f"{flag} must be 1-65535, got {value}")
    if not 1 <= args.batch_size <= 10:
        raise UserError(f"--batch-size must be 1-10 (SQS's limit), got {args.batch_size}")
    if args.models is not None and not args.models.is_dir():
        raise UserError(f"--models {args.models}: no such folder")
    port = args.port or free_port()
    if args.port is not None and not _port_is_free(port):
        raise UserError(f"port {port} is in use; pick another or leave out --port")
    if args.api_port is not None and (args.api_port == port or not _port_is_free(args.api_port)):
        raise UserError(f"port {args.api_port} is in use; pick another or leave out --api-port")
    stop = threading.Event()
    try:
        _stop_on_signals()
        with run_local_stack(
            port=port,
            stack=args.stack,
            poll=not args.no_poller,
            batch_size=args.batch_size,
            api=not args.no_api,
            api_port=args.api_port,
            triton=args.triton,
            models_dir=args.models,
        ) as stack:
            print(describe_stack(stack), flush=True)
            stop.wait()
    except LocalStackError as exc:
        raise UserError(str(exc)) from exc
    except KeyboardInterrupt:
        print("\nstopped: everything local up started is shut down", flush=True)
    return 0


def describe_stack(stack: LocalStack) -> str:
    """What a user needs to talk to the stack: endpoints, credentials, tokens, every name."""
    names, resources = stack.names, stack.resources
    environment = {
        **FAKE_CREDENTIALS,
        "AWS_ENDPOINT_URL": stack.endpoint_url,
        "EDGESCRIBE_STACK": names.stack,
    }
    if stack.credentials is not None:
        environment["EDGESCRIBE_SIGNING_KEY_FILE"] = str(stack.credentials.signing_key_path)
    lines = [
        f"EdgeScribe local stack '{names.stack}' is up",
        f"  endpoint     {stack.endpoint_url}",
        "  environment  export " + " ".join(f"{k}={v}" for k, v in environment.items()),
        f"  upload to    s3://{names.recordings_bucket}/recordings/<tenant>/<id>.wav",
        f"  transcripts  s3://{names.transcripts_bucket}/transcripts/<tenant>/<id>.json",
        f"  errors       s3://{names.transcripts_bucket}/errors/<tenant>/<id>.json",
        f"  buckets      {', '.join(resources.buckets)}",
        f"  queue        {resources.queue_url}",
        f"  dead letters {resources.dlq_url}",
        f"  tables       {', '.join(resources.tables)}",
        "  poller       "
        + ("feeding the queue to functions.batch_transcription.handler" if stack.poller else "off"),
        f"  models       {stack.edge_model_dir} (functions, devices)",
    ]
    lines += _triton_lines(stack)
    lines += _api_lines(stack)
    lines += [
        "",
        "Try:  aws --endpoint-url "
        f"{stack.endpoint_url} s3 cp clip.wav s3://{names.recordings_bucket}/recordings/me/clip.wav",
    ]
    if stack.api is not None:
        lines.append(
            '      curl -H "Authorization: Bearer $EDGESCRIBE_APP_TOKEN" -H "Content-Type: '
            f'audio/wav" --data-binary @clip.wav {stack.api.url}/v1/transcriptions'
        )
    if stack.api is not None and stack.credentials is not None:
        lines.append(
            f"      EDGESCRIBE_AGENT_DEVICE_ID={DEV_DEVICE} EDGESCRIBE_AGENT_API_URL={stack.api.url} "
            f"EDGESCRIBE_AGENT_TRUSTED_KEYS={stack.credentials.trusted_key} "
            "EDGESCRIBE_AGENT_TOKEN=$EDGESCRIBE_DEVICE_TOKEN EDGESCRIBE_AGENT_STATE_DIR=./device "
            "edgescribe-agent sync   # after: edgescribe model publish + promote stable 1"
        )
    lines.append("Press Ctrl-C to stop.")
    return "\n".join(lines)


def _triton_lines(stack: LocalStack) -> list[str]:
    if stack.triton is None:
        return ["  triton       off (--triton serves the cloud model; functions use onnxruntime)"]
    spec, endpoints = stack.triton.spec, stack.triton.server.endpoints
    return [
        f"  triton       {spec.name} v{spec.version} from {stack.cloud_model_dir}",
        f"               gRPC {endpoints.grpc_url}, HTTP {endpoints.http_url}, "
        f"metrics {endpoints.metrics_url}",
        "               the batch and API functions call it (onnxruntime as fallback)",
    ]


def _api_lines(stack: LocalStack) -> list[str]:
    if stack.api is None or stack.credentials is None:
        return ["  api          off"]
    tokens = stack.credentials.tokens
    app = tokens.issue(subject=DEV_APP, tenant=DEV_TENANT, role="app")
    device = tokens.issue(subject=DEV_DEVICE, tenant=DEV_TENANT, role="device")
    admin = tokens.issue(subject=DEV_ADMIN, tenant=DEV_TENANT, role="admin")
    return [
        f"  api          {stack.api.url} (functions.api.app.handler; JWTs verified)",
        f"  signing key  {stack.credentials.signing_key_path} (devices pin "
        f"{stack.credentials.trusted_key})",
        f"  dev tokens   tenant '{DEV_TENANT}', valid 12 h:",
        f"export EDGESCRIBE_APP_TOKEN={app}",
        f"export EDGESCRIBE_DEVICE_TOKEN={device}  # device id {DEV_DEVICE}",
        f"export EDGESCRIBE_ADMIN_TOKEN={admin}",
    ]


def _stop_on_signals() -> None:
    """Ctrl-C and SIGTERM (``kill``, ``docker stop``, systemd) both shut everything down cleanly.

    Without this, SIGTERM kills Python on the spot and leaves moto and tritonserver running,
    orphaned; and a ``local up &`` started from a script ignores SIGINT (shells start background
    jobs that way), so Ctrl-C's signal could not stop it either.
    """
    import signal

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, interrupt)


def _port_is_free(port: int) -> bool:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True
