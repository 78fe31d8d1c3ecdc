"""Demo step: one turn of the learning loop, from users' corrections to a device running the result.

The released model has never heard drug names. Thirty-two recordings of them (a training voice,
``models/learning/clips``) are uploaded like any recording; the batch pipeline transcribes them
(badly), and an app corrects each transcript through ``POST /v1/feedback``. Then, all real:

1. ``edgescribe loop run-once`` logic: the retraining trigger ingests and assesses the corrections,
   sees the threshold crossed and starts the training job as a local process; the job fine-tunes
   the stable checkpoint with replay, exports an INT8 candidate and runs the evaluation gate;
   ``advance`` publishes the candidate (signed) and puts it on the shadow channel;
2. live traffic: new drug-name recordings, transcribed by stable for the user while the batch
   function runs the shadow candidate beside it; their corrections give both models a CER;
3. ``advance`` judges the shadow evidence → canary; a device pinned to canary installs it and
   reports healthy → ``advance`` → stable; a kiosk on stable installs it and transcribes a drug-name
   clip offline with it.

Thresholds are the product's, scaled to a demo: 20 corrections start a job, 8 shadow samples
suffice, the canary soak is zero (``LOOP_ENVIRONMENT`` / ``DEMO_POLICY``).
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from edgescribe.demo.loop_traffic import (
    TENANT,
    CorrectedRecording,
    app_token,
    correct_recordings,
    wait_for_shadow_results,
)
from edgescribe.demo.steps import DemoContext, DemoStepError, Need

if TYPE_CHECKING:
    from edge.agent import Agent
    from edgescribe.local.running_stack import LocalCredentials, LocalStack
    from functions.distribution.service import DistributionService
    from functions.learning.promotion import PromotionDecision, PromotionPolicy

#: The loop's thresholds for a demo-sized stream of corrections (the defaults assume a fleet).
LOOP_ENVIRONMENT = {
    "EDGESCRIBE_RETRAIN_MIN_CORRECTIONS": "20",
    "EDGESCRIBE_RETRAIN_MAX_STEPS": "150",
    "EDGESCRIBE_SHADOW_SAMPLE_PERCENT": "100",
    "EDGESCRIBE_SHADOW_CHANNEL_TTL_SECONDS": "0",
    "EDGESCRIBE_MODEL_CHANNEL_TTL_SECONDS": "0",
}
MIN_SHADOW_SAMPLES = 8
CANARY_DEVICE = "demo-canary-1"
KIOSK_DEVICE = "demo-kiosk-2"


class LearningLoopStep:
    name = "loop"
    title = "Learning loop: corrections → fine-tune → gate → shadow → canary → stable → device"
    needs: frozenset[Need] = frozenset({"api", "poller"})

    def run(self, context: DemoContext) -> None:
        from edgescribe.commands.loop import promotion_policy, run_turn
        from edgescribe.local.running_stack import temporary_environment
        from functions.distribution.service import service_from_environment
        from models.learning.clips import load_clips
        from models.runtime.artifacts import DEFAULT_MODEL_NAME

        stack = context.stack
        if stack.api is None or stack.credentials is None:
            raise DemoStepError("the local stack was started without the API")
        policy = promotion_policy(
            min_shadow_samples=MIN_SHADOW_SAMPLES, canary_soak_minutes=0, min_canary_devices=1
        )
        with temporary_environment(LOOP_ENVIRONMENT), _devices(stack) as (canary, kiosk):
            service = service_from_environment()
            stable = ensure_release(context, service, stack)
            for agent in (canary, kiosk):
                _sync(context, agent, expect=stable)
            token = app_token(stack.credentials)
            clip = load_clips("domain_eval")[0]
            before = _offline_text(kiosk, clip.path)

            corrected = correct_recordings(context, token, load_clips("corrections"), "rx")
            _show_corrections(context, corrected)
            context.say(
                "run-once: ingest → trigger → training job (local process) → gate → advance"
            )
            report = run_turn(service, policy, say=lambda line: _indented(context, line))
            if report.trigger.job is None or report.gate is None:
                raise DemoStepError("the loop started no job (see the trigger's reason above)")
            if not report.gate.passed:
                raise DemoStepError(f"the candidate failed its gate: {report.gate.reasons}")
            candidate = report.gate.candidate.version
            _expect_status(report.decisions, "shadow")

            context.say(
                "live traffic: new drug-name recordings; stable answers, shadow runs beside"
            )
            live = correct_recordings(context, token, load_clips("domain_eval"), "live")
            found = wait_for_shadow_results(
                context, candidate, [item.recording_id for item in live]
            )
            context.say(
                f"    {found} shadow results stored under shadow/ (never returned to users)"
            )
            _expect_status(_tick(context, service, policy), "canary")

            _sync(context, canary, expect=candidate)
            _sync(context, canary, expect=candidate)  # its next heartbeat reports v2 healthy
            _expect_status(_tick(context, service, policy), "stable")
            _sync(context, kiosk, expect=candidate)
            [cloud] = correct_recordings(context, token, [clip], "after")
            context.say(
                f"the cloud follows stable too: a new upload is transcribed by {cloud.model}"
            )
            if cloud.model != f"{DEFAULT_MODEL_NAME} v{candidate}":
                raise DemoStepError(f"the batch function still serves {cloud.model}")
            after = _offline_text(kiosk, clip.path)
            context.say(f"kiosk offline, {clip.path.name} ({clip.text!r}):")
            context.say(f"    v{stable} heard {before!r}")
            context.say(f"    v{candidate} heard {after!r}")


# --- the release the loop starts from -----------------------------------------------------------


def ensure_release(context: DemoContext, service: DistributionService, stack: LocalStack) -> int:
    """Stable edge model, published teacher, and the checkpoint fine-tuning starts from."""
    from functions.common import aws_clients
    from models.runtime import storage_layout
    from models.runtime.artifacts import CLOUD_MODEL_NAME, DEFAULT_MODEL_NAME, released_checkpoint

    state = service.channels.read("stable")
    if state is None:
        published = service.publish(stack.edge_model_dir)
        service.promote("stable", published.version, actor="demo", reason="demo release")
        version = published.version
    else:
        version = state.state.version
    if not service.models.published_versions(CLOUD_MODEL_NAME):
        service.publish(stack.cloud_model_dir)
    aws_clients.s3_client().upload_file(
        str(released_checkpoint(DEFAULT_MODEL_NAME, version)),
        stack.names.models_bucket,
        storage_layout.checkpoint_key(DEFAULT_MODEL_NAME, version),
    )
    context.say(
        f"stable: {DEFAULT_MODEL_NAME} v{version}; teacher {CLOUD_MODEL_NAME} published; "
        f"the v{version} training checkpoint is in the models bucket"
    )
    return version


# --- devices ------------------------------------------------------------------------------------


@contextmanager
def _devices(stack: LocalStack) -> Iterator[tuple[Agent, Agent]]:
    from functions.common import aws_clients
    from functions.fleet.registry import DeviceRegistry

    assert stack.credentials is not None
    with tempfile.TemporaryDirectory(prefix="edgescribe-loop-devices-") as folder:
        canary = _agent(stack, stack.credentials, CANARY_DEVICE, Path(folder) / CANARY_DEVICE)
        kiosk = _agent(stack, stack.credentials, KIOSK_DEVICE, Path(folder) / KIOSK_DEVICE)
        registry = DeviceRegistry(aws_clients.dynamodb_client(), stack.names.devices_table)
        registry.pin_channel(CANARY_DEVICE, TENANT, "canary")
        yield canary, kiosk


def _agent(stack: LocalStack, credentials: LocalCredentials, device_id: str, state: Path) -> Agent:
    from edge.agent import Agent
    from edgescribe.demo.edge import device_config

    return Agent(device_config(stack, credentials, device_id, state))


def _sync(context: DemoContext, agent: Agent, *, expect: int) -> None:
    from edgescribe.demo.edge import _captured_events

    with _captured_events():
        result = agent.sync_once()
    installed = agent.updater.store.load().installed
    version = installed.version if installed else None
    outcome = result.update.outcome.result if result.update and result.update.outcome else "-"
    context.say(
        f"device {agent.config.device_id}: offer {result.action!r} → {outcome}; runs v{version}"
    )
    if version != expect:
        raise DemoStepError(f"device {agent.config.device_id} runs v{version}, expected v{expect}")


def _offline_text(agent: Agent, clip: Path) -> str:
    """What the device's installed model hears in ``clip`` (local onnxruntime, no network)."""
    from edge.router import LocalModel
    from models.runtime.audio import decode_audio

    local = LocalModel(agent.updater.slots, intra_op_threads=1)
    transcript = local.get().transcribe(decode_audio(clip), transcript_id="loop-offline")
    return transcript.text


