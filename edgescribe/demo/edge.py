"""Demo step: a fleet device — signed model sync, offline transcription, the outbox catching up.

Everything is the real thing: the distribution service publishes the released INT8 model signed
with the stack's throwaway Ed25519 key and points the stable channel at it; an ``edge.agent.Agent``
with its own state folder, a device JWT and that key pinned runs one sync cycle against the local
API (heartbeat → ask → download from the pre-signed URL → verify signature, size and sha256 →
stage into the inactive slot → smoke test in a child process → atomic switch → health check).

Then the link is cut — the device's API address leads to a port where nothing listens — and the
inference router transcribes a clip with the installed model (``engine: onnxruntime-edge``),
queueing the transcript in the durable outbox; a correction of it is queued too. With the link
back, the next cycle flushes the outbox, and the step proves "exactly once": the stored
correction has one version, a replayed send (what a crash between the server's answer and the
local delete causes) is recognised as a duplicate, and a second flush sends nothing.
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgescribe.demo.steps import DemoContext, DemoStepError, Need
from edgescribe.local.ports import free_port
from functions.common import aws_clients
from models.runtime import storage_layout

if TYPE_CHECKING:
    from edge.agent import Agent
    from edge.config import AgentConfig
    from edge.smoke import SmokeResult
    from edgescribe.local.running_stack import LocalCredentials, LocalStack
    from edgescribe.samples import Sample

TENANT = "demo"
DEVICE_ID = "demo-kiosk-1"
#: Edge log events shown while the device syncs, in the order the updater emits them.
SHOWN_EVENTS = ("update-started", "download-complete", "smoke-test", "switched", "update-committed")
#: ``(event name, fields)``, as ``edge.logs.log_event`` records them.
Event = tuple[str, dict[str, Any]]


class EdgeDeviceStep:
    name = "edge"
    title = "Edge device: signed INT8 model sync → offline transcription → outbox flush"
    needs: frozenset[Need] = frozenset({"api"})

    def run(self, context: DemoContext) -> None:
        stack = context.stack
        if stack.api is None or stack.credentials is None:
            raise DemoStepError("the local stack was started without the API")
        version = _release(context, stack, stack.credentials)
        with tempfile.TemporaryDirectory(prefix="edgescribe-device-") as folder:
            timeline: list[Event] = []
            agent = _device(stack, stack.credentials, Path(folder), timeline)
            _sync(context, agent, version, timeline)
            transcript_id, sample = _offline(context, agent)
            feedback_id, key, payload = _queue_correction(context, agent, transcript_id, sample)
            _reconnect_and_flush(context, agent, feedback_id, key, payload)


# --- the release ------------------------------------------------------------------------------


def _release(context: DemoContext, stack: LocalStack, credentials: LocalCredentials) -> int:
    from functions.distribution.service import service_from_environment

    service = service_from_environment()
    published = service.publish(stack.edge_model_dir)
    service.promote("stable", published.version, actor="demo", reason="demo release")
    context.say(
        f"published {published.name} v{published.version} "
        f"({published.size / 1e6:.1f} MB, sha256 {published.sha256[:12]}…) signed with the dev key "
        f"{credentials.signer.key_id[:12]}… (expires {published.expires_at:%Y-%m-%d}); "
        "promoted to stable (100 %)"
    )
    return published.version


# --- the device -------------------------------------------------------------------------------


def _device(
    stack: LocalStack,
    credentials: LocalCredentials,
    state_dir: Path,
    timeline: list[Event],
) -> Agent:
    """A fresh device (no model yet) that pins the stack's signing key; its smoke test is the real
    one (a child process on the bundled clip), observed so the demo can print what it heard."""
    from edge.agent import Agent

    config = device_config(stack, credentials, DEVICE_ID, state_dir)

    def observed_smoke_test(model_dir: Path) -> SmokeResult:
        result = _real_smoke_test(config, model_dir)
        heard = {"heard": repr(result.text), "seconds": round(result.seconds, 2)}
        timeline.append(("smoke-test", {"slot": model_dir.name, **heard}))
        return result

    return Agent(config, smoke_test=observed_smoke_test)


def device_config(
    stack: LocalStack, credentials: LocalCredentials, device_id: str, state_dir: Path
) -> AgentConfig:
    """An agent of ``TENANT`` talking to the local API, pinning the stack's signing key."""
    from edge.config import AgentConfig, validate_config

    assert stack.api is not None
    return validate_config(
        AgentConfig(
            device_id=device_id,
            api_url=stack.api.url,
            state_dir=state_dir,
            trusted_keys=(credentials.trusted_key,),
            token=credentials.tokens.issue(subject=device_id, tenant=TENANT, role="device"),
            download_grace_seconds=60.0,
        )
    )


