"""``edgescribe loop status|run-once``: the learning loop by hand, against a stack's buckets.

    edgescribe loop status                 # jobs, their gate tables and latest decisions, channels
    edgescribe loop run-once               # ingest → trigger → (local) training job → advance
    edgescribe loop run-once --force --min-shadow-samples 8 --canary-soak-minutes 0

``run-once`` is one turn of what the cloud does on schedules (the retraining trigger and the
distribution function's ``advance``), run in order and synchronously: a local training job is
waited for, so its gate verdict and the next promotion step show in the same run. Policies are the
functions' defaults unless flags (or ``EDGESCRIBE_RETRAIN_*`` variables) say otherwise.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from edgescribe.cli import UserError

if TYPE_CHECKING:
    from collections.abc import Callable

    from functions.distribution.service import DistributionService
    from functions.learning.promotion import PromotionDecision, PromotionPolicy
    from functions.learning.records import GateReport
    from functions.learning.trigger import TriggerRun

#: How long ``run-once`` waits for a local training job by default.
DEFAULT_JOB_TIMEOUT_SECONDS = 900.0


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "loop",
        help="the learning loop: status, or one turn (ingest, train, gate, promote)",
        description="Continuous learning: corrections → candidate → gate → shadow → canary → stable.",
    )
    commands = parser.add_subparsers(dest="loop_command", required=True)

    status = commands.add_parser("status", help="training jobs, gate verdicts and channels")
    status.add_argument("--jobs", type=int, default=5, help="newest jobs to show (5)")
    status.add_argument("--json", action="store_true", help="machine-readable output")
    status.set_defaults(handler=run_status)

    once = commands.add_parser("run-once", help="ingest, trigger, train (local), advance")
    once.add_argument("--force", action="store_true", help="start a job below the thresholds")
    once.add_argument("--no-wait", action="store_true", help="do not wait for a local job")
    once.add_argument("--timeout", type=float, default=DEFAULT_JOB_TIMEOUT_SECONDS)
    once.add_argument("--min-shadow-samples", type=int, default=None)
    once.add_argument("--canary-soak-minutes", type=float, default=None)
    once.add_argument("--min-canary-devices", type=int, default=None)
    once.add_argument("--signing-key", default=None, help="Ed25519 private key PEM for publishing")
    once.add_argument("--json", action="store_true", help="machine-readable output")
    once.set_defaults(handler=run_once_command)


@dataclass
class TurnReport:
    """What one ``run-once`` did, stage by stage."""

    trigger: TriggerRun
    job_exit_status: int | None = None
    gate: GateReport | None = None
    decisions: list[PromotionDecision] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "trigger": self.trigger.model_dump(mode="json"),
            "job_exit_status": self.job_exit_status,
            "gate": self.gate.model_dump(mode="json") if self.gate else None,
            "decisions": [decision.as_dict() for decision in self.decisions],
        }


def promotion_policy(
    *,
    min_shadow_samples: int | None = None,
    canary_soak_minutes: float | None = None,
    min_canary_devices: int | None = None,
) -> PromotionPolicy:
    from functions.learning.promotion import PromotionPolicy

    overrides: dict[str, Any] = {}
    if min_shadow_samples is not None:
        overrides["min_shadow_samples"] = min_shadow_samples
    if canary_soak_minutes is not None:
        overrides["canary_soak"] = timedelta(minutes=canary_soak_minutes)
    if min_canary_devices is not None:
        overrides["min_canary_healthy_devices"] = min_canary_devices
    try:
        return PromotionPolicy(**overrides)
    except ValueError as exc:
        raise UserError(f"promotion policy: {exc}") from exc


def trigger_once(*, force: bool = False, now: datetime | None = None) -> tuple[TriggerRun, Any]:
    """Ingest + decide + maybe start, for this process's stack; returns the run and its launcher."""
    from functions.common.aws_clients import s3_client
    from functions.common.environment import resource_name
    from functions.learning.launchers import launcher_from_environment
    from functions.learning.trigger import TriggerPolicy, run_trigger

    launcher = launcher_from_environment()
    run = run_trigger(
        s3_client(),
        feedback_bucket=resource_name("FEEDBACK_BUCKET"),
        models_bucket=resource_name("MODELS_BUCKET"),
        recordings_bucket=resource_name("RECORDINGS_BUCKET"),
        launcher=launcher,
        now=now or datetime.now(UTC),
        policy=TriggerPolicy.from_environment(),
        force=force,
    )
    return run, launcher


def wait_for_job(launcher: Any, run: TriggerRun, timeout: float) -> int | None:
    """Exit status of the job ``run`` started, when it runs as a local process (else None)."""
    from functions.learning.launchers import LocalProcessLauncher

    if run.job is None or not isinstance(launcher, LocalProcessLauncher):
        return None
    return launcher.wait(run.job.runner, timeout=timeout)


def gate_report(job_id: str) -> GateReport | None:
    from functions.common.aws_clients import s3_client
    from functions.common.environment import resource_name
    from functions.learning.job_store import JobStore
    from functions.learning.records import GateReport

    body = JobStore(s3_client(), resource_name("MODELS_BUCKET")).read_file(job_id, "gate.json")
    return None if body is None else GateReport.model_validate_json(body)


