"""compare: the paired t interval against a hand computation, pairing by seed, bad input; diff; and one
small compare on the real fleet."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

import clustersim
from clustersim.cli import main
from clustersim.experiments.errors import ConfigError
from clustersim.experiments.fake import FakeDensity
from clustersim.whatif.compare import COLUMNS, comparison, paired_ci

BASE: dict[str, Any] = {"name": "tiny", "duration": "10s", "nodes": [{"name": "n", "count": 1, "memory": "8G"}],
                        "tenants": [{"name": "web", "replicas": 2, "workload": {"heap": "64M"}}]}


def side(**changes: Any) -> dict[str, Any]:
    config = copy.deepcopy(BASE)
    for key, value in changes.items():
        config["tenants"][0][key] = value
    return config


def test_paired_t_interval_matches_a_hand_computation():
    # d = b - a = [1, 2, 2, 3]: mean 2, sd = sqrt(2/3) = 0.81650, se = sd / 2 = 0.40825,
    # t(0.975, 3) = 3.18245 (Student t table), half-width 1.29923: CI [0.70077, 3.29923].
    delta, low, high = paired_ci(np.array([1.0, 2, 3, 4]), np.array([2.0, 4, 5, 7]))
    assert delta == 2.0
    assert low == pytest.approx(0.70077, abs=1e-5) and high == pytest.approx(3.29923, abs=1e-5)


def test_paired_interval_edge_cases():
    assert all(math.isnan(x) for x in paired_ci(np.array([1.0]), np.array([2.0]))[1:])   # one pair: no interval
    assert paired_ci(np.array([1.0, 2.0]), np.array([4.0, 5.0])) == (3.0, 3.0, 3.0)     # constant difference


def test_comparison_pairs_by_seed_and_marks_significance():
    seeds = [11, 12, 13, 14]
    a = pd.DataFrame({"seed": seeds, "tenant": "web", "node_group": None, "metric": "latency_p99_ms",
                      "value": [1.0, 2, 3, 4]})
    b = a.assign(value=[2.0, 4, 5, 7]).iloc[::-1]             # order must not matter: pairs are by seed
    noise = pd.concat([a.assign(metric="oom_kills"), a.assign(metric="oom_kills", value=[2.0, 1, 4, 3])])
    table = comparison(pd.concat([a, noise.iloc[:4]]), pd.concat([b, noise.iloc[4:]]))
    assert list(table.columns) == list(COLUMNS)
    p99 = table.set_index("metric").loc["latency_p99_ms"]
    assert (p99["a_mean"], p99["b_mean"], p99["delta"], p99["n"]) == (2.5, 4.5, 2.0, 4)
    assert p99["ci_low"] == pytest.approx(0.70077, abs=1e-5) and bool(p99["significant"])
    oom = table.set_index("metric").loc["oom_kills"]      # d = [1, -1, 1, -1]: mean 0, interval holds 0
    assert oom["delta"] == 0 and oom["ci_low"] < 0 < oom["ci_high"] and not oom["significant"]


def test_compare_on_the_stand_in_finds_the_known_delta(tmp_path: Path):
    # FakeDensity's p99 is the replica count in ms: B - A is exactly 3 ms in every seed.
    fake = FakeDensity(knob="tenants.0.replicas")
    table = clustersim.compare(side(replicas=2), side(replicas=5), seeds=3, out=tmp_path / "out", workers=1,
                               simulate=fake)
    rows = table[(table["metric"] == "latency_p99_ms")]
    assert set(rows["node_group"].fillna("-")) == {"-", "n"}     # per tenant and per tenant x node group
    assert (rows["delta"] == 3.0).all() and rows["significant"].all() and (rows["n"] == 3).all()
    same = clustersim.compare(side(), side(), seeds=3, workers=1, simulate=fake)
    assert (same["delta"] == 0).all() and not same["significant"].any()
    for name in ("compare.parquet", "compare.md", "a/runs.parquet", "b/runs.parquet"):
        assert (tmp_path / "out" / name).exists(), name
    assert "| * | web |" in (tmp_path / "out" / "compare.md").read_text()


def test_compare_from_stored_folders_and_the_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]):
    monkeypatch.setenv("CLUSTERSIM_SIMULATE", "clustersim.experiments.fake:density")
    (tmp_path / "a.yaml").write_text(yaml.safe_dump(side(replicas=2)))
    (tmp_path / "b.yaml").write_text(yaml.safe_dump(side(replicas=4)))
    clustersim.run(tmp_path / "a.yaml", tmp_path / "stored-a")
    assert main(["compare", str(tmp_path / "stored-a"), str(tmp_path / "b.yaml"), "--seeds", "2",
                 "--workers", "1", "--json"]) == 0
    rows = [r for r in json.loads(capsys.readouterr().out) if r["metric"] == "latency_p99_ms"]
    assert {r["delta"] for r in rows} == {2.0}
    assert main(["compare", str(tmp_path / "a.yaml"), str(tmp_path / "b.yaml"), "--seeds", "2",
                 "--workers", "1"]) == 0
    out = capsys.readouterr().out
    assert "latency_p99_ms" in out and "excludes 0" in out


def test_bad_compare_input_is_refused_naming_the_side(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    with pytest.raises(ConfigError, match=r"A: '.*nowhere\.yaml' -> a run file or a stored run or sweep folder"):
        clustersim.compare(tmp_path / "nowhere.yaml", side(), seeds=2)
    with pytest.raises(ConfigError, match=r"B: tenants.0.replicas: 0 -> >= 1"):
        clustersim.compare(side(), side(replicas=0), seeds=2)
    with pytest.raises(ConfigError, match=r"--seeds: 0 -> a count >= 1"):
        clustersim.compare(side(), side(), seeds=0)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match=r"B: '.*empty' -> a results folder with a readable manifest\.json"):
        clustersim.compare(side(), tmp_path / "empty", seeds=2)
    assert main(["compare", str(tmp_path / "nowhere.yaml"), str(tmp_path / "nowhere.yaml"), "--seeds", "2"]) == 2


def test_a_sweep_folder_of_several_configurations_is_refused(tmp_path: Path):
    clustersim.sweep({"base": side(), "grid": {"tenants.0.replicas": [1, 2]}}, tmp_path / "sweep", workers=1,
                     simulate=FakeDensity())
    with pytest.raises(ConfigError, match="a sweep folder of one configuration \\(this one holds 2"):
        clustersim.compare(tmp_path / "sweep", side(), seeds=2)


def test_diff_lists_resolved_differences_key_path_by_key_path(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    a = side(allocator={"kind": "tcmalloc", "madvise": "dontneed"})
    b = side(allocator={"kind": "tcmalloc", "madvise": "free"}, workload={"heap": "64M"})  # same heap
    b["nodes"][0]["memory"] = "8192M"                                                   # same size, resolved
    b["duration"] = "20s"
    found = {d.path: (d.a, d.b) for d in clustersim.diff(a, b)}
    assert found == {"duration": (10.0, 20.0), "tenants.0.allocator.madvise": ("dontneed", "free")}
    (tmp_path / "a.yaml").write_text(yaml.safe_dump(a))
    (tmp_path / "b.yaml").write_text(yaml.safe_dump(b))
    assert main(["diff", str(tmp_path / "a.yaml"), str(tmp_path / "b.yaml")]) == 0
    assert capsys.readouterr().out.splitlines() == ["duration: 10.0 -> 20.0",
                                                    "tenants.0.allocator.madvise: 'dontneed' -> 'free'"]
    assert main(["diff", str(tmp_path / "a.yaml"), str(tmp_path / "a.yaml")]) == 0
    assert capsys.readouterr().out.strip() == "no differences"


def test_a_small_compare_on_the_real_fleet():
    base = {"name": "real", "duration": "4s", "kernel": {"thp": {"enabled": "always"}},
            "nodes": [{"name": "n", "count": 1, "memory": "2G", "swap": {"kind": "none"}}],
            "tenants": [{"name": "web", "replicas": 2, "allocator": {"kind": "tcmalloc", "madvise": "dontneed"},
                         "workload": {"kind": "service", "heap": "128M", "churn": "16MiB/s", "rps": 100}}]}
    other = copy.deepcopy(base)
    other["kernel"]["thp"]["enabled"] = "never"
    table = clustersim.compare(base, other, seeds=2, workers=1)
    coverage = table[(table["metric"] == "faults_thp") & table["node_group"].isna()].iloc[0]
    # With THP never, no fault is served with a huge page (K9: the THP policy truth table): B's count is 0.
    assert coverage["b_mean"] == 0 and coverage["a_mean"] > 0 and coverage["delta"] == -coverage["a_mean"]
    assert coverage["n"] == 2