def _real_smoke_test(config: AgentConfig, model_dir: Path) -> SmokeResult:
    from edge.smoke import run_smoke_test

    return run_smoke_test(
        model_dir,
        clip=config.smoke_clip,
        max_cer=config.smoke_max_cer,
        timeout_seconds=config.smoke_timeout_seconds,
        intra_op_threads=config.intra_op_threads,
    )


def _sync(context: DemoContext, agent: Agent, version: int, timeline: list[Event]) -> None:
    context.say(
        f"device {DEVICE_ID} (no model yet, pins the dev key) runs one sync cycle against "
        f"{agent.config.api_url}:"
    )
    started = time.monotonic()
    with _captured_events(timeline):
        result = agent.sync_once()
    seconds = time.monotonic() - started
    switched = False
    for event, fields in timeline:
        if event in SHOWN_EVENTS:
            switched = switched or event == "switched"
            label = "health check" if event == "smoke-test" and switched else event
            details = ", ".join(f"{k}={v}" for k, v in fields.items())
            context.say(f"    {label:<18} {details}")
    outcome = result.update.outcome if result.update else None
    if outcome is None or outcome.result != "installed":
        reason = outcome.reason if outcome else f"the server offered {result.action!r}"
        raise DemoStepError(
            f"the device did not install v{version}: {reason}"
            + (
                " — the release transcribes the smoke clip as nothing, so the device refused it "
                "(as it must); release a trained model and rerun"
                if "empty text" in reason
                else ""
            )
        )
    state = agent.updater.store.load()
    installed = state.installed
    assert installed is not None
    context.say(
        f"installed {installed.name} v{installed.version} in slot {installed.slot} after "
        f"{result.action} in {seconds:.1f} s: {result.update.fetched_bytes if result.update else 0} "
        f"bytes fetched, Ed25519 signature + size + sha256 verified, staged, smoke-tested, "
        f"switched atomically"
    )
    if installed.version != version:
        raise DemoStepError(f"the device runs v{installed.version}, not the promoted v{version}")


@contextmanager
def _captured_events(into: list[Event] | None = None) -> Iterator[list[Event]]:
    """The agent's structured log events, collected instead of printed as JSON on stderr."""
    events: list[Event] = [] if into is None else into

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            fields = getattr(record, "fields", None)
            events.append((record.getMessage(), dict(fields) if isinstance(fields, dict) else {}))

    logger = logging.getLogger("edge")
    handler = Collect(level=logging.INFO)
    saved = (logger.level, logger.propagate)
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    try:
        yield events
    finally:
        logger.removeHandler(handler)
        logger.setLevel(saved[0])
        logger.propagate = saved[1]


# --- offline ----------------------------------------------------------------------------------


def _offline(context: DemoContext, agent: Agent) -> tuple[str, Sample]:
    from edge.client import DeviceClient
    from edge.router import InferenceRouter, LocalModel
    from models.runtime.fallback import CircuitBreaker

    sample = context.samples[-1] if context.samples else None
    if sample is None:
        raise DemoStepError("no sample clip to transcribe offline")
    dead_link = f"http://127.0.0.1:{free_port()}"
    config = agent.config
    router = InferenceRouter(
        device_id=config.device_id,
        local=LocalModel(agent.updater.slots, intra_op_threads=config.intra_op_threads),
        outbox=agent.outbox,
        client=DeviceClient(dead_link, config.device_id, config.bearer_token, timeout_seconds=5),
        breaker=CircuitBreaker(
            failure_threshold=config.breaker_failure_threshold,
            reset_timeout=config.breaker_reset_seconds,
        ),
        prefer_cloud=True,
        cloud_timeout_seconds=5.0,
    )
    context.say(f"link cut: the device's API address now leads to {dead_link} (nothing listens)")
    transcript_id = f"offline-{sample.path.stem.replace('_', '-')}"
    started = time.monotonic()
    with _captured_events():
        try:
            routed = router.transcribe(
                sample.path.read_bytes(), filename=sample.path.name, transcript_id=transcript_id
            )
        finally:
            router.close()
    transcript = routed.transcript
    context.say(
        f"transcribe {sample.path.name}: cloud first → {_short(routed.cloud_error)} → local model"
    )
    context.say(
        f"    engine      {transcript.engine} ({transcript.model.name} v{transcript.model.version}) "
        f"in {time.monotonic() - started:.2f} s"
    )
    context.say(f"    transcript  {transcript.text!r}")
    if transcript.engine != "onnxruntime-edge":
        raise DemoStepError(f"offline transcription ran on {transcript.engine}, not on the device")
    if not routed.queued:
        raise DemoStepError("the offline transcript was not queued for upload")
    return transcript_id, sample