def advance(
    service: DistributionService, policy: PromotionPolicy, *, job_id: str | None = None
) -> list[PromotionDecision]:
    from functions.learning.promotion import AdvanceFailedError, advance_jobs_from_environment

    try:
        return advance_jobs_from_environment(service, job_id=job_id, policy=policy)
    except AdvanceFailedError as exc:
        raise UserError(str(exc)) from exc


def run_turn(
    service: DistributionService,
    policy: PromotionPolicy,
    *,
    force: bool = False,
    wait: bool = True,
    timeout: float = DEFAULT_JOB_TIMEOUT_SECONDS,
    say: Callable[[str], None] | None = None,
) -> TurnReport:
    """ingest → trigger → wait for a local job → advance every active job."""
    run, launcher = trigger_once(force=force)
    report = TurnReport(trigger=run)
    if say:
        _print_trigger(run, say)
    if wait and run.job is not None:
        report.job_exit_status = wait_for_job(launcher, run, timeout)
        report.gate = gate_report(run.job.job_id)
        if say and report.gate is not None:
            from functions.learning.gate import render_markdown

            say(render_markdown(report.gate))
    report.decisions = advance(service, policy)
    if say:
        for decision in report.decisions:
            say(f"{decision.job_id}: {decision.detail}")
    return report


def run_once_command(args: argparse.Namespace) -> int:
    from edgescribe.commands.model import _guarded, _service

    args.signing_key_secret = None
    args.bucket = None
    service = _service(args)
    policy = promotion_policy(
        min_shadow_samples=args.min_shadow_samples,
        canary_soak_minutes=args.canary_soak_minutes,
        min_canary_devices=args.min_canary_devices,
    )
    report: TurnReport = _guarded(
        lambda: run_turn(
            service,
            policy,
            force=args.force,
            wait=not args.no_wait,
            timeout=args.timeout,
            say=None if args.json else print,
        )
    )
    if args.json:
        print(json.dumps(report.as_dict(), indent=2, default=str))
    return 0 if report.job_exit_status in (None, 0) else 1


def run_status(args: argparse.Namespace) -> int:
    from edgescribe.commands.model import _guarded

    status = _guarded(lambda: loop_status(args.jobs))
    if args.json:
        print(json.dumps(status, indent=2, default=str))
        return 0
    channels = status["channels"]
    print("channels: " + ", ".join(f"{name} {value}" for name, value in channels.items()))
    if not status["jobs"]:
        print("no training jobs yet")
    for job in status["jobs"]:
        candidate = job["candidate"]
        label = f"{candidate['name']} v{candidate['version']}" if candidate else "no candidate yet"
        print(f"{job['job_id']}  {job['status']:<11} {label}  (updated {job['updated_at']})")
        if job["detail"]:
            print(f"    {job['detail']}")
        gate = job.get("gate")
        if gate:
            for item in gate["sets"]:
                print(
                    f"    gate {item['name']:<15} {item['baseline_cer']:.1%} -> "
                    f"{item['candidate_cer']:.1%} ({'ok' if item['passed'] else 'FAILED'})"
                )
    return 0


def loop_status(limit: int) -> dict[str, Any]:
    from functions.common.aws_clients import s3_client
    from functions.common.environment import resource_name
    from functions.distribution.channels import ChannelStore
    from functions.learning.job_store import JobStore

    s3 = s3_client()
    bucket = resource_name("MODELS_BUCKET")
    store = JobStore(s3, bucket)
    jobs = []
    for record in store.list_jobs(limit=limit):
        entry = record.model_dump(mode="json")
        gate = store.read_file(record.job_id, "gate.json")
        entry["gate"] = json.loads(gate) if gate else None
        jobs.append(entry)
    channels = {
        name: (f"{state.name} v{state.version} at {state.rollout_percent:g} %" if state else "-")
        for name, state in ChannelStore(s3, bucket).read_all().items()
    }
    return {"channels": channels, "jobs": jobs}


def _print_trigger(run: TriggerRun, say: Callable[[str], None]) -> None:
    if run.ingest is not None:
        ingest = run.ingest
        routes = ", ".join(f"{route} {count}" for route, count in sorted(ingest.by_route.items()))
        reasons = ", ".join(f"{why}: {count}" for why, count in sorted(ingest.by_reason.items()))
        say(
            f"ingest: {ingest.assessed} new correction(s) assessed: {ingest.accepted} accepted"
            f"{f' ({routes})' if routes else ''}, {ingest.rejected} rejected"
            f"{f' ({reasons})' if reasons else ''}"
        )
    for job_id, reason in run.settled.items():
        say(f"{job_id}: marked failed ({reason})")
    if run.decision is not None:
        verb = "start" if run.decision.start else "no job"
        say(f"trigger: {verb}: {run.decision.reason}")
    if run.job is not None:
        say(f"started {run.job.job_id} as {run.job.runner}")
    if run.note:
        say(run.note)
