"""``edgescribe-agent``: run the device agent, or one piece of it, from a shell.

Commands::

    edgescribe-agent run                    the loop (heartbeat → ask → update → flush), forever
    edgescribe-agent sync                   one cycle; exit 0 ok, 3 link/server down, 4 update refused
    edgescribe-agent transcribe FILE        cloud if reachable, else the local model (--offline forces it)
    edgescribe-agent correct ID TEXT        queue a correction of a transcript for upload
    edgescribe-agent status                 installed model, pending update, outbox, trust (JSON)
    edgescribe-agent init --model-dir DIR   provision the first model (factory install)
    edgescribe-agent bench-fleet            the fleet simulation (see ``edge.fleet``)

Configuration: ``--config FILE`` (TOML) or ``EDGESCRIBE_AGENT_CONFIG``, overridden per setting by
``EDGESCRIBE_AGENT_<SETTING>`` (see ``edge.config``). Logs are JSON lines on stderr; results go to
stdout. Errors the operator can fix print one line and exit 2 — never a traceback.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from edge.errors import AgentError, TransientError
from edge.logs import configure_logging

if TYPE_CHECKING:
    from edge.agent import Agent
    from edge.router import InferenceRouter

EXIT_OK = 0
EXIT_USAGE = 2
EXIT_TRANSIENT = 3
EXIT_REJECTED = 4


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="edgescribe-agent",
        description="EdgeScribe edge agent: signed model sync, offline ASR.",
    )
    parser.add_argument("--config", type=Path, default=None, help="TOML config file")
    parser.add_argument(
        "--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"]
    )
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run the agent loop")
    run.add_argument("--max-cycles", type=int, default=None, help="stop after N cycles")
    run.set_defaults(handler=_run)

    sync = sub.add_parser("sync", help="one heartbeat/ask/update/flush cycle")
    sync.set_defaults(handler=_sync)

    transcribe = sub.add_parser("transcribe", help="transcribe an audio file")
    transcribe.add_argument("file", type=Path)
    transcribe.add_argument("--offline", action="store_true", help="do not try the cloud")
    transcribe.add_argument("--id", dest="transcript_id", default=None)
    transcribe.add_argument("--format", default="json", choices=["json", "txt", "srt", "vtt"])
    transcribe.set_defaults(handler=_transcribe)

    correct = sub.add_parser("correct", help="queue a correction of a transcript")
    correct.add_argument("transcript_id")
    correct.add_argument("text")
    correct.add_argument(
        "--original-text", default=None, help="what the model said (for transcripts not made here)"
    )
    correct.set_defaults(handler=_correct)

    status = sub.add_parser("status", help="print the agent's state as JSON")
    status.set_defaults(handler=_status)

    init = sub.add_parser("init", help="provision the first model from a released model folder")
    init.add_argument("--model-dir", type=Path, required=True)
    init.set_defaults(handler=_init)

    from edge.fleet import register as register_fleet

    register_fleet(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging(getattr(logging, args.log_level))
    try:
        return int(args.handler(args))
    except AgentError as exc:
        print(f"edgescribe-agent: error: {exc}", file=sys.stderr)
        return EXIT_TRANSIENT if isinstance(exc, TransientError) else EXIT_USAGE
    except ValueError as exc:  # AudioDecodeError and friends: bad input, named
        print(f"edgescribe-agent: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130


def _agent(args: argparse.Namespace) -> Agent:
    from edge.agent import Agent
    from edge.config import load_config

    return Agent(load_config(args.config))


def _run(args: argparse.Namespace) -> int:
    agent = _agent(args)
    agent.recover()
    agent.run(max_cycles=args.max_cycles)
    return EXIT_OK


def _sync(args: argparse.Namespace) -> int:
    agent = _agent(args)
    agent.recover()
    result = agent.sync_once()
    outcome = result.update.outcome if result.update else None
    print(
        json.dumps(
            {
                "action": result.action,
                "outcome": outcome.model_dump(mode="json") if outcome else None,
                "fetched_bytes": result.update.fetched_bytes if result.update else 0,
                "outbox_sent": result.flush.sent if result.flush else 0,
            }
        )
    )
    return EXIT_REJECTED if result.rejected else EXIT_OK


def _router(agent: Agent) -> InferenceRouter:
    from edge.router import InferenceRouter, LocalModel
    from models.runtime.fallback import CircuitBreaker

    config = agent.config
    return InferenceRouter(
        device_id=config.device_id,
        local=LocalModel(agent.updater.slots, intra_op_threads=config.intra_op_threads),
        outbox=agent.outbox,
        client=agent.client,
        breaker=CircuitBreaker(
            failure_threshold=config.breaker_failure_threshold,
            reset_timeout=config.breaker_reset_seconds,
        ),
        prefer_cloud=config.prefer_cloud,
        cloud_timeout_seconds=config.cloud_timeout_seconds,
    )


def _transcribe(args: argparse.Namespace) -> int:
    from models.runtime.writers import render

    agent = _agent(args)
    agent.recover()
    try:
        audio = args.file.read_bytes()
    except OSError as exc:
        print(f"edgescribe-agent: error: cannot read {args.file}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    router = _router(agent)
    try:
        routed = router.transcribe(
            audio,
            filename=args.file.name,
            transcript_id=args.transcript_id or uuid.uuid4().hex,
            offline=args.offline,
        )
    finally:
        router.close()
    print(render(routed.transcript, args.format), end="" if args.format != "json" else "\n")
    if routed.queued:
        print(f"queued for upload (cloud unavailable: {routed.cloud_error})", file=sys.stderr)
    return EXIT_OK


def _correct(args: argparse.Namespace) -> int:
    from edge.router import correction_payload

    agent = _agent(args)
    key, payload = correction_payload(agent.outbox, args.transcript_id, args.text)
    if args.original_text is not None:
        payload["original_text"] = args.original_text
    agent.outbox.enqueue("correction", key, payload)
    print(json.dumps({"queued": key, "feedback_id": payload["feedback_id"]}))
    return EXIT_OK


def _status(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    agent = _agent(args)
    state = agent.updater.store.load()
    trust = agent.updater.trust_root()
    print(
        json.dumps(
            {
                "device_id": agent.config.device_id,
                "active_slot": agent.updater.slots.active(),
                "state": state.model_dump(mode="json"),
                "outbox": asdict(agent.outbox.stats()),
                "trust_root": {
                    "version": trust.version,
                    "threshold": trust.threshold,
                    "keys": len(trust.keys),
                },
            },
            indent=2,
        )
    )
    return EXIT_OK


def _init(args: argparse.Namespace) -> int:
    agent = _agent(args)
    agent.recover()
    installed = agent.updater.provision(args.model_dir)
    print(json.dumps(installed.model_dump()))
    return EXIT_OK


if __name__ == "__main__":
    raise SystemExit(main())
