"""What a demo step is and what it gets to work with."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, Protocol, TextIO

if TYPE_CHECKING:
    from edgescribe.local.running_stack import LocalStack
    from edgescribe.samples import Sample


class DemoStepError(Exception):
    """The step's promise did not hold (a transcript never appeared, ...); says what and why."""


@dataclass
class DemoContext:
    """Shared by every step of one demo run."""

    stack: LocalStack
    samples: list[Sample]
    out: TextIO
    #: ``time.monotonic()`` by which every step must be done; steps wait no longer than this.
    deadline: float
    started: float = field(default_factory=time.monotonic)

    def say(self, text: str = "") -> None:
        print(text, file=self.out, flush=True)

    def seconds_left(self) -> float:
        return max(0.0, self.deadline - time.monotonic())


#: Parts of the local stack a step may need beyond moto and the buckets (``run_local_stack``).
Need = Literal["poller", "api", "triton"]


class DemoStep(Protocol):
    """One part of the tour. ``run`` prints what happens and raises ``DemoStepError`` on failure."""

    name: str  # what ``--steps`` selects it by
    title: str  # the header line
    #: What the runner must start for this step; only what the chosen steps need is started.
    needs: frozenset[Need]

    def run(self, context: DemoContext) -> None: ...
