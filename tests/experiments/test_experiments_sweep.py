"""Sweeps end to end on the fake simulation: runners agree bit for bit, failures and timeouts are recorded,
interrupted and damaged sweeps resume doing each run exactly once."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from exp_helpers import count_calls, stable_runs

from clustersim import sweep
from clustersim.experiments import SUMMARY_KEYS, load
from clustersim.experiments.fake import FakeSimulate

QUIET = {"progress": False}


def test_in_process_pool_and_dask_runners_store_identical_runs(tmp_path: Path,
                                                               small_sweep: dict[str, Any]) -> None:
    # The same 12-run sweep through three runners; runs.parquet must match bit for bit (minus timing/host).
    sim = FakeSimulate()
    sweep(small_sweep, tmp_path / "inproc", workers=1, simulate=sim, **QUIET)
    sweep(small_sweep, tmp_path / "pool", workers=2, simulate=sim, **QUIET)
    sweep(small_sweep, tmp_path / "dask", workers=2, dask="local", dask_processes=False, simulate=sim, **QUIET)
    reference = stable_runs(tmp_path / "inproc")
    assert len(reference) == 12 and (reference["status"] == "ok").all()
    for other in ("pool", "dask"):
        pd.testing.assert_frame_equal(stable_runs(tmp_path / other), reference, check_exact=True)
        ts = load(tmp_path / other).timeseries.sort_values(["run_id", "tenant", "time_s"], ignore_index=True)
        ref_ts = load(tmp_path / "inproc").timeseries.sort_values(["run_id", "tenant", "time_s"], ignore_index=True)
        pd.testing.assert_frame_equal(ts, ref_ts, check_exact=True)


def test_runs_table_has_one_row_per_run_with_parameters_outcome_and_every_summary_key(
        tmp_path: Path, small_sweep: dict[str, Any]) -> None:
    report = sweep(small_sweep, tmp_path, workers=1, simulate=FakeSimulate(), **QUIET)
    runs = pd.read_parquet(tmp_path / "runs.parquet")
    assert report.exit_status == 0 and len(runs) == 12
    expected = ["run_id", "point", "replicate", "tenants.0.allocator.madvise", "tenants.0.workload.heap", "seed",
                "config_hash", "status", "error", "wall_s", "host", *SUMMARY_KEYS]
    assert list(runs.columns) == expected
    assert (tmp_path / "tenants" / f"run_id={runs.run_id[0]}" / "part.parquet").exists()
    assert (tmp_path / "tenant_groups" / f"run_id={runs.run_id[0]}" / "part.parquet").exists()


def test_load_returns_tidy_tables_joined_to_run_parameters(tmp_path: Path, small_sweep: dict[str, Any]) -> None:
    sweep(small_sweep, tmp_path, workers=1, simulate=FakeSimulate(timeseries_points=5), **QUIET)
    runs, tenants, tenant_groups, timeseries, hist = load(tmp_path)
    assert len(runs) == 12 and len(tenants) == 12 and len(timeseries) == 12 * 5
    assert len(tenant_groups) == 12 and set(tenant_groups["node_group"]) == {"a"}   # one tenant, one node group
    for table in (tenants, tenant_groups, timeseries, hist):
        assert {"run_id", "seed", "tenants.0.allocator.madvise", "config_hash"} <= set(table.columns)
    assert {"bucket", "lo_ms", "hi_ms", "count"} <= set(hist.columns)


def test_a_failing_run_is_recorded_with_its_error_and_the_others_finish(tmp_path: Path,
                                                                        small_sweep: dict[str, Any]) -> None:
    sim = FakeSimulate(fail_when={"tenants.0.allocator.madvise": "free"})
    report = sweep(small_sweep, tmp_path, workers=2, simulate=sim, **QUIET)
    runs = pd.read_parquet(tmp_path / "runs.parquet")
    failed = runs[runs.status == "failed"]
    assert report.exit_status == 4 and len(failed) == 4 and (runs.status == "ok").sum() == 8
    assert (failed["tenants.0.allocator.madvise"] == "free").all()
    assert failed.error.str.startswith("RuntimeError: fake failure").all()
    assert failed["thp_coverage"].isna().all()


def test_a_run_past_the_timeout_is_killed_and_recorded_as_failed(tmp_path: Path, base: dict[str, Any]) -> None:
    spec = {"base": base, "grid": {"tenants.0.allocator.madvise": ["dontneed", "free"]}}
    sim = FakeSimulate(sleep_s=60, sleep_when={"tenants.0.allocator.madvise": "free"})
    # The deadline leaves the quick run's child interpreter room to start on a loaded machine (the suite
    # runs on every core); the slow run sleeps far past it.
    report = sweep(spec, tmp_path, workers=1, timeout=10, simulate=sim, **QUIET)
    runs = pd.read_parquet(tmp_path / "runs.parquet").set_index("tenants.0.allocator.madvise")
    assert report.exit_status == 1
    assert runs.loc["free", "status"] == "failed" and runs.loc["free", "error"] == "timed out after 10 s"
    assert runs.loc["free", "wall_s"] < 30 and runs.loc["dontneed", "status"] == "ok"


def test_resume_skips_complete_runs_and_rerun_failed_retries_failures(tmp_path: Path, calls: Path,
                                                                       small_sweep: dict[str, Any]) -> None:
    sweep(small_sweep, tmp_path, workers=1, simulate=FakeSimulate(
        calls_dir=str(calls), fail_when={"tenants.0.workload.heap": 2 << 30}), **QUIET)
    again = sweep(small_sweep, tmp_path, workers=1, simulate=FakeSimulate(calls_dir=str(calls)), **QUIET)
    assert (again.reused, again.executed, again.exit_status) == (12, 0, 6)
    retried = sweep(small_sweep, tmp_path, workers=1, simulate=FakeSimulate(calls_dir=str(calls)),
                    rerun_failed=True, **QUIET)
    assert (retried.reused, retried.executed, retried.exit_status) == (6, 6, 0)
    assert sorted(count_calls(calls).values()) == [1] * 12


def test_a_changed_sweep_file_adds_only_the_new_runs(tmp_path: Path, calls: Path,
                                                     small_sweep: dict[str, Any]) -> None:
    sim = FakeSimulate(calls_dir=str(calls))
    sweep(small_sweep, tmp_path, workers=1, simulate=sim, **QUIET)
    small_sweep["seeds"] = 3
    report = sweep(small_sweep, tmp_path, workers=1, simulate=sim, **QUIET)
    assert (report.total, report.reused, report.executed) == (18, 12, 6)
    assert sorted(count_calls(calls).values()) == [1] * 18


def test_a_truncated_result_file_is_detected_and_its_run_redone(tmp_path: Path, calls: Path,
                                                                small_sweep: dict[str, Any]) -> None:
    sim = FakeSimulate(calls_dir=str(calls))
    sweep(small_sweep, tmp_path, workers=1, simulate=sim, **QUIET)
    victim = sorted((tmp_path / "timeseries").glob("run_id=*/part.parquet"))[0]
    victim.write_bytes(victim.read_bytes()[:-20])
    report = sweep(small_sweep, tmp_path, workers=1, simulate=sim, **QUIET)
    assert (report.reused, report.executed) == (11, 1)
    assert sorted(count_calls(calls).values()) == [1] * 11 + [2]
    assert load(tmp_path).timeseries["run_id"].nunique() == 12


def test_a_garbled_completion_marker_makes_its_run_redone(tmp_path: Path, small_sweep: dict[str, Any]) -> None:
    sweep(small_sweep, tmp_path, workers=1, simulate=FakeSimulate(), **QUIET)
    marker = sorted((tmp_path / "done").glob("*.json"))[0]
    marker.write_text(marker.read_text()[:30])
    report = sweep(small_sweep, tmp_path, workers=1, simulate=FakeSimulate(), **QUIET)
    assert report.executed == 1


def test_a_run_made_by_other_code_is_redone(tmp_path: Path, small_sweep: dict[str, Any]) -> None:
    # Results carry a fingerprint of the package's source: after any change to the model, a resume redoes
    # the runs instead of mixing old and new numbers in one table.
    sweep(small_sweep, tmp_path, workers=1, simulate=FakeSimulate(), **QUIET)
    marker = sorted((tmp_path / "done").glob("*.json"))[0]
    data = json.loads(marker.read_text())
    marker.write_text(json.dumps({**data, "code": "older-code"}))
    report = sweep(small_sweep, tmp_path, workers=1, simulate=FakeSimulate(), **QUIET)
    assert report.executed == 1


KILLED_SWEEP = """
import ast
import sys
from clustersim import sweep
from clustersim.experiments.fake import FakeSimulate
spec, out, calls = ast.literal_eval(sys.argv[1]), sys.argv[2], sys.argv[3]
sweep(spec, out, workers=1, progress=False, simulate=FakeSimulate(calls_dir=calls, exit_after=5))
"""


def test_a_sweep_killed_mid_way_resumes_and_does_each_run_exactly_once(tmp_path: Path, calls: Path,
                                                                       small_sweep: dict[str, Any]) -> None:
    # The process dies (os._exit, no clean-up) as the 6th run starts; a resume finishes the other 7.
    out = tmp_path / "out"
    script = textwrap.dedent(KILLED_SWEEP)
    proc = subprocess.run([sys.executable, "-c", script, repr(small_sweep), str(out), str(calls)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 3, proc.stderr
    assert len(list((out / "done").glob("*.json"))) == 5 and not list(out.rglob("*.tmp"))
    report = sweep(small_sweep, out, workers=1, simulate=FakeSimulate(calls_dir=str(calls)), **QUIET)
    assert (report.reused, report.executed, report.exit_status) == (5, 7, 0)
    assert sorted(count_calls(calls).values()) == [1] * 12


def test_an_interrupted_sweep_writes_a_consistent_runs_table_before_stopping(
        tmp_path: Path, calls: Path, small_sweep: dict[str, Any]) -> None:
    with pytest.raises(KeyboardInterrupt):
        sweep(small_sweep, tmp_path, workers=1, simulate=FakeSimulate(calls_dir=str(calls), interrupt_after=4),
              **QUIET)
    assert len(pd.read_parquet(tmp_path / "runs.parquet")) == 4
    report = sweep(small_sweep, tmp_path, workers=1, simulate=FakeSimulate(calls_dir=str(calls)), **QUIET)
    assert (report.reused, report.executed) == (4, 8)
    assert sorted(count_calls(calls).values()) == [1] * 12


def test_a_dask_local_cluster_of_processes_matches_the_in_process_runner(tmp_path: Path, base: dict[str, Any]) -> None:
    spec = {"base": base, "seeds": 2, "grid": {"tenants.0.allocator.madvise": ["dontneed", "free"]}}
    sweep(spec, tmp_path / "inproc", workers=1, simulate=FakeSimulate(), **QUIET)
    sweep(spec, tmp_path / "dask", workers=2, dask="local", simulate=FakeSimulate(), **QUIET)
    pd.testing.assert_frame_equal(stable_runs(tmp_path / "dask"), stable_runs(tmp_path / "inproc"),
                                  check_exact=True)


def test_the_fleet_simulation_gives_identical_runs_in_process_and_in_a_pool(tmp_path: Path,
                                                                           base: dict[str, Any]) -> None:
    pytest.importorskip("clustersim.fleet.simulate", reason="the fleet simulation is not available")
    spec = {"base": {**base, "duration": "10s"}, "seeds": 2,
            "grid": {"tenants.0.allocator.madvise": ["dontneed", "free"]}}
    sweep(spec, tmp_path / "inproc", workers=1, **QUIET)
    sweep(spec, tmp_path / "pool", workers=2, **QUIET)
    pd.testing.assert_frame_equal(stable_runs(tmp_path / "pool"), stable_runs(tmp_path / "inproc"),
                                  check_exact=True)
