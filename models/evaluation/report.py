"""The benchmark's output: one JSON document (the schema below) and its markdown tables.

The JSON is the single source of every number in ``docs/benchmarks/model.md`` and
``docs/model-card.md``; both are rendered from it and never edited by hand. Rates are fractions
(0.123 = 12.3 %) in the JSON and percentages in markdown. Corpus rates per set are
sum-of-edits / sum-of-reference-lengths (``models.runtime.scoring.ErrorCounter``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Final

from pydantic import BaseModel, Field

from models.evaluation.manifests import DataSetSummary
from models.evaluation.model_stats import ModelInfo

SCHEMA_VERSION: Final = 1
#: Row that pools every set of a table (corpus rates, not a mean of set rates).
ALL_SETS: Final = "all"
CLEAN: Final = "clean"


class SetScore(BaseModel):
    n: int
    cer: float
    wer: float


class RecognizerScores(BaseModel):
    """One system's scores: clean real sets, noisy versions keyed by SNR ("20"), held-out voices."""

    name: str
    kind: str  # "model" | "peer"
    description: str
    clean: dict[str, SetScore] = Field(default_factory=dict)
    noisy: dict[str, dict[str, SetScore]] = Field(default_factory=dict)
    heldout: dict[str, SetScore] = Field(default_factory=dict)
    #: Processing time / audio time over the clean pass (all threads it used; not interleaved).
    pass_rtf: float | None = None


class SpeedReport(BaseModel):
    threads: int
    rounds: int
    clips: int
    audio_seconds: float
    rtf: dict[str, float]
    rtf_rounds: dict[str, list[float]]


class Int8Comparison(BaseModel):
    """The INT8 model against the fp32 one; ``same_checkpoint`` says whether that isolates INT8."""

    int8_model: str
    fp32_model: str
    same_checkpoint: bool
    size_ratio: float
    speedup: float | None
    relative_cer_change: dict[str, float | None]


class HostInfo(BaseModel):
    cpu: str
    cores: int
    platform: str
    python: str
    onnxruntime: str


class BenchmarkSettings(BaseModel):
    eval_manifest: str
    noise_dir: str | None
    noise_seed: int
    snr_db: list[float]
    heldout_manifest: str | None
    heldout_seed: int | None
    limit: int | None
    quick: bool
    threads: int
    peer: bool
    peer_noisy: bool
    speed_rounds: int


class TextOverlap(BaseModel):
    """Held-out sentences that also occur verbatim in a training corpus."""

    sentences: int
    in_training: int
    training_manifest: str


class BenchmarkReport(BaseModel):
    schema_version: int = SCHEMA_VERSION
    created_at: datetime
    wall_seconds: float
    host: HostInfo
    settings: BenchmarkSettings
    models: list[ModelInfo]
    comparison: Int8Comparison | None = None
    speed: SpeedReport | None = None
    results: list[RecognizerScores]
    data: list[DataSetSummary] = Field(default_factory=list)
    heldout_overlap: TextOverlap | None = None
    skipped: list[str] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)

    def result(self, name: str) -> RecognizerScores | None:
        return next((r for r in self.results if r.name == name), None)

    def model(self, name: str) -> ModelInfo | None:
        return next((m for m in self.models if m.name == name), None)

    def to_json(self) -> str:
        return self.model_dump_json(indent=2) + "\n"

    @classmethod
    def load(cls, path: Path) -> BenchmarkReport:
        return cls.model_validate_json(path.read_text(encoding="utf-8"))


# --- markdown -------------------------------------------------------------------------------


def percent(value: float | None, digits: int = 1) -> str:
    return "–" if value is None else f"{100 * value:.{digits}f} %"


def megabytes(size: int) -> str:
    return f"{size / 1_000_000:.2f} MB"


def table(header: Sequence[str], rows: Iterable[Sequence[str]], *, text_columns: int = 1) -> str:
    """A GitHub markdown table: ``text_columns`` left-aligned columns, then right-aligned numbers."""
    lines = ["| " + " | ".join(header) + " |"]
    aligns = [":---"] * text_columns + ["---:"] * (len(header) - text_columns)
    lines.append("|" + "|".join(aligns[: len(header)]) + "|")
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def display_name(report: BenchmarkReport, name: str) -> str:
    """``edgescribe-edge (int8-dynamic)`` for models, the bare name for peers."""
    model = report.model(name)
    return f"{name} ({model.quantization})" if model is not None else name


def _ordered_sets(scores: Iterable[dict[str, SetScore]]) -> list[str]:
    names: list[str] = []
    for mapping in scores:
        names += [name for name in mapping if name not in names and name != ALL_SETS]
    if any(ALL_SETS in mapping for mapping in scores):
        names.append(ALL_SETS)
    return names


def score_table(report: BenchmarkReport, pick: str, snr: str | None = None) -> str:
    """Rows = sets, columns = systems, cells = ``CER / WER``; ``pick`` is clean|noisy|heldout."""
    columns: list[tuple[str, dict[str, SetScore]]] = []
    for result in report.results:
        if pick == CLEAN:
            mapping = result.clean
        elif pick == "heldout":
            mapping = result.heldout
        else:
            mapping = result.noisy.get(snr or "", {})
        if mapping:
            columns.append((result.name, mapping))
    if not columns:
        return "_not measured in this run_"
    sets = _ordered_sets([mapping for _, mapping in columns])
    rows = []
    for set_name in sets:
        n = next((m[set_name].n for _, m in columns if set_name in m), 0)
        cells = [
            f"{percent(m[set_name].cer)} / {percent(m[set_name].wer)}" if set_name in m else "–"
            for _, m in columns
        ]
        rows.append([f"`{set_name}`", str(n), *cells])
    header = ["set", "utts", *(f"{display_name(report, name)} CER / WER" for name, _ in columns)]
    return table(header, rows)


