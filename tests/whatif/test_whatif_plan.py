"""Plans on the known-threshold stand-in (FakeDensity: p99 in ms = the knob's value), resume, outputs and
bad plan files; and one small plan on the real fleet."""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

import clustersim
from clustersim.cli import main
from clustersim.experiments.errors import ConfigError
from clustersim.experiments.fake import FakeDensity
from clustersim.experiments.sweepfile import replication_seeds

BASE: dict[str, Any] = {"name": "tiny", "duration": "10s", "nodes": [{"name": "n", "count": 1, "memory": "8G"}],
                        "tenants": [{"name": "web", "replicas": 1, "workload": {"heap": "64M"}}]}
KEY = "tenants.0.replicas"


def plan_file(**changes: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {"name": "t", "base": copy.deepcopy(BASE), "seeds": 1,
                            "search": {"key": KEY, "low": 1, "high": 20, "goal": "max"},
                            "slo": [{"metric": "latency_p99_ms", "tenant": "web", "max": 10.5},
                                    {"metric": "oom_kills", "max": 0}],
                            "alternatives": {"grid": {"tenants.0.allocator.madvise": ["dontneed", "free"]}}}
    spec.update(changes)
    return spec


def calls(folder: Path) -> int:
    return len(list(folder.glob("*.call")))


def test_plan_finds_the_known_threshold_for_every_alternative(tmp_path: Path):
    fake = FakeDensity(calls_dir=str(tmp_path / "calls"))
    result = clustersim.plan(plan_file(seeds=2), tmp_path / "out", workers=1, simulate=fake)
    best = result.best
    assert list(best["tenants.0.allocator.madvise"]) == ["dontneed", "free"]
    assert list(best["best_value"]) == [10.0, 10.0] and list(best["next_value"]) == [11.0, 11.0]
    assert set(best["binding_slo"]) == {"latency_p99_ms[web] <= 10.5"}
    assert list(best["latency_p99_ms[web]"]) == [10.0, 10.0] and list(best["oom_kills"]) == [0.0, 0.0]
    probes = result.probes
    assert {"tenants.0.allocator.madvise", KEY, "seed", "latency_p99_ms[web]", "oom_kills", "slo_ok"} <= set(probes)
    assert len(probes) == result.runs == calls(tmp_path / "calls")
    assert (probes["slo_ok"] == (probes[KEY] <= 10)).all()
    assert probes.groupby(KEY)["seed"].nunique().eq(2).all()          # every probe ran both seeds
    assert set(probes["seed"]) == set(replication_seeds(0, 2))        # spawned as a sweep spawns them
    for name in ("best.parquet", "probes.parquet", "report.md", "plan.pdf", "plan.png", "runs/runs.parquet"):
        assert (tmp_path / "out" / name).exists(), name
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "out" / "best.parquet"), best)
    assert "latency_p99_ms[web] <= 10.5" in (tmp_path / "out" / "report.md").read_text()
    assert len(clustersim.load(tmp_path / "out" / "runs").runs) == result.runs


def test_a_second_plan_call_reruns_nothing(tmp_path: Path):
    fake = FakeDensity(calls_dir=str(tmp_path / "calls"))
    first = clustersim.plan(plan_file(alternatives={}), tmp_path / "out", workers=1, simulate=fake)
    made = calls(tmp_path / "calls")
    again = clustersim.plan(plan_file(alternatives={}), tmp_path / "out", workers=1, simulate=fake)
    assert calls(tmp_path / "calls") == made == first.runs and again.executed == 0 and again.reused == first.runs
    pd.testing.assert_frame_equal(again.best, first.best)
    # A second seed runs only the new seed of each probe: seed i does not depend on the count.
    extended = clustersim.plan(plan_file(alternatives={}, seeds=2), tmp_path / "out", workers=1, simulate=fake)
    assert extended.runs == 2 * first.runs and extended.executed == first.runs
    assert calls(tmp_path / "calls") == 2 * first.runs


def test_goal_min(tmp_path: Path):
    spec = plan_file(search={"key": KEY, "low": 1, "high": 40, "goal": "min"},
                     slo=[{"metric": "latency_p99_ms", "min": 12}], alternatives={})
    best = clustersim.plan(spec, tmp_path / "out", workers=1, simulate=FakeDensity()).best
    assert best["best_value"].tolist() == [12.0] and best["next_value"].tolist() == [11.0]


