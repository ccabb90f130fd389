"""``clustersim run --workers N`` / ``clustersim.run(config, workers=N)``: one fleet split over worker processes.

The fleet's own equality of shards and serial runs is in tests/fleet/test_fleet_shards.py; here the run API
sends the shards to a real process pool and back: the stored tables are the serial ones, bit for bit, the
progress is the slowest shard's, and a failing worker fails the run with its error, nothing stored as
complete.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import yaml

import clustersim
from clustersim.cli import main
from clustersim.experiments import RunFailed, load
from clustersim.experiments.errors import ConfigError
from clustersim.experiments.results import MANIFEST, read_manifest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fleet"))
from shard_helpers import digest, small_fleet


@pytest.fixture(scope="module")
def serial(tmp_path_factory):
    out = tmp_path_factory.mktemp("serial") / "out"
    return clustersim.run(small_fleet("40s"), out), read_manifest(out)["files"]


def test_a_run_over_three_workers_stores_the_serial_tables_and_reports_the_slowest_shard(serial, tmp_path):
    serial, stored = serial
    seen: list[float] = []
    split = clustersim.run(small_fleet("40s"), tmp_path / "split", workers=3,
                           progress=lambda done_s, duration_s: seen.append(done_s))
    assert digest(split) == digest(serial)
    assert read_manifest(tmp_path / "split")["files"] == stored   # every stored file: same size and sha256
    assert split.manifest["runner"] == {"kind": "process-pool", "workers": 3}
    assert seen == sorted(seen) and seen[-1] == 40.0 and len(seen) >= 3


def test_a_failing_worker_fails_the_run_with_its_error_and_stores_nothing_as_complete(tmp_path, monkeypatch):
    monkeypatch.setenv("CLUSTERSIM_SHARDED", "shard_failure")
    with pytest.raises(RunFailed, match=r"shard 2 of 2 \(nodes 3-4, .*\) failed: RuntimeError: injected failure"):
        clustersim.run(small_fleet("40s"), tmp_path / "failed", workers=2)
    manifest = read_manifest(tmp_path / "failed")
    assert manifest["status"] == "failed" and "injected failure" in manifest["error"]
    assert sorted(p.name for p in (tmp_path / "failed").iterdir()) == [MANIFEST]
    with pytest.raises(FileNotFoundError, match="holds no results"):
        load(tmp_path / "failed")


def test_the_cli_splits_a_run_and_refuses_bad_worker_counts(tmp_path, capsys, monkeypatch):
    path = tmp_path / "fleet.yaml"
    path.write_text(yaml.safe_dump(small_fleet("40s")))
    with pytest.raises(SystemExit) as refused:
        main(["run", str(path), "--workers", "0", "--out", str(tmp_path / "zero")])
    assert refused.value.code == 2
    assert "--workers" in capsys.readouterr().err and not (tmp_path / "zero").exists()
    monkeypatch.setenv("CLUSTERSIM_SHARDED", "shard_failure")
    assert main(["run", str(path), "--workers", "2", "--out", str(tmp_path / "out"), "--quiet"]) == 1
    assert "shard 2 of 2" in capsys.readouterr().err


def test_a_run_split_over_workers_needs_the_fleet_simulation():
    with pytest.raises(ConfigError, match="--workers"):
        clustersim.run(small_fleet("40s"), workers=2, simulate="clustersim.experiments.fake:simulate")
    with pytest.raises(ConfigError, match="--workers"):
        clustersim.run(small_fleet("40s"), workers=0)
