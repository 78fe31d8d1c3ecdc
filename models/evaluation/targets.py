"""The acoustic-model issue's targets, checked against one benchmark report.

Each check says what was measured and whether the target is met; ``None`` means the run could not
tell (a set, a model or the peer was not measured, or the comparison needs a model this project has
not trained). A target is never reported as met on missing data.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from pydantic import BaseModel

from models.evaluation.report import ALL_SETS, BenchmarkReport, SetScore, percent, table

EDGE_MODEL: Final = "edgescribe-edge"
CLOUD_MODEL: Final = "edgescribe-cloud"
PEER: Final = "pocketsphinx"


class TargetCheck(BaseModel):
    target: str
    measured: str
    met: bool | None


def _heldout_all(report: BenchmarkReport, name: str) -> SetScore | None:
    result = report.result(name)
    if result is None or not result.heldout:
        return None
    return result.heldout.get(ALL_SETS) or next(iter(result.heldout.values()))


def _clean(report: BenchmarkReport, name: str, set_name: str) -> SetScore | None:
    result = report.result(name)
    return None if result is None else result.clean.get(set_name)


def _at_most(
    value: float | None, limit: float, fmt: Callable[[float], str]
) -> tuple[str, bool | None]:
    if value is None:
        return "not measured", None
    return fmt(value), value <= limit


def check_targets(report: BenchmarkReport) -> list[TargetCheck]:
    checks: list[TargetCheck] = []

    for name, limit in ((CLOUD_MODEL, 0.032), (EDGE_MODEL, 0.05)):
        score = _heldout_all(report, name)
        measured, met = _at_most(score.cer if score else None, limit, percent)
        checks.append(
            TargetCheck(
                target=f"held-out voices, clean: `{name}` CER ≤ {percent(limit)}",
                measured=measured,
                met=met,
            )
        )

    for set_name in ("an4_test", "fsdd_test"):
        peer = _clean(report, PEER, set_name)
        for name in (EDGE_MODEL, CLOUD_MODEL):
            ours = _clean(report, name, set_name)
            if ours is None or peer is None:
                measured, met = "not measured", None
            else:
                measured = f"{percent(ours.cer)} vs {percent(peer.cer)}"
                met = ours.cer < peer.cer
            checks.append(
                TargetCheck(
                    target=f"`{set_name}`: `{name}` CER below pocketsphinx",
                    measured=measured,
                    met=met,
                )
            )

    cv = _clean(report, EDGE_MODEL, "cv_en_100")
    cv_peer = _clean(report, PEER, "cv_en_100")
    checks.append(
        TargetCheck(
            target="`cv_en_100`: report honestly (no target)",
            measured=(
                f"{percent(cv.cer)} (pocketsphinx {percent(cv_peer.cer) if cv_peer else '–'})"
                if cv
                else "not measured"
            ),
            met=None,
        )
    )

    comparison = report.comparison
    measured, met = _at_most(comparison.size_ratio if comparison else None, 0.30, percent)
    checks.append(TargetCheck(target="INT8 file ≤ 30 % of fp32", measured=measured, met=met))

    change = comparison.relative_cer_change.get(ALL_SETS) if comparison else None
    if comparison is not None and change is not None:
        measured = f"{100 * change:+.1f} %" + (
            "" if comparison.same_checkpoint else " (different checkpoints)"
        )
        met = change <= 0.02 if comparison.same_checkpoint else None
    else:
        measured, met = "not measured", None
    checks.append(
        TargetCheck(
            target="INT8 relative CER loss ≤ 2 % (real sets pooled)", measured=measured, met=met
        )
    )

    edge_rtf = report.speed.rtf.get(EDGE_MODEL) if report.speed else None
    measured, met = _at_most(edge_rtf, 0.02, lambda v: f"{v:.4f}")
    checks.append(TargetCheck(target="INT8 RTF ≤ 0.02, one thread", measured=measured, met=met))

    speedup = comparison.speedup if comparison else None
    checks.append(
        TargetCheck(
            target="INT8 ≥ 2x faster than fp32",
            measured=f"{speedup:.2f}x" if speedup is not None else "not measured",
            met=None if speedup is None else speedup >= 2.0,
        )
    )

    checks.append(
        TargetCheck(
            target="noise: hybrid beats the CNN-RNN baseline at 10 dB and 5 dB",
            measured="baseline not trained in this release: no comparison",
            met=None,
        )
    )
    return checks


def targets_table(report: BenchmarkReport) -> str:
    verdict = {True: "met", False: "**not met**", None: "–"}
    rows = [[c.target, c.measured, verdict[c.met]] for c in check_targets(report)]
    return table(["target", "measured", "status"], rows, text_columns=3)