def test_none_passing_gives_nan_and_names_the_slo_at_low(tmp_path: Path):
    spec = plan_file(slo=[{"metric": "latency_p99_ms", "max": 0.5}], alternatives={})
    best = clustersim.plan(spec, tmp_path / "out", workers=1, simulate=FakeDensity()).best
    assert math.isnan(best["best_value"].iloc[0]) and best["binding_slo"].iloc[0] == "latency_p99_ms <= 0.5"
    assert "even tenants.0.replicas=1 fails" in (tmp_path / "out" / "report.md").read_text()


def test_answer_at_high_is_marked_at_limit(tmp_path: Path):
    spec = plan_file(slo=[{"metric": "latency_p99_ms", "max": 100}], alternatives={})
    best = clustersim.plan(spec, tmp_path / "out", workers=1, simulate=FakeDensity()).best
    assert best["best_value"].tolist() == [20.0] and bool(best["at_limit"].iloc[0])
    assert math.isnan(best["next_value"].iloc[0]) and best["binding_slo"].iloc[0] == ""


def test_non_monotone_result_is_reported(tmp_path: Path):
    result = clustersim.plan(plan_file(alternatives={}), tmp_path / "out", workers=1,
                             simulate=FakeDensity(quiet=(20,)))
    assert result.best["best_value"].tolist() == [10.0] and bool(result.best["nonmonotone"].iloc[0])
    assert result.nonmonotone[["failing_value", "passing_value"]].values.tolist() == [[17, 20]]
    assert "| 17 | 20 |" in (tmp_path / "out" / "report.md").read_text()


def test_quantile_rule_in_a_plan(tmp_path: Path):
    seeds = replication_seeds(0, 4)
    fake = FakeDensity(slow_seeds=(seeds[0],), seed_ms=100.0)        # one seed in four is always slow
    every = plan_file(seeds=4, alternatives={}, slo=[{"metric": "latency_p99_ms", "max": 10.5}])
    assert math.isnan(clustersim.plan(every, tmp_path / "a", workers=1, simulate=fake).best["best_value"][0])
    three = plan_file(seeds=4, alternatives={}, slo=[{"metric": "latency_p99_ms", "max": 10.5, "quantile": 0.75}])
    assert clustersim.plan(three, tmp_path / "b", workers=1, simulate=fake).best["best_value"][0] == 10.0


BAD = [
    ({"slo": [{"metric": "p99", "max": 1}]}, "slo.0.metric: 'p99' -> a summary metric"),
    ({"slo": [{"metric": "oom_kills", "tenant": "nobody", "max": 0}]}, "slo.0.tenant: 'nobody' -> a tenant of"),
    ({"slo": [{"metric": "oom_kills", "max": 0, "min": 1}]}, "exactly one of 'max' or 'min'"),
    ({"slo": [{"metric": "oom_kills", "max": 0, "quantile": 1.5}]}, "slo.0.quantile: 1.5 -> a quantile in (0, 1]"),
    ({"slo": []}, "slo: [] -> at least 1 item"),
    ({"search": {"key": KEY, "low": 5, "high": 1}}, "low <= high"),
    ({"search": {"key": KEY, "low": 1, "high": 5, "goal": "best"}}, "search.goal: 'best' -> one of max, min"),
    ({"search": {"key": "tenants.0.name", "low": 1, "high": 5}}, "search.key: 'tenants.0.name' -> a key path to an"),
    ({"search": {"key": "tenants.0.nope", "low": 1, "high": 5}}, "tenants.0.nope"),
    ({"search": {"key": KEY, "low": 0, "high": 5}}, "search.low=0: tenants.0.replicas: 0 -> >= 1"),
    ({"search": {"key": "seed", "low": 1, "high": 5}}, "search.key: 'seed' -> a config key; seeds are set by"),
    ({"alternatives": {"grid": {"tenants.0.allocator.madvise": ["nonesuch"]}}}, "'nonesuch' -> one of"),
    ({"alternatives": {"grid": {KEY: [1, 2]}}}, "alternatives.grid.tenants.0.replicas"),
    ({"seeds": 0}, "seeds: 0 -> a count >= 1"),
    ({"name": "../up"}, "name: '../up' -> a name of"),
    ({"surprise": 1}, "surprise: 1 -> not a key here"),
]