def _queue_correction(
    context: DemoContext, agent: Agent, transcript_id: str, sample: Sample
) -> tuple[str, str, dict[str, Any]]:
    from edge.router import correction_payload

    key, payload = correction_payload(agent.outbox, transcript_id, sample.text)
    agent.outbox.enqueue("correction", key, payload)
    stats = agent.outbox.stats()
    context.say(
        f"correction queued offline ({sample.text!r}); outbox: {stats.transcripts} transcript(s) "
        f"+ {stats.corrections} correction(s) waiting in SQLite"
    )
    return str(payload["feedback_id"]), key, payload


# --- back online ------------------------------------------------------------------------------


def _reconnect_and_flush(
    context: DemoContext, agent: Agent, client_feedback_id: str, key: str, payload: dict[str, Any]
) -> None:
    with _captured_events():
        result = agent.sync_once()
    flush = result.flush
    if flush is None:
        raise DemoStepError("the sync cycle did not flush the outbox")
    stats = agent.outbox.stats()
    context.say(
        f"link back: next cycle → heartbeat, offer '{result.action}', outbox flush sent "
        f"{flush.sent}, dead-lettered {flush.dead_lettered}, still queued {flush.remaining}"
    )
    if stats.corrections:
        raise DemoStepError(f"{stats.corrections} correction(s) still queued after the flush")
    transcripts_bucket = context.stack.names.transcripts_bucket
    transcript_key = storage_layout.transcript_key(TENANT, str(payload["transcript_id"]))
    if stats.transcripts:  # an API without the device-transcripts route: kept, not lost
        context.say(f"    {stats.transcripts} offline transcript(s) kept for a later retry:")
        context.say(f"    {flush.stopped_by or 'no reason given'}")
    else:
        _show_cloud_copy(context, agent, str(payload["transcript_id"]))
        context.say(f"    transcript  s3://{transcripts_bucket}/{transcript_key}")

    feedback_bucket = context.stack.names.feedback_bucket
    feedback_key = _feedback_key(client_feedback_id, payload)
    context.say(f"    correction  s3://{feedback_bucket}/{feedback_key}")
    first = _stored_versions(feedback_bucket, feedback_key)
    agent.client.post_feedback(payload, key)  # a replay, as after a crash before the local delete
    replayed = _stored_versions(feedback_bucket, feedback_key)
    again = agent.flush_outbox()
    transcript_versions = (
        _stored_versions(transcripts_bucket, transcript_key) if not stats.transcripts else 1
    )
    context.say(
        f"    exactly once: {first} stored version of the correction, {transcript_versions} of "
        f"the transcript; a replayed correction (as after a crash before the local delete) is "
        f"answered as a duplicate, still {replayed}; a second flush sent {again.sent}"
    )
    if first != 1 or replayed != 1 or transcript_versions != 1 or again.sent:
        raise DemoStepError(
            f"not exactly once: correction stored {replayed}×, transcript {transcript_versions}×, "
            f"second flush sent {again.sent}"
        )


def _show_cloud_copy(context: DemoContext, agent: Agent, transcript_id: str) -> None:
    """The offline transcript, now served by the cloud like any other (the device's own token)."""
    from edge.errors import AgentError

    try:
        status = agent.client.request("GET", f"v1/transcriptions/{transcript_id}").json()
    except AgentError as exc:
        raise DemoStepError(f"the cloud does not serve the uploaded transcript: {exc}") from exc
    engine = (status.get("transcript") or {}).get("engine")
    context.say(
        f"    GET /v1/transcriptions/{transcript_id} → {status.get('status')} (engine {engine})"
    )
    if status.get("status") != "completed" or engine != "onnxruntime-edge":
        raise DemoStepError(f"the cloud's copy of {transcript_id} is {status}")


def _feedback_key(client_feedback_id: str, payload: dict[str, Any]) -> str:
    """Where the API stores this correction (its id is derived from the device's feedback id)."""
    from functions.api.feedback_store import derive_feedback_id

    feedback_id = derive_feedback_id(
        TENANT, client_feedback_id, str(payload["transcript_id"]), str(payload["corrected_text"])
    )
    return storage_layout.feedback_key(
        feedback_id, datetime.fromisoformat(str(payload["corrected_at"]))
    )


def _stored_versions(bucket: str, key: str) -> int:
    listing = aws_clients.s3_client().list_object_versions(Bucket=bucket, Prefix=key)
    return sum(1 for version in listing.get("Versions", []) if version.get("Key") == key)


def _short(text: str | None, limit: int = 80) -> str:
    line = (text or "no reason given").splitlines()[0]
    return line if len(line) <= limit else line[: limit - 3] + "..."


STEP = EdgeDeviceStep()
