"""The evaluation gate: a candidate ships only if it is better where it was trained to be, and no
worse anywhere else.

Both models transcribe the *same* audio through the same ``Transcriber`` (the serving path, INT8
as devices run it), so the comparison is a ratio within one run, not against a number measured on
another day. Rules, each recorded in the report when it fails:

- the domain set (held-back corrections, never trained on) must improve by ``min_domain_gain``
  (absolute CER);
- every general set may get worse by at most ``tolerance`` (absolute CER). Why absolute: on the small
  committed sets one clip moves CER by a few points, and a relative rule on a 40 % baseline would
  allow more than on a 5 % one for no good reason;
- a set with no clips is an error, not a pass: a gate that measured nothing must not open.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from functions.learning.records import GateReport, GateSet
from models.runtime.scoring import ErrorCounter
from models.runtime.transcriber import Transcriber
from models.runtime.transcript import ModelRef


class EmptyEvaluationSetError(ValueError):
    """A gate set has no clips, so it cannot show anything either way."""


@dataclass(frozen=True)
class GatePolicy:
    #: The largest absolute CER increase a general set may show.
    tolerance: float = 0.05
    #: The smallest absolute CER decrease the domain set must show.
    min_domain_gain: float = 0.02


@dataclass(frozen=True)
class EvalSet:
    name: str
    kind: Literal["domain", "general"]
    #: (16 kHz mono audio, reference text) pairs.
    clips: Sequence[tuple[npt.NDArray[np.float32], str]]


def corpus_cer(
    transcriber: Transcriber, clips: Sequence[tuple[npt.NDArray[np.float32], str]]
) -> float:
    errors = ErrorCounter()
    for index, (audio, text) in enumerate(clips):
        errors.add(text, transcriber.transcribe(audio, transcript_id=f"gate-{index}").text)
    return errors.cer


def run_gate(
    job_id: str,
    baseline: Transcriber,
    candidate: Transcriber,
    sets: Sequence[EvalSet],
    policy: GatePolicy = GatePolicy(),
) -> GateReport:
    if not any(item.kind == "domain" for item in sets):
        raise EmptyEvaluationSetError("the gate needs a domain set")
    results: list[GateSet] = []
    reasons: list[str] = []
    for item in sets:
        if not item.clips:
            raise EmptyEvaluationSetError(f"gate set {item.name!r} has no clips")
        before = corpus_cer(baseline, item.clips)
        after = corpus_cer(candidate, item.clips)
        delta = after - before
        if item.kind == "domain":
            passed = delta <= -policy.min_domain_gain
            if not passed:
                reasons.append(
                    f"domain set {item.name}: CER {before:.1%} -> {after:.1%}, needs a gain of "
                    f"at least {policy.min_domain_gain:.1%}"
                )
        else:
            passed = delta <= policy.tolerance
            if not passed:
                reasons.append(
                    f"general set {item.name}: CER {before:.1%} -> {after:.1%}, regression above "
                    f"the {policy.tolerance:.1%} tolerance"
                )
        results.append(
            GateSet(
                name=item.name,
                kind=item.kind,
                utterances=len(item.clips),
                baseline_cer=round(before, 4),
                candidate_cer=round(after, 4),
                delta=round(delta, 4),
                passed=passed,
            )
        )
    return GateReport(
        job_id=job_id,
        baseline=_ref(baseline),
        candidate=_ref(candidate),
        tolerance=policy.tolerance,
        min_domain_gain=policy.min_domain_gain,
        sets=results,
        passed=not reasons,
        reasons=reasons,
    )


def render_markdown(report: GateReport) -> str:
    verdict = "PASSED" if report.passed else "FAILED"
    lines = [
        f"# Evaluation gate {verdict}: {report.candidate.name} v{report.candidate.version} "
        f"vs v{report.baseline.version}",
        "",
        f"Tolerance on general sets: +{report.tolerance:.1%} CER; required domain gain: "
        f"-{report.min_domain_gain:.1%} CER.",
        "",
        "| set | kind | clips | baseline CER | candidate CER | change | ok |",
        "|---|---|---|---|---|---|---|",
    ]
    for item in report.sets:
        lines.append(
            f"| {item.name} | {item.kind} | {item.utterances} | {item.baseline_cer:.1%} | "
            f"{item.candidate_cer:.1%} | {item.delta:+.1%} | {'yes' if item.passed else 'NO'} |"
        )
    if report.reasons:
        lines += ["", *[f"- {reason}" for reason in report.reasons]]
    return "\n".join(lines) + "\n"


def _ref(transcriber: Transcriber) -> ModelRef:
    return ModelRef(name=transcriber.manifest.name, version=transcriber.manifest.version)
