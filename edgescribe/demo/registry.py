"""The demo's steps, in the order they run. Each module listed here defines ``STEP``."""

from __future__ import annotations

import importlib

from edgescribe.demo.steps import DemoStep

STEP_MODULES: tuple[str, ...] = (
    "edgescribe.demo.batch",
    "edgescribe.demo.api",
    "edgescribe.demo.triton",
    "edgescribe.demo.edge",
    "edgescribe.demo.loop",
)


def load_steps() -> list[DemoStep]:
    steps: list[DemoStep] = []
    for module_name in STEP_MODULES:
        step: DemoStep = importlib.import_module(module_name).STEP
        steps.append(step)
    return steps
