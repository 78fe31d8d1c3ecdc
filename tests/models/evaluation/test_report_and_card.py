"""The JSON -> markdown path: tables, targets and the model card are rendered from the report
alone, and say "not measured" / "not met" rather than inventing a pass."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from models.evaluation.model_card import main as model_card_main
from models.evaluation.model_card import render_model_card
from models.evaluation.report import (
    BenchmarkReport,
    noise_curve_table,
    render_markdown,
    score_table,
    table,
)
from models.evaluation.targets import check_targets

FIXTURE = Path(__file__).with_name("benchmark_fixture.json")


@pytest.fixture
def report() -> BenchmarkReport:
    return BenchmarkReport.load(FIXTURE)


def edited(report: BenchmarkReport, **changes: object) -> BenchmarkReport:
    data = json.loads(report.to_json())
    for dotted, value in changes.items():
        node = data
        *parents, leaf = dotted.split("__")
        for key in parents:
            node = node[int(key)] if isinstance(node, list) else node[key]
        node[leaf] = value
    return BenchmarkReport.model_validate(data)


def test_report_survives_a_json_round_trip(report: BenchmarkReport, tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    path.write_text(report.to_json())
    assert BenchmarkReport.load(path) == report


def test_clean_table_has_one_column_per_system_and_pooled_row_last(
    report: BenchmarkReport,
) -> None:
    rows = score_table(report, "clean").splitlines()
    assert rows[0].count("CER / WER") == 3
    assert rows[2].startswith("| `an4_test` | 130 | 12.3 % / 30.1 % | 12.2 % / 30.0 % | 32.2 %")
    assert rows[-1].startswith("| `all` | 430 |")


def test_noise_curve_leaves_unmeasured_peer_cells_empty(report: BenchmarkReport) -> None:
    curve = noise_curve_table(report)
    assert "| 10 dB SNR | 16.4 % | 16.3 % | – |" in curve
    assert "| clean | 9.9 % | 9.7 % | 45.0 % |" in curve


def test_markdown_tables_align_text_left_and_numbers_right() -> None:
    assert table(["a", "b", "c"], [["x", "1", "2"]], text_columns=2).splitlines()[1] == (
        "|:---|:---|---:|"
    )


def test_benchmark_markdown_holds_every_section(report: BenchmarkReport) -> None:
    markdown = render_markdown(report)
    for heading in (
        "## Models",
        "## INT8 vs fp32",
        "## Noise curve",
        "### 10 dB SNR",
        "## Targets",
    ):
        assert heading in markdown
    assert "2.35x" in markdown
    assert "Quick run" not in markdown


def test_targets_report_met_unmet_and_unknown(report: BenchmarkReport) -> None:
    checks = {c.target: c for c in check_targets(report)}
    assert checks["held-out voices, clean: `edgescribe-cloud` CER ≤ 3.2 %"].met is False
    assert checks["held-out voices, clean: `edgescribe-edge` CER ≤ 5.0 %"].met is True
    assert checks["`an4_test`: `edgescribe-edge` CER below pocketsphinx"].met is True
    assert checks["INT8 ≥ 2x faster than fp32"].met is True
    assert checks["noise: hybrid beats the CNN-RNN baseline at 10 dB and 5 dB"].met is None
    assert checks["`cv_en_100`: report honestly (no target)"].measured == "not measured"


def test_missing_peer_makes_peer_targets_unknown_not_met(report: BenchmarkReport) -> None:
    without_peer = report.model_copy(
        update={"results": [r for r in report.results if r.kind != "peer"]}
    )
    checks = {c.target: c for c in check_targets(without_peer)}
    assert checks["`an4_test`: `edgescribe-edge` CER below pocketsphinx"].met is None


def test_int8_loss_is_not_judged_across_different_checkpoints(report: BenchmarkReport) -> None:
    mixed = edited(report, comparison__same_checkpoint=False)
    checks = {c.target: c for c in check_targets(mixed)}
    loss = checks["INT8 relative CER loss ≤ 2 % (real sets pooled)"]
    assert loss.met is None
    assert "different checkpoints" in loss.measured
    assert "DIFFERENT checkpoints" in render_model_card(mixed)


def test_oversized_int8_file_is_not_met(report: BenchmarkReport) -> None:
    checks = {c.target: c for c in check_targets(edited(report, comparison__size_ratio=0.3017))}
    assert checks["INT8 file ≤ 30 % of fp32"].met is False


def test_card_states_the_numbers_of_the_report(report: BenchmarkReport) -> None:
    card = render_model_card(report)
    assert "| `an4_train` | train | 948 | 42.4 | 74 |" in card
    assert "| `heldout_flite_slt` | heldout-voice | 60 | 2.9 | 1 |" in card
    assert "4.2 % / 12.0 %" in card  # edge on the held-out voice
    assert "2 of 60 also occur verbatim" in card
    assert "baseline was NOT trained" in card
    assert "lower CER than pocketsphinx on `an4_test`, `fsdd_test`; not lower on no set" in card


def test_card_flags_a_partly_trained_model(report: BenchmarkReport) -> None:
    assert "partly trained" not in render_model_card(report)
    early = edited(
        report,
        models__0__training_data={"steps": 200, "note": "DEV export, partly trained"},
        models__1__training_data={"steps": 200, "note": "DEV export, partly trained"},
    )
    card = render_model_card(early)
    assert "`edgescribe-edge` is partly trained (200 steps" in card


def test_card_warns_that_a_quick_run_is_not_for_quoting(report: BenchmarkReport) -> None:
    card = render_model_card(edited(report, settings__quick=True, settings__limit=10))
    assert "Quick benchmark run" in card
    assert "at most 10 utterances per set" in card


def test_model_card_command_writes_the_card(tmp_path: Path) -> None:
    out = tmp_path / "docs" / "model-card.md"
    assert model_card_main([str(FIXTURE), str(out)]) == 0
    assert out.read_text().startswith("# Model card: EdgeScribe acoustic models")
