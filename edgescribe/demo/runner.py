"""Runs the demo: start the local stack once, run each step against it, shut everything down."""

from __future__ import annotations

import sys
import time
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from edgescribe.demo.registry import load_steps
from edgescribe.demo.steps import DemoContext, DemoStep, DemoStepError, Need

if TYPE_CHECKING:
    from edgescribe.local.running_stack import LocalStack

DEMO_STACK = "demo"
#: How long all steps together may wait for results (transcripts, job status) by default.
DEFAULT_TIMEOUT_SECONDS = 600.0


class DemoSetupError(Exception):
    """The demo cannot start (no sample clips, an unknown step name); the message says why."""


def select_steps(names: Sequence[str] | None) -> list[DemoStep]:
    steps = load_steps()
    if not names:
        return steps
    known = {step.name: step for step in steps}
    unknown = [name for name in names if name not in known]
    if unknown:
        raise DemoSetupError(f"unknown demo step(s) {unknown}; choose from {sorted(known)}")
    return [known[name] for name in names]


def run_demo(
    *,
    out: TextIO,
    step_names: Sequence[str] | None = None,
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
    models_dir: Path | None = None,
) -> int:
    """Exit status 0 when every step did what it shows, 1 otherwise.

    Only the parts of the stack the chosen steps need are started (``DemoStep.needs``), so
    ``--steps batch`` does not wait for Triton. ``models_dir`` runs other models than the released
    ones (a folder with ``edgescribe-edge/`` and ``edgescribe-cloud/``).
    """
    from edgescribe.local.running_stack import LocalStackError, run_local_stack
    from edgescribe.samples import list_samples

    steps = select_steps(step_names)
    try:
        samples = list_samples()
    except FileNotFoundError as exc:
        raise DemoSetupError(f"no demo clips: {exc.filename} is missing") from exc
    if not samples:
        raise DemoSetupError("the samples manifest lists no clips")
    needs: set[Need] = set().union(*(step.needs for step in steps))

    started = time.monotonic()
    parts = ["moto server", "buckets, queues, tables"]
    parts += [_PART_NAMES[need] for need in _START_ORDER if need in needs]
    print(
        f"EdgeScribe demo: starting the local stack ({', '.join(parts)}) ...", file=out, flush=True
    )
    failed: list[str] = []
    try:
        with run_local_stack(
            stack=DEMO_STACK,
            quiet=True,
            visibility_timeout=2,
            poll="poller" in needs,
            api="api" in needs,
            triton="triton" in needs,
            models_dir=models_dir,
        ) as stack:
            for line in describe_demo_stack(stack):
                print(f"  {line}", file=out, flush=True)
            print(f"  ready in {time.monotonic() - started:.1f} s", file=out, flush=True)
            context = DemoContext(
                stack=stack, samples=samples, out=out, deadline=time.monotonic() + timeout
            )
            for number, step in enumerate(steps, start=1):
                context.say()
                context.say(f"== {number}/{len(steps)}  {step.title} ==")
                step_started = time.monotonic()
                try:
                    step.run(context)
                except DemoStepError as exc:
                    context.say(f"FAILED: {exc}")
                    failed.append(step.name)
                except Exception as exc:  # a bug or a broken part: the next steps still run
                    context.say(f"FAILED: unexpected {type(exc).__name__}: {exc}")
                    traceback.print_exc(file=sys.stderr)  # stdout stays the demo's story
                    failed.append(step.name)
                else:
                    context.say(f"({step.name}: {time.monotonic() - step_started:.1f} s)")
            context.say()
    except LocalStackError as exc:
        raise DemoSetupError(str(exc)) from exc
    print(
        "stack shut down: "
        + ", ".join(_STOPPED[need] for need in _START_ORDER if need in needs)
        + (", " if needs else "")
        + "moto server terminated",
        file=out,
        flush=True,
    )
    verdict = f"{len(failed)} step(s) failed: {', '.join(failed)}" if failed else "all steps passed"
    print(f"demo finished in {time.monotonic() - started:.1f} s — {verdict}", file=out, flush=True)
    return 1 if failed else 0


_START_ORDER: tuple[Need, ...] = ("poller", "api", "triton")
_PART_NAMES: dict[Need, str] = {
    "poller": "event-source poller",
    "api": "API function",
    "triton": "Triton",
}
_STOPPED: dict[Need, str] = {
    "poller": "poller stopped",
    "api": "API server stopped",
    "triton": "Triton shut down",
}


def describe_demo_stack(stack: LocalStack) -> list[str]:
    """One line per running part: where it listens and what it serves."""
    lines = [f"moto server  {stack.endpoint_url} (stack '{stack.names.stack}')"]
    if stack.api is not None:
        lines.append(f"API          {stack.api.url} (functions.api.app.handler)")
    if stack.triton is not None:
        spec, endpoints = stack.triton.spec, stack.triton.server.endpoints
        lines.append(
            f"Triton       gRPC {endpoints.grpc_url} serving {spec.name} v{spec.version}; "
            "the functions call it, with onnxruntime as fallback"
        )
    lines.append(f"models       {stack.edge_model_dir.parent}")
    return lines
