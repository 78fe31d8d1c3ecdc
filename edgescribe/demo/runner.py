"""Runs the demo: start the local stack once, run each step against it, shut everything down."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TextIO

from edgescribe.demo.registry import load_steps
from edgescribe.demo.steps import DemoContext, DemoStep, DemoStepError

DEMO_STACK = "demo"


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
    *, out: TextIO, step_names: Sequence[str] | None = None, timeout: float = 120.0
) -> int:
    """Exit status 0 when every step did what it shows, 1 otherwise."""
    from edgescribe.local.running_stack import run_local_stack
    from edgescribe.samples import list_samples

    steps = select_steps(step_names)
    try:
        samples = list_samples()
    except FileNotFoundError as exc:
        raise DemoSetupError(f"no demo clips: {exc.filename} is missing") from exc
    if not samples:
        raise DemoSetupError("the samples manifest lists no clips")

    started = time.monotonic()
    print(
        "EdgeScribe demo: starting the local stack (moto server, buckets, queues, tables, "
        "event-source poller) ...",
        file=out,
        flush=True,
    )
    failed: list[str] = []
    with run_local_stack(stack=DEMO_STACK, quiet=True, visibility_timeout=2) as stack:
        print(
            f"  moto server {stack.endpoint_url}, stack '{stack.names.stack}' "
            f"ready in {time.monotonic() - started:.1f} s",
            file=out,
            flush=True,
        )
        context = DemoContext(
            stack=stack, samples=samples, out=out, deadline=time.monotonic() + timeout
        )
        for number, step in enumerate(steps, start=1):
            context.say()
            context.say(f"== {number}/{len(steps)}  {step.title} ==")
            try:
                step.run(context)
            except DemoStepError as exc:
                context.say(f"FAILED: {exc}")
                failed.append(step.name)
        context.say()
    print("stack shut down: poller stopped, moto server terminated", file=out, flush=True)
    verdict = f"{len(failed)} step(s) failed: {', '.join(failed)}" if failed else "all steps passed"
    print(f"demo finished in {time.monotonic() - started:.1f} s — {verdict}", file=out, flush=True)
    return 1 if failed else 0
