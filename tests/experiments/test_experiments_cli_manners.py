"""The command line's manners: --version, python -m, --quiet, --json, argument errors, Ctrl-C, logs.

Argument errors exit 2 with argparse's message before any folder exists; an interrupted pool sweep exits
130 with the resume message and no traceback; progress bars appear only on a terminal (or --progress);
a log file gets one line per finished run; a resumed sweep says what it skips, redoes and runs new.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from clustersim.cli import RESUME_MESSAGE, main
from clustersim.experiments.results import package_version

REPO = Path(__file__).resolve().parents[2]
FAKE = "clustersim.experiments.fake:simulate"


def cli(*args: str, env: dict[str, str] | None = None, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    return subprocess.run([sys.executable, "-m", "clustersim", *args], capture_output=True, text=True,
                          env=full_env, timeout=120, **kwargs)


@pytest.fixture
def sweep_file(tmp_path: Path) -> Path:
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump({"name": "s", "seeds": 3,
                                    "base": {"duration": "5s", "tenants": [{"workload": {"heap": "64M"}}]}}))
    return path


def test_version_and_python_dash_m(tmp_path: Path) -> None:
    done = cli("--version")
    assert done.returncode == 0 and done.stdout.strip() == f"clustersim {package_version()}"


@pytest.mark.parametrize("args", [["--workers", "0"], ["--workers", "-2"], ["--workers", "two"],
                                  ["--timeout", "0"], ["--timeout", "-1"], ["--timeout", "inf"]])
def test_argument_errors_exit_2_before_any_folder(args: list[str], sweep_file: Path, tmp_path: Path,
                                                  capsys: Any) -> None:
    with pytest.raises(SystemExit) as info:
        main(["sweep", str(sweep_file), "--out", str(tmp_path / "out"), *args])
    assert info.value.code == 2
    assert f"error: argument {args[0]}" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_check_json_prints_the_config_and_hash_and_quiet_prints_nothing(sweep_file: Path, tmp_path: Path,
                                                                        capsys: Any) -> None:
    run_file = tmp_path / "run.yaml"
    run_file.write_text("tenants: []\n")
    assert main(["check", str(run_file), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["config"]["tenants"] == [] and len(data["config_hash"]) == 64
    assert main(["check", str(run_file), "--quiet"]) == 0
    assert capsys.readouterr().out == ""
    run_file.write_text("seed: 1.0\n")
    assert main(["check", str(run_file), "--json"]) == 2
    assert json.loads(capsys.readouterr().out)["problems"] == ["seed: 1.0 -> an integer (not 1.0 or true)"]


def test_sweep_json_log_and_resume_report(sweep_file: Path, tmp_path: Path, capsys: Any, monkeypatch: Any) -> None:
    monkeypatch.setenv("CLUSTERSIM_SIMULATE", FAKE)
    out, log = tmp_path / "out", tmp_path / "sweep.log"
    assert main(["sweep", str(sweep_file), "--out", str(out), "--workers", "1", "--json", "--log", str(log)]) == 0
    captured = capsys.readouterr()
    report = json.loads(captured.out)
    assert (report["total"], report["executed"], report["failed"]) == (3, 3, 0)
    assert "sweep:" not in captured.err                   # no progress bar off a terminal
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert [line["status"] for line in lines] == ["ok"] * 3
    (out / "done" / f"{lines[0]['run_id']}.json").write_text("{")   # one marker garbled
    assert main(["sweep", str(sweep_file), "--out", str(out), "--workers", "1", "--log", str(log)]) == 0
    err = capsys.readouterr().err
    assert "3 runs: 2 complete (skipped), 1 redone, 0 new" in err
    assert f"redo run {lines[0]['run_id']}" in err and "its completion marker is unreadable" in err
    assert len(log.read_text().splitlines()) == 4


def test_quiet_sweep_prints_nothing_and_progress_forces_a_bar(sweep_file: Path, tmp_path: Path, capsys: Any,
                                                              monkeypatch: Any) -> None:
    monkeypatch.setenv("CLUSTERSIM_SIMULATE", FAKE)
    assert main(["sweep", str(sweep_file), "--out", str(tmp_path / "a"), "--workers", "1", "--quiet"]) == 0
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""
    assert main(["sweep", str(sweep_file), "--out", str(tmp_path / "b"), "--workers", "1", "--progress"]) == 0
    assert "sweep: 100%" in capsys.readouterr().err


@pytest.mark.parametrize(("runner", "settle_s"), [(["--workers", "2"], 2.0),
                                                 (["--workers", "2", "--dask", "local"], 10.0)],
                         ids=["pool", "dask-local"])
def test_ctrl_c_of_a_sweep_exits_130_with_the_resume_message(runner: list[str], settle_s: float,
                                                             sweep_file: Path, tmp_path: Path) -> None:
    # Two workers on runs that sleep a minute; SIGINT to the command once its workers are busy.
    env = {**os.environ, "PYTHONPATH": str(REPO), "CLUSTERSIM_SIMULATE": "clustersim.experiments.fake:slow_simulate"}
    # A child inherits an ignored SIGINT (and Python then leaves it ignored, as a command started in the
    # background must): whatever an earlier test left this process with, start the command as a terminal
    # would, with SIGINT at its default.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        proc = subprocess.Popen([sys.executable, "-m", "clustersim", "sweep", str(sweep_file), "--out",
                                 str(tmp_path / "out"), *runner], env=env, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    finally:
        signal.signal(signal.SIGINT, previous)
    deadline = time.monotonic() + 60
    while not (tmp_path / "out" / "manifest.json").exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(settle_s)   # the workers are up and sleeping in their runs
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert RESUME_MESSAGE in err
    assert "Traceback" not in err and "AttributeError" not in err
