"""Results cannot be silently corrupt: checksums in the completion markers, refused output folders.

Each completion marker (and a single run's manifest) records the size and sha256 of every table; a resume
redoes any run whose tables differ (one flipped bit, not only a truncation) and says why, ``load`` leaves
such a run out and names it, and ``run --out`` refuses a folder it must not write before simulating.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from exp_helpers import count_calls

from clustersim import run, sweep
from clustersim.cli import main
from clustersim.experiments import ConfigError, load
from clustersim.experiments.fake import FakeSimulate
from clustersim.experiments.results import DamagedResults

FAKE = "clustersim.experiments.fake:simulate"


def flip_one_bit(path: Path) -> None:
    """Flip the lowest bit of the middle byte: same size, still a readable file most of the time."""
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 1
    path.write_bytes(bytes(data))


def test_every_marker_records_the_sha256_of_each_table(tmp_path: Path, small_sweep: dict[str, Any]) -> None:
    sweep(small_sweep, tmp_path, workers=1, simulate=FakeSimulate(), progress=False)
    marker = json.loads(sorted((tmp_path / "done").glob("*.json"))[0].read_text())
    for table, record in marker["files"].items():
        data = (tmp_path / table / f"run_id={marker['run_id']}" / "part.parquet").read_bytes()
        assert record == {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def test_a_flipped_bit_is_detected_and_its_run_redone_and_named(tmp_path: Path, calls: Path,
                                                                small_sweep: dict[str, Any]) -> None:
    # 12 runs; one bit of one run's time series flips on disk (same size). Resume redoes that run only,
    # and says which and why.
    sim = FakeSimulate(calls_dir=str(calls))
    sweep(small_sweep, tmp_path, workers=1, simulate=sim, progress=False)
    victim = sorted((tmp_path / "timeseries").glob("run_id=*/part.parquet"))[0]
    run_id = victim.parent.name.removeprefix("run_id=")
    flip_one_bit(victim)
    with pytest.warns(DamagedResults, match=rf"run {run_id}: table timeseries: its sha256 differs"):
        results = load(tmp_path)
    assert run_id not in set(results.timeseries["run_id"]) and results.timeseries["run_id"].nunique() == 11
    assert (results.runs.set_index("run_id").loc[run_id, "status"]) == "damaged"
    notes: list[str] = []
    report = sweep(small_sweep, tmp_path, workers=1, simulate=sim, progress=False, notes=notes.append)
    assert (report.reused, report.executed) == (11, 1)
    assert report.redone == {run_id: "table timeseries: its sha256 differs from the one recorded"}
    assert notes[0] == "12 runs: 11 complete (skipped), 1 redone, 0 new"
    assert notes[1].startswith(f"  redo run {run_id} ") and "its sha256 differs" in notes[1]
    assert sorted(count_calls(calls).values()) == [1] * 11 + [2]
    assert load(tmp_path).timeseries["run_id"].nunique() == 12


def test_a_damaged_single_run_folder_is_named_when_loaded(tmp_path: Path, base: dict[str, Any]) -> None:
    run(base, tmp_path / "r", simulate=FAKE)
    flip_one_bit(tmp_path / "r" / "tenants.parquet")
    with pytest.raises(ValueError, match=r"run 'tiny' is damaged: tenants.parquet: its sha256 differs"):
        load(tmp_path / "r")


def test_run_refuses_a_sweep_folder_a_file_and_an_earlier_run_without_force(
        tmp_path: Path, base: dict[str, Any], small_sweep: dict[str, Any], calls: Path) -> None:
    sim = FakeSimulate(calls_dir=str(calls))
    sweep(small_sweep, tmp_path / "sweep", workers=1, simulate=FakeSimulate(), progress=False)
    (tmp_path / "file").write_text("x")
    run(base, tmp_path / "one", simulate=sim)
    for out, why in ((tmp_path / "sweep", "holds a sweep's"), (tmp_path / "file", "this is a file"),
                     (tmp_path / "one", "--force replaces them"), (tmp_path / "file" / "below", "not writable")):
        with pytest.raises(ConfigError, match=why):
            run(base, out, simulate=sim)
    assert len(count_calls(calls)) == 1           # refused before simulating
    run(base, tmp_path / "one", simulate=sim, force=True)
    assert load(tmp_path / "one").runs["name"].tolist() == ["tiny"]


def test_run_command_refuses_a_sweep_folder_with_exit_2(tmp_path: Path, base: dict[str, Any],
                                                       small_sweep: dict[str, Any], capsys: Any,
                                                       monkeypatch: Any) -> None:
    monkeypatch.setenv("CLUSTERSIM_SIMULATE", FAKE)
    run_file = tmp_path / "run.yaml"
    run_file.write_text(json.dumps(base))
    sweep(small_sweep, tmp_path / "sweep", workers=1, simulate=FakeSimulate(), progress=False)
    assert main(["run", str(run_file), "--out", str(tmp_path / "sweep")]) == 2
    assert "--out: " in capsys.readouterr().err


def test_sweep_refuses_a_single_run_folder(tmp_path: Path, base: dict[str, Any], small_sweep: dict[str, Any]) -> None:
    run(base, tmp_path / "one", simulate=FAKE)
    with pytest.raises(ConfigError, match="holds a single run's"):
        sweep(small_sweep, tmp_path / "one", workers=1, simulate=FakeSimulate(), progress=False)
