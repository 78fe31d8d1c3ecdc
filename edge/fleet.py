"""Fleet simulation: N real agents against the real local stack, through three rollouts.

``edgescribe bench fleet`` (or ``edgescribe-agent bench-fleet``) starts the local stack (moto
server + the API function served over HTTP + the distribution service with a fresh signing key),
provisions N devices from one factory image of v1, and then:

1. **canary** — publish v2, promote it to the canary channel at 10 %: the devices the API's
   deterministic bucketing puts in the cohort update, every other device stays on v1;
2. **full rollout** — promote v2 to stable at 100 %: every device updates;
3. **broken release** — publish v3, a validly signed model that transcribes everything as ""
   (``edge.fleet_models.synthetic_model(0)``), and promote it to stable: every device downloads it,
   its smoke test rejects it, and the device stays on v2 and blocks it.

Each phase runs *rounds*: every agent runs one real cycle (heartbeat → ask → download → verify →
stage → smoke → switch → health → flush) on a worker pool, until the fleet reaches the phase's
target or ``max_rounds`` pass. Reported per phase: rounds and wall seconds to converge, model bytes
moved, updates and rejections, the fleet as the API's registry sees it. Finally every device's
active slot is validated and each distinct installed model is smoke-tested once.

Nothing is faked: the agents are ``edge.agent.Agent``s with real state dirs, JWTs the API verifies,
downloads from moto's pre-signed URLs, smoke tests in child processes. The one simplification is
time: devices cycle back-to-back in rounds instead of waiting their poll interval, so "time to
converge" is reported in rounds (multiply by the poll interval for a real fleet) and in seconds
of this machine's wall clock.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import shutil
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from edge.agent import Agent
from edge.config import AgentConfig, encode_public_key, validate_config
from edge.errors import AgentError, SmokeTestFailedError
from edge.slots import Slots
from edge.smoke import run_smoke_test
from models.runtime.manifest import ModelManifest

MODEL_NAME = "edgescribe-edge"
TENANT = "fleet"


@dataclass(frozen=True)
class FleetPlan:
    devices: int = 50
    workers: int = 4
    canary_percent: float = 10.0
    max_rounds: int = 8
    model_dir: Path | None = None  # the working model (default: the released edge model)
    work_dir: Path | None = None  # kept if given; a temporary folder otherwise


@dataclass
class PhaseReport:
    name: str
    target: str
    rounds: int = 0
    seconds: float = 0.0
    bytes_moved: int = 0
    updates_installed: int = 0
    updates_rejected: int = 0
    cycle_errors: int = 0
    converged: bool = False
    fleet_versions: dict[str, int] = field(default_factory=dict)
    registry_versions: dict[str, int] = field(default_factory=dict)


@dataclass
class Device:
    agent: Agent

    @property
    def device_id(self) -> str:
        return self.agent.config.device_id

    def installed_version(self) -> int:
        state = self.agent.updater.store.load()
        return state.installed.version if state.installed else 0

    def blocked(self, sha256: str) -> bool:
        return sha256 in self.agent.updater.store.load().blocked_artifacts


Progress = Callable[[str], None]


def run_fleet_simulation(plan: FleetPlan, progress: Progress = print) -> dict[str, Any]:
    """Run the three phases; returns the report (JSON-able)."""
    if plan.devices < 1 or plan.workers < 1:
        raise ValueError("devices and workers must be >= 1")
    with ExitStack() as stack:
        work = plan.work_dir or Path(
            stack.enter_context(tempfile.TemporaryDirectory(prefix="fleet-"))
        )
        work.mkdir(parents=True, exist_ok=True)
        cloud = stack.enter_context(_local_cloud(work))
        base, base_note = _working_model_bytes(plan.model_dir, work)
        progress(f"working model: {base_note}")
        releases = _releases(base, work)
        for version in (1, 2, 3):
            cloud.service.publish(releases[version], version=version)
        cloud.service.promote("stable", 1, actor="bench-fleet", reason="factory image")
        template = _factory_image(cloud, releases[1], work)
        devices = _provision_devices(plan, cloud, template, work)
        progress(f"{len(devices)} devices provisioned with v1 from the factory image")
        sha = {v: _sha256(releases[v] / "model.onnx") for v in (1, 2, 3)}

        from functions.distribution.bucketing import in_rollout

        cohort = {
            d.device_id for d in devices if in_rollout(d.device_id, MODEL_NAME, plan.canary_percent)
        }
        phases = []

        cloud.service.promote("canary", 2, actor="bench-fleet", rollout_percent=plan.canary_percent)
        phases.append(
            _run_phase(
                "canary",
                f"v2 on the {len(cohort)} devices in the {plan.canary_percent:g} % cohort, v1 elsewhere",
                devices,
                plan,
                cloud,
                lambda d: d.installed_version() == (2 if d.device_id in cohort else 1),
                progress,
            )
        )
        cloud.service.promote("stable", 2, actor="bench-fleet", rollout_percent=100)
        phases.append(
            _run_phase(
                "full-rollout",
                "v2 on every device",
                devices,
                plan,
                cloud,
                lambda d: d.installed_version() == 2,
                progress,
            )
        )
        cloud.service.promote("canary", 3, actor="bench-fleet", rollout_percent=100)
        cloud.service.promote("stable", 3, actor="bench-fleet", rollout_percent=100)
        phases.append(
            _run_phase(
                "broken-release",
                "v3 (transcribes nothing) rejected by every smoke test; every device stays on v2",
                devices,
                plan,
                cloud,
                lambda d: d.installed_version() == 2 and d.blocked(sha[3]),
                progress,
            )
        )
        final = _final_check(devices, progress)
        return {
            "devices": len(devices),
            "workers": plan.workers,
            "canary_percent": plan.canary_percent,
            "canary_cohort": len(cohort),
            "working_model": base_note,
            "model_bytes": {
                f"v{v}": (releases[v] / "model.onnx").stat().st_size for v in (1, 2, 3)
            },
            "phases": [asdict(phase) for phase in phases],
            "final": final,
        }


# --- the local cloud --------------------------------------------------------------------------


@dataclass
class _Cloud:
    url: str
    service: Any
    tokens: Any
    signer: Any
    s3: Any
    models_bucket: str


@contextmanager
def _local_cloud(work: Path) -> Iterator[_Cloud]:
    import boto3

    from edgescribe.local.api_server import LocalTokenAuthority, serve_api
    from edgescribe.local.running_stack import run_local_stack, temporary_environment
    from functions.distribution.service import DistributionService
    from functions.distribution.signing import generate_signing_key

    with run_local_stack(poll=False, quiet=True, stack="fleet") as stack:
        tokens = LocalTokenAuthority(work / "tokens")
        key_path = work / "signing-key.pem"
        key_path.unlink(missing_ok=True)
        signer = generate_signing_key(key_path)
        overrides = {**tokens.environment(), "EDGESCRIBE_SIGNING_KEY_FILE": str(key_path)}
        with temporary_environment(overrides), serve_api() as api:
            s3 = boto3.session.Session().client("s3", endpoint_url=stack.endpoint_url)
            bucket = stack.names.models_bucket
            service = DistributionService(s3, bucket, signer=signer)
            yield _Cloud(api.url, service, tokens, signer, s3, bucket)


# --- models and devices -----------------------------------------------------------------------


def _working_model_bytes(model_dir: Path | None, work: Path) -> tuple[bytes, str]:
    from edge.fleet_models import synthetic_model
    from models.runtime.artifacts import released_model_dir

    source = model_dir or released_model_dir(MODEL_NAME)
    data = (source / "model.onnx").read_bytes()
    probe = work / "probe"
    _write_release(probe, data, version=1)
    try:
        run_smoke_test(probe)
    except SmokeTestFailedError as exc:
        return synthetic_model(favoured_symbol=3), (
            f"synthetic stand-in ({source} fails the smoke test: {exc})"
        )
    return data, f"{source} ({len(data)} bytes)"


def _releases(base: bytes, work: Path) -> dict[int, Path]:
    from edge.fleet_models import distinct_version, synthetic_model

    return {
        1: _write_release(work / "release-v1", distinct_version(base, "v1"), version=1),
        2: _write_release(work / "release-v2", distinct_version(base, "v2"), version=2),
        3: _write_release(work / "release-v3", synthetic_model(favoured_symbol=0), version=3),
    }


def _write_release(directory: Path, data: bytes, *, version: int) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "model.onnx").write_bytes(data)
    manifest = ModelManifest(
        name=MODEL_NAME,
        version=version,
        sha256=hashlib.sha256(data).hexdigest(),
        size=len(data),
        quantization="int8-dynamic",
    )
    (directory / "manifest.json").write_text(manifest.to_json())
    return directory


def _factory_image(cloud: _Cloud, release_v1: Path, work: Path) -> Path:
    """A state dir with the *published* (signed) v1 installed: what devices ship with."""
    from models.runtime.storage_layout import manifest_key

    signed = cloud.s3.get_object(Bucket=cloud.models_bucket, Key=manifest_key(MODEL_NAME, 1))
    image = work / "factory-model"
    image.mkdir(exist_ok=True)
    shutil.copyfile(release_v1 / "model.onnx", image / "model.onnx")
    (image / "manifest.json").write_bytes(signed["Body"].read())
    template = work / "factory-state"
    shutil.rmtree(template, ignore_errors=True)
    Agent(_config(cloud, "factory", template, token="")).updater.provision(image)
    return template


def _config(cloud: _Cloud, device_id: str, state_dir: Path, *, token: str) -> AgentConfig:
    return validate_config(
        AgentConfig(
            device_id=device_id,
            api_url=cloud.url,
            state_dir=state_dir,
            trusted_keys=(encode_public_key(cloud.signer.public_key),),
            token=token,
            read_timeout_seconds=30.0,
            download_grace_seconds=60.0,
        )
    )


def _provision_devices(plan: FleetPlan, cloud: _Cloud, template: Path, work: Path) -> list[Device]:
    devices = []
    for index in range(plan.devices):
        device_id = f"dev-{index:04d}"
        state_dir = work / "devices" / device_id
        shutil.rmtree(state_dir, ignore_errors=True)
        shutil.copytree(template, state_dir)
        token = cloud.tokens.issue(subject=device_id, tenant=TENANT, role="device")
        devices.append(Device(Agent(_config(cloud, device_id, state_dir, token=token))))
    return devices


# --- rounds -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Cycle:
    fetched: int = 0
    result: str | None = None
    error: str | None = None


def _cycle(device: Device) -> _Cycle:
    try:
        outcome = device.agent.sync_once()
    except AgentError as exc:
        return _Cycle(error=f"{type(exc).__name__}: {exc}")
    report = outcome.update
    if report is None:
        return _Cycle()
    return _Cycle(
        fetched=report.fetched_bytes,
        result=report.outcome.result if report.outcome else None,
    )


def _heartbeat(device: Device) -> None:
    with contextlib.suppress(AgentError):  # a missed one shows in the registry view; go on
        device.agent.heartbeat()


def _run_phase(
    name: str,
    target: str,
    devices: list[Device],
    plan: FleetPlan,
    cloud: _Cloud,
    done: Callable[[Device], bool],
    progress: Progress,
) -> PhaseReport:
    report = PhaseReport(name=name, target=target)
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=plan.workers, thread_name_prefix="device") as pool:
        while report.rounds < plan.max_rounds:
            report.rounds += 1
            for cycle in pool.map(_cycle, devices):
                report.bytes_moved += cycle.fetched
                report.updates_installed += cycle.result == "installed"
                report.updates_rejected += cycle.result in ("rejected", "reverted")
                report.cycle_errors += cycle.error is not None
            reached = sum(done(device) for device in devices)
            progress(
                f"{name}: round {report.rounds}: {reached}/{len(devices)} at target, "
                f"{report.bytes_moved / 1e6:.1f} MB moved, {time.monotonic() - started:.1f}s"
            )
            if reached == len(devices):
                report.converged = True
                break
        # The outcome reaches the cloud in each device's next heartbeat: send it now, so the
        # registry's view below is the fleet's state at convergence, not one round behind.
        list(pool.map(_heartbeat, devices))
    report.seconds = round(time.monotonic() - started, 2)
    report.fleet_versions = _versions(devices)
    report.registry_versions = _registry_versions(cloud)
    return report


def _versions(devices: list[Device]) -> dict[str, int]:
    return dict(sorted(Counter(f"v{d.installed_version()}" for d in devices).items()))


def _registry_versions(cloud: _Cloud) -> dict[str, int]:
    """The fleet as the cloud sees it (the heartbeats the registry recorded)."""
    from edge.client import DeviceClient

    admin = cloud.tokens.issue(subject="bench", tenant=TENANT, role="admin")
    listing = DeviceClient(cloud.url, "bench", lambda: admin).request("GET", "v1/devices").json()
    summary = listing.get("summary", {}) if isinstance(listing, dict) else {}
    return {str(k): int(v) for k, v in dict(summary.get("by_version", {})).items()}


def _final_check(devices: list[Device], progress: Progress) -> dict[str, Any]:
    """Every active slot intact; every distinct installed model transcribes the smoke clip."""
    tested: dict[str, bool] = {}
    intact = 0
    for device in devices:
        slots = Slots(device.agent.config.slots_dir)
        active = slots.active()
        if active is None:
            continue
        manifest = slots.validate(active)
        intact += 1
        if manifest.sha256 not in tested:
            try:
                run_smoke_test(slots.path(active))
                tested[manifest.sha256] = True
            except SmokeTestFailedError:
                tested[manifest.sha256] = False
    working = intact == len(devices) and all(tested.values())
    progress(f"final: {intact}/{len(devices)} active slots intact; models working: {working}")
    return {
        "active_slots_intact": intact,
        "distinct_models": len(tested),
        "every_device_on_working_model": working,
    }


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --- reporting and CLI ------------------------------------------------------------------------


def render_markdown(report: Mapping[str, Any]) -> str:
    lines = [
        "# Fleet simulation",
        "",
        f"{report['devices']} agents against the local stack (moto + API function + distribution "
        f"service), {report['workers']} at a time; canary {report['canary_percent']:g} % "
        f"({report['canary_cohort']} devices). Working model: {report['working_model']}.",
        "Rounds: every device ran one full agent cycle per round, back to back; a real fleet "
        "converges in rounds × its poll interval. Rerun: `make bench-fleet` "
        "(or `edgescribe bench fleet --devices N`).",
        "",
        "| phase | target | converged | rounds | seconds | MB moved | installed | rejected "
        "| devices (slots) | registry (heartbeats) |",
        "|---|---|---|---:|---:|---:|---:|---:|---|---|",
    ]
    for phase in report["phases"]:
        fleet = ", ".join(f"{k}: {v}" for k, v in phase["fleet_versions"].items())
        registry = ", ".join(f"v{k}: {v}" for k, v in sorted(phase["registry_versions"].items()))
        lines.append(
            f"| {phase['name']} | {phase['target']} | {'yes' if phase['converged'] else 'NO'} | "
            f"{phase['rounds']} | {phase['seconds']:.1f} | {phase['bytes_moved'] / 1e6:.2f} | "
            f"{phase['updates_installed']} | {phase['updates_rejected']} | {fleet} | {registry} |"
        )
    final = report["final"]
    lines += [
        "",
        f"Every device ends on a working model: **{final['every_device_on_working_model']}** "
        f"({final['active_slots_intact']}/{report['devices']} active slots intact, "
        f"{final['distinct_models']} distinct model(s) smoke-tested).",
        "",
    ]
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--devices", type=int, default=50)
    parser.add_argument("--workers", type=int, default=4, help="agents cycling at once")
    parser.add_argument("--canary-percent", type=float, default=10.0)
    parser.add_argument("--max-rounds", type=int, default=8)
    parser.add_argument("--model-dir", type=Path, default=None)
    parser.add_argument("--work-dir", type=Path, default=None, help="keep device state here")
    parser.add_argument("--out", type=Path, default=Path("docs/benchmarks"), metavar="DIR")


def run_from_arguments(args: argparse.Namespace) -> int:
    plan = FleetPlan(
        devices=args.devices,
        workers=args.workers,
        canary_percent=args.canary_percent,
        max_rounds=args.max_rounds,
        model_dir=args.model_dir,
        work_dir=args.work_dir,
    )
    import logging

    from edge.logs import configure_logging

    configure_logging(logging.ERROR)  # rejections of the broken release are expected, not news
    report = run_fleet_simulation(plan, lambda line: print(line, file=sys.stderr, flush=True))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "fleet.json").write_text(json.dumps(report, indent=2) + "\n")
    (args.out / "fleet.md").write_text(render_markdown(report))
    print(render_markdown(report))
    converged = all(phase["converged"] for phase in report["phases"])
    return 0 if converged and report["final"]["every_device_on_working_model"] else 1


def register(subparsers: Any) -> None:
    """``edgescribe-agent bench-fleet`` (the same as ``edgescribe bench fleet``)."""
    parser = subparsers.add_parser("bench-fleet", help="simulate a fleet through three rollouts")
    add_arguments(parser)
    parser.set_defaults(handler=run_from_arguments)


__all__ = ["FleetPlan", "render_markdown", "run_fleet_simulation"]
