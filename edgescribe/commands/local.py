"""``edgescribe local up``: the batch path on this machine, in the foreground until Ctrl-C.

Starts a moto server (S3, SQS, DynamoDB over HTTP), provisions the stack's buckets, queues and
tables exactly as infra names them, and runs the event-source poller that feeds the transcription
queue to the real batch handler. Upload ``recordings/<tenant>/<id>.wav`` to the recordings bucket
with any S3 client pointed at the printed endpoint, and the transcripts appear.
"""

from __future__ import annotations

import argparse
import re
import threading
from typing import TYPE_CHECKING, Any

from edgescribe.cli import UserError
from edgescribe.local.moto_server import FAKE_CREDENTIALS
from edgescribe.local.ports import free_port

if TYPE_CHECKING:
    from edgescribe.local.running_stack import LocalStack

#: Stack names end up in S3 bucket names: lowercase, digits, hyphens.
_STACK_NAME = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,28}[a-z0-9])?$")


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("local", help="run the cloud's batch path on this machine")
    actions = parser.add_subparsers(dest="local_command", required=True)
    up = actions.add_parser(
        "up",
        help="start moto + resources + the queue poller; run until Ctrl-C",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    up.add_argument("--port", type=int, default=None, help="moto server port (default: a free one)")
    up.add_argument("--stack", default="local", help="stack name resources are named after")
    up.add_argument("--no-poller", action="store_true", help="provision only; do not transcribe")
    up.add_argument(
        "--batch-size", type=int, default=10, help="messages per handler invocation (1-10)"
    )
    up.set_defaults(handler=run_up)


def run_up(args: argparse.Namespace) -> int:
    from edgescribe.local.running_stack import run_local_stack

    if not _STACK_NAME.match(args.stack):
        raise UserError(
            f"--stack {args.stack!r}: use 1-30 lowercase letters, digits or '-' "
            "(it becomes part of bucket names)"
        )
    if args.port is not None and not 1 <= args.port <= 65535:
        raise UserError(f"--port must be 1-65535, got {args.port}")
    if not 1 <= args.batch_size <= 10:
        raise UserError(f"--batch-size must be 1-10 (SQS's limit), got {args.batch_size}")
    port = args.port or free_port()
    if args.port is not None and not _port_is_free(port):
        raise UserError(f"port {port} is in use; pick another or leave out --port")
    stop = threading.Event()
    try:
        with run_local_stack(
            port=port, stack=args.stack, poll=not args.no_poller, batch_size=args.batch_size
        ) as stack:
            print(describe_stack(stack), flush=True)
            stop.wait()
    except KeyboardInterrupt:
        print("\nstopped: poller drained, moto server terminated", flush=True)
    return 0


def describe_stack(stack: LocalStack) -> str:
    """What a user needs to talk to the stack: endpoint, credentials, every name."""
    names, resources = stack.names, stack.resources
    credentials = " ".join(f"{key}={value}" for key, value in FAKE_CREDENTIALS.items())
    lines = [
        f"EdgeScribe local stack '{names.stack}' is up",
        f"  endpoint     {stack.endpoint_url}",
        f"  environment  export AWS_ENDPOINT_URL={stack.endpoint_url} {credentials}",
        f"  upload to    s3://{names.recordings_bucket}/recordings/<tenant>/<id>.wav",
        f"  transcripts  s3://{names.transcripts_bucket}/transcripts/<tenant>/<id>.json",
        f"  errors       s3://{names.transcripts_bucket}/errors/<tenant>/<id>.json",
        f"  buckets      {', '.join(resources.buckets)}",
        f"  queue        {resources.queue_url}",
        f"  dead letters {resources.dlq_url}",
        f"  tables       {', '.join(resources.tables)}",
        "  poller       "
        + ("feeding the queue to functions.batch_transcription.handler" if stack.poller else "off"),
        "",
        "Try:  aws --endpoint-url "
        f"{stack.endpoint_url} s3 cp clip.wav s3://{names.recordings_bucket}/recordings/me/clip.wav",
        "Press Ctrl-C to stop.",
    ]
    return "\n".join(lines)


def _port_is_free(port: int) -> bool:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True
