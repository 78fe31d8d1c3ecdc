"""Generate ``docs/model-card.md`` from a benchmark report (``docs/benchmarks/model.json``).

The card is rendered, never hand-edited: every number in it comes from the one benchmark run in
the JSON, and the caveats that depend on the run (a partly trained model, different checkpoints
behind the INT8/fp32 comparison, a quick run, missing voices, text overlap) are derived from it.

    python -m models.evaluation.model_card docs/benchmarks/model.json docs/model-card.md
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Final

from models.evaluation.manifests import DataSetSummary
from models.evaluation.report import (
    ALL_SETS,
    CLEAN,
    BenchmarkReport,
    comparison_table,
    models_table,
    noise_curve_table,
    score_table,
    table,
)
from models.evaluation.targets import PEER, targets_table

#: Below this many training steps a model is called "partly trained" on the card.
PARTLY_TRAINED_STEPS: Final = 10_000
_ARCHITECTURE_TEXT: Final = (
    "A hybrid CTC acoustic model over characters (blank, space, apostrophe, a-z): a log-mel front "
    "end inside the ONNX graph (25 ms windows, 10 ms hop, 80 mel bands), TDNN layers for local "
    "features, a strided convolution (30 ms output frames), bidirectional LSTM layers for long "
    "dependencies and multi-head self-attention for context, trained with CTC on synthetic and "
    "real speech under on-the-fly augmentation (noise at 0-30 dB SNR, reverb, speed, band limits, "
    "clipping, SpecAugment). Decoding is greedy CTC without a language model."
)


def _data_table(rows: Sequence[DataSetSummary]) -> str:
    if not rows:
        return "_no manifest summarised in this run_"
    return table(
        ["set", "role", "utterances", "minutes", "speakers"],
        [
            [
                f"`{r.name}`",
                r.role,
                str(r.utterances),
                f"{r.minutes:.1f}" if r.minutes is not None else "–",
                str(r.speakers) if r.speakers is not None else "–",
            ]
            for r in rows
        ],
        text_columns=2,
    )


def _architecture_rows(report: BenchmarkReport) -> str:
    rows = []
    for model in report.models:
        settings = ", ".join(
            f"{k}={v}" for k, v in sorted(model.architecture.items()) if k not in ("vocab_size",)
        )
        rows.append([f"`{model.name}`", settings or "–"])
    return table(["model", "configuration (from its manifest)"], rows, text_columns=2)


def _peer_summary(report: BenchmarkReport) -> str:
    peer = report.result(PEER)
    if peer is None or not peer.clean:
        return "The peer was not run in this benchmark."
    lines = []
    for model in (r for r in report.results if r.kind == "model"):
        shared = [s for s in peer.clean if s in model.clean and s != ALL_SETS]
        wins = [s for s in shared if model.clean[s].cer < peer.clean[s].cer]
        losses = [s for s in shared if model.clean[s].cer >= peer.clean[s].cer]
        lines.append(
            f"- `{model.name}`: lower CER than pocketsphinx on "
            f"{', '.join(f'`{s}`' for s in wins) or 'no set'}; "
            f"not lower on {', '.join(f'`{s}`' for s in losses) or 'no set'}."
        )
    return "\n".join(lines)


def derived_caveats(report: BenchmarkReport) -> list[str]:
    """Caveats that follow from this particular run."""
    caveats: list[str] = []
    for model in report.models:
        steps = model.training_data.get("steps")
        note = str(model.training_data.get("note", ""))
        if (isinstance(steps, int | float) and steps < PARTLY_TRAINED_STEPS) or "partly" in note:
            caveats.append(
                f"`{model.name}` is partly trained ({steps} steps; manifest note: "
                f"'{note}'): these numbers describe that checkpoint, not the architecture's ceiling."
            )
    if report.comparison is not None and not report.comparison.same_checkpoint:
        caveats.append(
            "The INT8 and fp32 models come from different checkpoints (their manifests differ), so "
            "the INT8-vs-fp32 CER difference mixes quantization with training differences."
        )
    if report.settings.quick:
        caveats.append(
            f"Quick run (at most {report.settings.limit} utterances per set): too few to quote."
        )
    heldout_sets = sorted({name for r in report.results for name in r.heldout if name != ALL_SETS})
    if heldout_sets and "heldout_pico_en_us" not in heldout_sets:
        caveats.append(
            "SVOX Pico (pico2wave, Debian non-free) was not installed, so the held-out voices are "
            "one speaker (CMU ARCTIC slt) through two synthesisers (flite, festival HTS)."
        )
    if not heldout_sets:
        caveats.append("No held-out-voice set was measured in this run.")
    overlap = report.heldout_overlap
    if overlap is not None:
        caveats.append(
            f"Held-out sentences come from the training sentence generator with a fresh seed: "
            f"{overlap.in_training} of {overlap.sentences} also occur verbatim in "
            f"`{overlap.training_manifest}`. The held-out set measures unseen voices, not unseen "
            "vocabulary or sentence patterns."
        )
    if report.settings.noise_dir:
        caveats.append(
            f"The noise recordings (`{report.settings.noise_dir}`) are also used by training "
            "augmentation (other random segments): the noise curve measures familiar noise types "
            "at fixed SNRs, not unseen noise. SNR is the power ratio over the whole utterance; for "
            "transient recordings (a dog bark) the local SNR during the event is far lower."
        )
    peer = report.result(PEER)
    if peer is not None and not peer.noisy and report.settings.snr_db:
        models = [r.pass_rtf for r in report.results if r.kind == "model" and r.pass_rtf]
        slower = (
            f" (its clean pass ran at RTF {peer.pass_rtf:.3f}, vs {min(models):.3f} for our fastest)"
            if peer.pass_rtf and models
            else ""
        )
        caveats.append(f"The peer was scored on clean speech only{slower}; no noise curve for it.")
    if report.skipped:
        caveats.append(f"{len(report.skipped)} eval files could not be decoded and were skipped.")
    return caveats


STANDING_CAVEATS: Final = (
    "The eval sets are small (39-300 utterances): differences of a few CER points between systems "
    "on one set are within noise.",
    "`fsdd_test` shares its six speakers with `fsdd_train` (split by recording index), so it is "
    "not speaker-independent; 19 AN4 test prompts also occur in AN4 train.",
    "pocketsphinx runs in its default configuration with its general English language model; "
    "EdgeScribe decodes greedily without any language model. Neither was tuned on the eval sets.",
    "Scoring normalises both sides the same way (lowercase, no punctuation, digits spelled out); "
    "CER counts spaces. Corpus rates per set, not means of utterance rates.",
    "Speed: one onnxruntime intra-op thread on a shared 2-core virtual machine; absolute RTF moves "
    "with the machine's load, the interleaved INT8/fp32 ratio much less.",
    "Ablation against the plain CNN-RNN baseline: the baseline was NOT trained in this release, "
    "so the card makes no claim that the hybrid architecture beats it.",
)


def render_model_card(report: BenchmarkReport) -> str:
    train_rows = [d for d in report.data if d.role not in ("eval", "heldout-voice")]
    eval_rows = [d for d in report.data if d.role in ("eval", "heldout-voice")]
    s = report.settings
    parts = [
        "# Model card: EdgeScribe acoustic models",
        "",
        "Generated by `make bench-model` (`edgescribe bench model`; or "
        "`python -m models.evaluation.model_card` from an existing JSON) from "
        f"`docs/benchmarks/model.json`, the benchmark run of {report.created_at:%Y-%m-%d %H:%M} "
        "UTC. Do not edit by hand: rerun the benchmark.",
        "",
        "## Models",
        "",
        models_table(report),
        "",
        _ARCHITECTURE_TEXT,
        "",
        _architecture_rows(report),
        "",
        "`edgescribe-edge` is the INT8 model for phones, devices and Lambda; `edgescribe-cloud` is "
        "the fp32 model Triton serves. Both take 16 kHz mono float32 audio and return per-frame "
        "character log-probabilities (30 ms frames).",
        "",
        "## Intended use",
        "",
        "English speech to lowercase text without punctuation or digits: commands, dictation, short "
        "notes, spelled letters and numbers. Not for other languages, for far-field multi-talker "
        "meetings, or for any decision about a person; the error rates below say how often it errs.",
        "",
        "## Training data",
        "",
        _data_table(train_rows),
        "",
        "The real speech is the `train` sets of the shared speech manifest; the synthetic speech "
        "comes from espeak-ng and flite voices (the held-out voices below are excluded by name).",
        "",
        "## Evaluation data",
        "",
        _data_table(eval_rows),
        "",
        "Never used for training or tuning. Held-out-voice sets are rendered by "
        "`models.evaluation.heldout` with voices the training corpus excludes.",
        "",
        "## Results: real speech, clean",
        "",
        score_table(report, CLEAN),
        "",
        "## Results: noise curve",
        "",
        f"CER on all real sets pooled; real background noise mixed at each SNR, one fixed segment "
        f"per utterance (seed {s.noise_seed}).",
        "",
        noise_curve_table(report),
        "",
        "## Results: held-out voices (synthetic, clean)",
        "",
        score_table(report, "heldout"),
        "",
        "## INT8 vs fp32",
        "",
        comparison_table(report),
        "",
        "## Peer: pocketsphinx",
        "",
        _peer_summary(report),
        "",
        "## Ablation: hybrid vs CNN-RNN baseline",
        "",
        "Not measured: the CNN-RNN baseline (`models/training/architecture.py`, kind `cnn_rnn`) "
        "was not trained in this release. No claim is made about the hybrid's advantage.",
        "",
        "## Targets",
        "",
        targets_table(report),
        "",
        "## Caveats",
        "",
        *(f"- {c}" for c in [*derived_caveats(report), *STANDING_CAVEATS]),
        "",
        "## Reproduce",
        "",
        "```",
        "make bench-model            # edgescribe bench model: JSON, tables and this card",
        "python -m models.evaluation.model_card docs/benchmarks/model.json docs/model-card.md",
        "```",
        "",
        f"Benchmark settings: eval manifest `{s.eval_manifest}`, noise `{s.noise_dir}`, SNRs "
        f"{', '.join(f'{v:g}' for v in s.snr_db) or 'none'} dB, held-out manifest "
        f"`{s.heldout_manifest}`, per-set limit {s.limit or 'none'}, {s.threads} thread(s).",
        "",
    ]
    if report.notes:
        parts += ["Notes from the run:", "", *(f"- {n}" for n in report.notes), ""]
    if report.settings.quick:
        parts.insert(2, "> **Quick benchmark run: a subset, not for quoting.**\n")
    return "\n".join(parts)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Render docs/model-card.md from a benchmark JSON.")
    parser.add_argument("report", type=Path, help="benchmark JSON (docs/benchmarks/model.json)")
    parser.add_argument("card", type=Path, help="where to write the card (docs/model-card.md)")
    args = parser.parse_args(argv)
    report = BenchmarkReport.load(args.report)
    args.card.parent.mkdir(parents=True, exist_ok=True)
    args.card.write_text(render_model_card(report), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
