"""The fleet simulation on a small fleet: canary, full rollout and a broken release all converge,
bytes move only where they must, and every device ends on a working model."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge.fleet import FleetPlan, render_markdown, run_fleet_simulation


@pytest.mark.slow
def test_fleet_converges_through_canary_rollout_and_broken_release(tmp_path: Path) -> None:
    devices = 5
    report = run_fleet_simulation(
        FleetPlan(devices=devices, workers=2, canary_percent=40, work_dir=tmp_path),
        progress=lambda line: None,
    )
    canary, full, broken = report["phases"]
    assert [phase["converged"] for phase in report["phases"]] == [True, True, True]
    cohort = report["canary_cohort"]
    assert canary["updates_installed"] == cohort
    assert canary["bytes_moved"] == cohort * report["model_bytes"]["v2"]
    assert full["updates_installed"] == devices - cohort
    assert full["fleet_versions"] == {"v2": devices}
    assert full["registry_versions"] == {"2": devices}  # the cloud heard every device's outcome
    assert broken["updates_rejected"] == devices
    assert broken["bytes_moved"] == devices * report["model_bytes"]["v3"]  # fetched once each
    assert broken["fleet_versions"] == {"v2": devices}
    assert report["final"]["every_device_on_working_model"] is True
    assert "| broken-release |" in render_markdown(report)