# --- printing -----------------------------------------------------------------------------------


def _show_corrections(context: DemoContext, corrected: list[CorrectedRecording]) -> None:
    sample = corrected[0]
    context.say(
        f"{len(corrected)} drug-name recordings transcribed by stable and corrected by the app, e.g."
    )
    context.say(f"    heard     {sample.heard!r}")
    context.say(f"    corrected {sample.corrected!r}")


def _tick(
    context: DemoContext, service: DistributionService, policy: PromotionPolicy
) -> list[PromotionDecision]:
    """The next scheduled run: ingest the new corrections (the shadow's CER evidence), no new job
    while this one is in flight, advance it."""
    from edgescribe.commands.loop import run_turn

    context.say("run-once: ingest → trigger → advance")
    report = run_turn(service, policy, say=lambda line: _indented(context, line))
    return report.decisions


def _expect_status(decisions: list[PromotionDecision], status: str) -> None:
    if status not in [decision.to_status for decision in decisions]:
        details = "; ".join(decision.detail for decision in decisions)
        raise DemoStepError(f"the candidate did not reach {status}: {details or 'no decision'}")


def _indented(context: DemoContext, text: str) -> None:
    for line in text.rstrip().splitlines():
        context.say(f"    {line}")


STEP = LearningLoopStep()