def noise_curve_table(report: BenchmarkReport) -> str:
    """CER on all real sets pooled, per condition (clean, then each SNR) and system."""
    systems = [r for r in report.results if r.clean]
    if not systems or not report.settings.snr_db:
        return "_not measured in this run_"
    conditions = [CLEAN] + [snr_key(snr) for snr in report.settings.snr_db]
    rows = []
    for condition in conditions:
        cells = []
        for result in systems:
            mapping = result.clean if condition == CLEAN else result.noisy.get(condition, {})
            score = mapping.get(ALL_SETS) or (next(iter(mapping.values())) if mapping else None)
            cells.append(percent(score.cer) if score is not None else "–")
        label = "clean" if condition == CLEAN else f"{condition} dB SNR"
        rows.append([label, *cells])
    return table(["condition", *(display_name(report, r.name) for r in systems)], rows)


def snr_key(snr_db: float) -> str:
    """``20.0`` -> ``"20"``: the key of a noisy condition in the JSON."""
    return f"{snr_db:g}"


def models_table(report: BenchmarkReport) -> str:
    rows = []
    for model in report.models:
        rtf = report.speed.rtf.get(model.name) if report.speed else None
        steps = model.training_data.get("steps")
        rows.append(
            [
                f"`{model.name}` v{model.version} ({model.label})",
                model.quantization,
                f"{model.params / 1e6:.2f} M",
                megabytes(model.file_bytes),
                f"{rtf:.4f}" if rtf is not None else "–",
                str(steps) if steps is not None else "–",
            ]
        )
    for result in report.results:
        if result.kind == "peer" and result.pass_rtf is not None:
            rows.append([f"`{result.name}` (peer)", "–", "–", "–", f"{result.pass_rtf:.4f}*", "–"])
    header = ["model", "weights", "params", "file", "RTF (1 thread)", "training steps"]
    return table(header, rows)


def comparison_table(report: BenchmarkReport) -> str:
    comparison = report.comparison
    if comparison is None:
        return "_needs one INT8 and one fp32 model_"
    rows = [
        ["file size INT8 / fp32", percent(comparison.size_ratio)],
        [
            "speed-up INT8 vs fp32 (median of per-round ratios)",
            f"{comparison.speedup:.2f}x" if comparison.speedup is not None else "–",
        ],
    ]
    for set_name, change in comparison.relative_cer_change.items():
        value = "–" if change is None else f"{100 * change:+.1f} %"
        rows.append([f"relative CER change on `{set_name}`", value])
    note = (
        "same checkpoint (by manifest), so the difference is the quantization alone"
        if comparison.same_checkpoint
        else "DIFFERENT checkpoints: the CER difference mixes quantization and training"
    )
    header = [f"`{comparison.int8_model}` vs `{comparison.fp32_model}` ({note})", "value"]
    return table(header, rows)


def render_markdown(report: BenchmarkReport) -> str:
    """``docs/benchmarks/model.md``: every table of the run, with how it was produced."""
    from models.evaluation.targets import targets_table

    s = report.settings
    speed = report.speed
    parts = [
        "# Model benchmark",
        "",
        "Generated by `make bench-model` (`edgescribe bench model`) with `docs/benchmarks/model.json`; "
        "do not edit.",
        f"Run {report.created_at:%Y-%m-%d %H:%M} UTC on {report.host.cpu} "
        f"({report.host.cores} cores), onnxruntime {report.host.onnxruntime}, "
        f"{report.wall_seconds / 60:.1f} min wall."
        + (" **Quick run** (subset): not for quoting." if s.quick else ""),
        "",
        "## Models",
        "",
        models_table(report),
        "",
        (
            f"RTF: median of {speed.rounds} interleaved rounds over {speed.clips} clips "
            f"({speed.audio_seconds:.0f} s of eval audio), {speed.threads} intra-op thread, whole "
            "transcription path (chunking, inference, CTC decoding)."
            if speed
            else "RTF: not measured."
        )
        + " *Peer RTF: its clean accuracy pass, not interleaved.",
        "",
        "## INT8 vs fp32",
        "",
        comparison_table(report),
        "",
        "## Real speech, clean",
        "",
        score_table(report, CLEAN),
        "",
        "## Noise curve (all real sets pooled, CER)",
        "",
        f"Real background noise from `{s.noise_dir}` mixed at each SNR, one fixed noise segment "
        f"per utterance (seed {s.noise_seed}).",
        "",
        noise_curve_table(report),
        "",
    ]
    for snr in s.snr_db:
        parts += [f"### {snr_key(snr)} dB SNR", "", score_table(report, "noisy", snr_key(snr)), ""]
    parts += [
        "## Held-out voices (synthetic, clean)",
        "",
        score_table(report, "heldout"),
        "",
        "## Targets",
        "",
        targets_table(report),
        "",
    ]
    if report.skipped:
        parts += ["## Skipped files", "", *(f"- {reason}" for reason in report.skipped), ""]
    if report.notes:
        parts += ["## Notes", "", *(f"- {note}" for note in report.notes), ""]
    return "\n".join(parts)
