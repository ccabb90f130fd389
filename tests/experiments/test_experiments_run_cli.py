"""Single runs and the command line: stored files and manifest, clean errors, exit statuses, safe paths."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

import clustersim
from clustersim.cli import main
from clustersim.experiments import SUMMARY_KEYS, RunFailed, load
from clustersim.experiments.fake import FakeSimulate
from clustersim.experiments.store import inside, safe_name

FAKE = "clustersim.experiments.fake:simulate"


@pytest.fixture
def run_file(tmp_path: Path, base: dict[str, Any]) -> Path:
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(base))
    return path


def test_run_stores_its_tables_and_a_manifest_written_last(tmp_path: Path, base: dict[str, Any]) -> None:
    seen: list[tuple[float, float]] = []
    result = clustersim.run(base, tmp_path / "out", ["seed=7"], simulate=FakeSimulate(),
                            progress=lambda done, total: seen.append((done, total)))
    files = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert files == ["latency_histograms.parquet", "manifest.json", "summary.parquet", "tenant_groups.parquet",
                     "tenants.parquet", "timeseries.parquet"]
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["status"] == "ok" and manifest["error"] is None and manifest["seed"] == 7
    assert manifest["config"]["nodes"][0]["memory"] == 16 << 30 and len(manifest["config_hash"]) == 64
    assert manifest["version"] == clustersim.__version__ and manifest["wall_s"] >= 0
    assert list(result.summary) == list(SUMMARY_KEYS) and seen[-1] == (60.0, 60.0)
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "out" / "tenants.parquet"), result.tenants)
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "out" / "tenant_groups.parquet"), result.tenant_groups)


def test_a_failed_run_raises_and_leaves_a_failed_manifest_only(tmp_path: Path, base: dict[str, Any]) -> None:
    with pytest.raises(RunFailed, match="fake failure"):
        clustersim.run(base, tmp_path, simulate=FakeSimulate(fail_when={"name": "tiny"}))
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["status"] == "failed" and "RuntimeError: fake failure" in manifest["error"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["manifest.json"]


def test_a_single_run_folder_loads_like_a_sweep(tmp_path: Path, base: dict[str, Any]) -> None:
    clustersim.run(base, tmp_path, simulate=FakeSimulate())
    loaded = clustersim.load(tmp_path)
    runs, tenants, tenant_groups = loaded.runs, loaded.tenants, loaded.tenant_groups
    assert len(runs) == 1 and tenants["run_id"].iloc[0] == runs["run_id"].iloc[0]
    assert list(tenant_groups[["tenant", "node_group"]].itertuples(index=False, name=None)) == [("web", "a")]
    assert tenant_groups["run_id"].iloc[0] == runs["run_id"].iloc[0]


def test_names_become_safe_single_path_components() -> None:
    assert safe_name("../../x") == "_.._x" and safe_name("..") == "run" and safe_name(".hidden") == "hidden"
    assert safe_name("a b/c:d") == "a_b_c_d" and safe_name("ok-name_1.2") == "ok-name_1.2"


def test_writing_outside_the_output_folder_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="outside the output folder"):
        inside(tmp_path / "out", tmp_path / "out" / ".." / "escape")


def test_a_run_named_to_escape_writes_inside_results(tmp_path: Path, base: dict[str, Any], monkeypatch: Any,
                                                     capsys: Any) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CLUSTERSIM_SIMULATE", FAKE)
    (tmp_path / "work").mkdir()
    (tmp_path / "work" / "run.yaml").write_text(yaml.safe_dump({**base, "name": "../../x"}))
    monkeypatch.chdir(tmp_path / "work")
    assert main(["run", "run.yaml"]) == 0
    written = [p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file()]
    assert all(p.parts[:2] == ("work", "results") or p == Path("work/run.yaml") for p in written)
    assert (tmp_path / "work" / "results" / "_.._x" / "manifest.json").exists()
    assert "thp_coverage" in capsys.readouterr().out


def test_check_prints_the_resolved_config_and_exits_0(run_file: Path, capsys: Any) -> None:
    assert main(["check", str(run_file), "--set", "tenants.0.allocator.madvise=free"]) == 0
    out = capsys.readouterr().out
    assert "madvise: free" in out and "memory: 17179869184" in out and "# config hash: " in out


def test_check_prints_every_problem_without_a_traceback_and_exits_2(run_file: Path, capsys: Any) -> None:
    code = main(["check", str(run_file), "--set", "tenants.0.allocator.madvise=maybe", "--set", "seed=-3"])
    err = capsys.readouterr().err
    assert code == 2 and "2 problem(s)" in err and "Traceback" not in err
    assert "tenants.0.allocator.madvise: 'maybe' -> one of dontneed" in err


def test_run_without_the_fleet_simulation_fails_cleanly(run_file: Path, tmp_path: Path, capsys: Any,
                                                        monkeypatch: Any) -> None:
    monkeypatch.setenv("CLUSTERSIM_SIMULATE", "clustersim.no_such_module:simulate")
    assert main(["run", str(run_file), "--out", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err
    assert "is not available" in err and "Traceback" not in err


def test_sweep_command_dry_run_lists_runs_and_a_real_run_exits_with_failed_count(
        tmp_path: Path, small_sweep: dict[str, Any], capsys: Any, monkeypatch: Any) -> None:
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(small_sweep))
    assert main(["sweep", str(path), "--out", str(tmp_path / "r"), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "12 runs (12 todo)" in out and "tenants.0.allocator.madvise" in out and "config_hash" in out
    monkeypatch.setenv("CLUSTERSIM_SIMULATE", FAKE)
    assert main(["sweep", str(path), "--out", str(tmp_path / "r"), "--workers", "1"]) == 0
    assert "12 runs: 0 already done, 12 run now, 0 failed" in capsys.readouterr().out
    assert len(load(tmp_path / "r").runs) == 12


def test_sweep_exit_status_counts_failed_runs(tmp_path: Path, small_sweep: dict[str, Any], monkeypatch: Any,
                                              capsys: Any) -> None:
    import clustersim.experiments.fake as fake

    monkeypatch.setattr(fake, "simulate", FakeSimulate(fail_when={"tenants.0.allocator.madvise": "splittable"}))
    monkeypatch.setenv("CLUSTERSIM_SIMULATE", FAKE)
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(small_sweep))
    assert main(["sweep", str(path), "--out", str(tmp_path / "r"), "--workers", "1"]) == 4
    assert "failed runs:" in capsys.readouterr().out