@pytest.mark.parametrize(("change", "message"), BAD)
def test_bad_plans_are_refused_naming_the_key_before_any_run(tmp_path: Path, change: dict[str, Any], message: str):
    fake = FakeDensity(calls_dir=str(tmp_path / "calls"))
    with pytest.raises(ConfigError) as info:
        clustersim.plan(plan_file(**change), tmp_path / "out", workers=1, simulate=fake)
    assert message in str(info.value)
    assert not (tmp_path / "out").exists() and calls(tmp_path / "calls") == 0


def test_plan_file_relative_base_and_duplicate_keys(tmp_path: Path):
    (tmp_path / "base.yaml").write_text("name: b\nnodes: [{name: n, count: 1, memory: 8G}]\n"
                                        "tenants: [{name: web, workload: {heap: 64M}}]\n")
    text = ("base: base.yaml\nsearch: {key: tenants.0.replicas, low: 1, high: 20}\n"
            "slo: [{metric: latency_p99_ms, max: 10.5}]\n")
    (tmp_path / "plan.yaml").write_text(text)
    assert clustersim.plan(tmp_path / "plan.yaml", tmp_path / "out", workers=1,
                           simulate=FakeDensity()).best["best_value"].tolist() == [10.0]
    (tmp_path / "dup.yaml").write_text(text + "seeds: 2\nseeds: 3\n")
    with pytest.raises(ConfigError, match="seeds: 'seeds' -> a key named once"):
        clustersim.plan(tmp_path / "dup.yaml", tmp_path / "out2", simulate=FakeDensity())
    (tmp_path / "own.yaml").write_text(text.replace("base.yaml", "own.yaml"))
    with pytest.raises(ConfigError, match=r"base: 'own\.yaml' -> a run file, not this plan file"):
        clustersim.plan(tmp_path / "own.yaml", tmp_path / "out3", simulate=FakeDensity())


def test_plan_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):
    monkeypatch.setenv("CLUSTERSIM_SIMULATE", "clustersim.experiments.fake:density")
    (tmp_path / "plan.yaml").write_text(yaml.safe_dump(plan_file(alternatives={})))
    assert main(["plan", str(tmp_path / "plan.yaml"), "--out", str(tmp_path / "out"), "--workers", "1",
                 "--json"]) == 0
    assert '"best_value":10.0' in capsys.readouterr().out.replace(" ", "")
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(plan_file(slo=[{"metric": "nope", "max": 1}])))
    assert main(["plan", str(tmp_path / "bad.yaml"), "--out", str(tmp_path / "out2")]) == 2
    assert "slo.0.metric: 'nope'" in capsys.readouterr().err
    (tmp_path / "file").write_text("")
    assert main(["plan", str(tmp_path / "plan.yaml"), "--out", str(tmp_path / "file")]) == 2


def test_a_small_plan_on_the_real_fleet(tmp_path: Path):
    # One 2 GiB node, 256 MiB service replicas: the no-OOM SLO bounds how many fit.
    base = {"name": "real", "duration": "5s",
            "nodes": [{"name": "n", "count": 1, "memory": "2G", "swap": {"kind": "none"}}],
            "tenants": [{"name": "web", "replicas": 1, "allocator": {"kind": "tcmalloc"},
                         "workload": {"kind": "service", "heap": "256M", "churn": "16MiB/s", "rps": 100}}]}
    spec = {"name": "real", "base": base, "seeds": 1, "search": {"key": KEY, "low": 1, "high": 8},
            "slo": [{"metric": "oom_kills", "max": 0}, {"metric": "latency_p99_ms", "tenant": "web", "max": 1000}]}
    result = clustersim.plan(spec, tmp_path / "out", workers=1)
    best = result.best.iloc[0]
    probes = result.probes.set_index(KEY)
    assert 1 <= best["best_value"] < 8 and best["binding_slo"] == "oom_kills <= 0"
    assert probes.loc[best["best_value"], "oom_kills"] == 0
    assert probes.loc[best["next_value"], "oom_kills"] > 0
    assert (tmp_path / "out" / "plan.png").stat().st_size > 0
