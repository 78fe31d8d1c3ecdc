"""``edgescribe model keygen|publish|promote|rollback|status|refresh``: model distribution by hand.

Operators run these against the models bucket of a stack (``EDGESCRIBE_STACK`` / ``MODELS_BUCKET``;
locally ``AWS_ENDPOINT_URL`` points at the moto server). They call the same
``functions.distribution.service`` the distribution function and the API's admin routes call.

    edgescribe model keygen --out signing-key.pem --public signing-key.pub.pem
    edgescribe model publish models/released/edgescribe-edge --signing-key signing-key.pem
    edgescribe model promote canary 3 --percent 10 --reason "CER -2 % on cv_en"
    edgescribe model rollback canary --reason "crash reports from the canary cohort"
    edgescribe model status
"""

from __future__ import annotations

import argparse
import getpass
import json
import socket
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgescribe.cli import UserError

if TYPE_CHECKING:
    from functions.distribution.service import DistributionService, DistributionStatus


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "model",
        help="publish, promote and roll back model versions",
        description="Model distribution: signed versions, channels shadow|canary|stable.",
    )
    commands = parser.add_subparsers(dest="model_command", required=True)

    keygen = commands.add_parser("keygen", help="create an Ed25519 signing key pair")
    keygen.add_argument("--out", type=Path, required=True, help="private key PEM (created, 0600)")
    keygen.add_argument("--public", type=Path, default=None, help="also write the public key PEM")
    keygen.set_defaults(handler=run_keygen)

    publish = commands.add_parser("publish", help="upload a model folder as a signed version")
    publish.add_argument(
        "model_dir",
        type=Path,
        nargs="?",
        default=None,
        help="folder with model.onnx + manifest.json (default: the released edge model)",
    )
    publish.add_argument("--version", type=int, default=None, help="publish as this version")
    _signing_arguments(publish)
    _bucket_argument(publish)
    publish.set_defaults(handler=run_publish)

    promote = commands.add_parser("promote", help="point a channel at a published version")
    promote.add_argument("channel", choices=("shadow", "canary", "stable"))
    promote.add_argument("version", type=int)
    promote.add_argument("--percent", type=float, default=None, help="rollout percentage")
    promote.add_argument("--name", default=None, help="model name (default: the channel's)")
    _change_arguments(promote)
    _signing_arguments(promote)
    _bucket_argument(promote)
    promote.set_defaults(handler=run_promote)

    rollback = commands.add_parser("rollback", help="return a channel to an older version")
    rollback.add_argument("channel", choices=("shadow", "canary", "stable"))
    rollback.add_argument("--to-version", type=int, default=None, help="default: the previous one")
    _change_arguments(rollback)
    _signing_arguments(rollback)
    _bucket_argument(rollback)
    rollback.set_defaults(handler=run_rollback)

    status = commands.add_parser("status", help="channels, versions, expiry and history")
    status.add_argument("--json", action="store_true", help="machine-readable output")
    status.add_argument("--history", type=int, default=5, help="history entries per channel (5)")
    _bucket_argument(status)
    status.set_defaults(handler=run_status)

    refresh = commands.add_parser("refresh", help="re-sign manifests and directives near expiry")
    _signing_arguments(refresh)
    _bucket_argument(refresh)
    refresh.set_defaults(handler=run_refresh)


def _signing_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--signing-key", type=Path, default=None, help="Ed25519 private key PEM")
    group.add_argument(
        "--signing-key-secret", default=None, help="Secrets Manager secret id holding the PEM"
    )


def _bucket_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--bucket", default=None, help="models bucket (default: the stack's)")


def _change_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--reason", default="", help="why (kept in the channel history)")
    parser.add_argument("--actor", default=None, help="who (default: user@host)")


def _actor(args: argparse.Namespace) -> str:
    return str(args.actor or f"{getpass.getuser()}@{socket.gethostname()}")


def _service(args: argparse.Namespace) -> DistributionService:
    from functions.common.aws_clients import s3_client
    from functions.common.environment import resource_name
    from functions.distribution.errors import DistributionError
    from functions.distribution.service import DistributionService
    from functions.distribution.signing import (
        ManifestSigner,
        signer_from_environment,
        signer_from_file,
        signer_from_secret,
    )

    try:
        signer: ManifestSigner | None
        if getattr(args, "signing_key", None):
            signer = signer_from_file(args.signing_key)
        elif getattr(args, "signing_key_secret", None):
            signer = signer_from_secret(args.signing_key_secret)
        else:
            signer = signer_from_environment()
    except DistributionError as exc:
        raise UserError(str(exc)) from exc
    return DistributionService(
        s3_client(), args.bucket or resource_name("MODELS_BUCKET"), signer=signer
    )


def _guarded(action: Any) -> Any:
    """Run ``action`` turning distribution and AWS failures into ``UserError``s."""
    from botocore.exceptions import BotoCoreError, ClientError

    from functions.distribution.errors import DistributionError

    try:
        return action()
    except DistributionError as exc:
        raise UserError(str(exc)) from exc
    except ClientError as exc:
        error = exc.response.get("Error", {})
        raise UserError(
            f"AWS refused {exc.operation_name}: {error.get('Code')}: {error.get('Message', '')}"
        ) from exc
    except BotoCoreError as exc:
        raise UserError(f"cannot reach AWS: {exc}") from exc


def run_keygen(args: argparse.Namespace) -> int:
    from functions.distribution.errors import SigningKeyError
    from functions.distribution.signing import generate_signing_key

    try:
        signer = generate_signing_key(args.out, args.public)
    except SigningKeyError as exc:
        raise UserError(str(exc)) from exc
    print(f"signing key {args.out} (key id {signer.key_id})")
    if args.public:
        print(f"public key  {args.public}: pin it on devices")
    return 0


def run_publish(args: argparse.Namespace) -> int:
    from models.runtime.artifacts import released_model_dir

    service = _service(args)
    model_dir = args.model_dir or released_model_dir()
    published = _guarded(lambda: service.publish(model_dir, version=args.version))
    verb = "already published" if published.already_published else "published"
    print(
        f"{verb}: {published.name} v{published.version} ({published.size} bytes, sha256 "
        f"{published.sha256[:12]}…) at {published.manifest_key}, expires {published.expires_at:%Y-%m-%d}"
    )
    return 0


def run_promote(args: argparse.Namespace) -> int:
    service = _service(args)
    state = _guarded(
        lambda: service.promote(
            args.channel,
            args.version,
            actor=_actor(args),
            rollout_percent=args.percent,
            name=args.name,
            reason=args.reason,
        )
    )
    print(f"{state.channel}: {state.name} v{state.version} at {state.rollout_percent:g} %")
    return 0


def run_rollback(args: argparse.Namespace) -> int:
    service = _service(args)
    states = _guarded(
        lambda: service.rollback(
            args.channel, actor=_actor(args), to_version=args.to_version, reason=args.reason
        )
    )
    for state in states:
        withdrawn = (
            ", ".join(str(v) for v in state.rollback.revoked_versions) if state.rollback else ""
        )
        print(f"{state.channel}: back to {state.name} v{state.version} (withdrawn: {withdrawn})")
    return 0


def run_status(args: argparse.Namespace) -> int:
    service = _service(args)
    status = _guarded(lambda: service.status(history_limit=args.history))
    if args.json:
        print(json.dumps(status.model_dump(mode="json"), indent=2))
        return 0
    _print_status(status)
    return 0


def run_refresh(args: argparse.Namespace) -> int:
    service = _service(args)
    refreshed = _guarded(lambda: service.refresh(actor=_actor(args)))
    print("re-signed: " + (", ".join(refreshed) if refreshed else "nothing was near expiry"))
    return 0


def _print_status(status: DistributionStatus, out: Any = None) -> None:
    # Resolve stdout at call time: a default bound at import time outlives redirections.
    out = out if out is not None else sys.stdout
    print(f"models bucket {status.bucket}", file=out)
    for name, versions in status.published_versions.items():
        print(f"published {name}: {', '.join(map(str, versions)) or 'none'}", file=out)
    for entry in status.channels:
        state = entry.state
        if state is None:
            print(f"{entry.channel:<7} -", file=out)
            continue
        expires = f"{entry.manifest_expires_at:%Y-%m-%d}" if entry.manifest_expires_at else "never"
        rollback = (
            f", withdrawn {state.rollback.revoked_versions}" if state.rollback is not None else ""
        )
        print(
            f"{entry.channel:<7} {state.name} v{state.version} at {state.rollout_percent:g} % "
            f"(manifest expires {expires}{rollback}) — {state.updated_by}, "
            f"{state.updated_at:%Y-%m-%d %H:%M}",
            file=out,
        )
        for change in entry.history:
            print(
                f"          {change.at:%Y-%m-%d %H:%M} {change.action} "
                f"{change.from_version} → {change.to_version} by {change.actor}"
                + (f": {change.reason}" if change.reason else ""),
                file=out,
            )
