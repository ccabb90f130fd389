"""Sweep expansion: grid, zip and samplers; seeds; validation of every run before any starts."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from exp_helpers import count_calls

from clustersim import sweep
from clustersim.experiments import ConfigError
from clustersim.experiments.fake import FakeSimulate
from clustersim.experiments.sweepfile import (
    Sample,
    SweepSpec,
    expand,
    grid_points,
    load_sweep,
    replication_seeds,
    sample_points,
    zip_points,
)


def runs_of(spec: dict[str, Any]) -> list[Any]:
    return expand(*load_sweep(spec))


def test_a_grid_is_the_cartesian_product_in_sorted_key_order() -> None:
    points = grid_points({"b": [1, 2, 3], "a": ["x", "y"]})
    assert len(points) == 6
    assert points[:3] == [{"a": "x", "b": 1}, {"a": "x", "b": 2}, {"a": "x", "b": 3}]


def test_a_list_of_grids_is_their_union_to_skip_meaningless_combinations() -> None:
    points = grid_points([{"swap": ["none"]}, {"swap": ["zram"], "ratio": [2.0, 3.0]}])
    assert points == [{"swap": "none"}, {"ratio": 2.0, "swap": "zram"}, {"ratio": 3.0, "swap": "zram"}]


def test_zip_advances_lists_together_and_crosses_groups() -> None:
    assert zip_points({"a": [1, 2, 3], "b": [4, 5, 6]}) == [{"a": 1, "b": 4}, {"a": 2, "b": 5}, {"a": 3, "b": 6}]
    assert len(zip_points([{"a": [1, 2]}, {"b": [3, 4, 5]}])) == 6


def test_zip_lists_of_different_lengths_are_an_error(base: dict[str, Any]) -> None:
    with pytest.raises(ConfigError, match=r"zip\.0: \{'a': 2, 'b': 3\} -> lists of equal length"):
        load_sweep({"base": base, "zip": {"a": [1, 2], "b": [1, 2, 3]}})


@pytest.mark.parametrize("method", ["sobol", "lhs", "random"])
def test_each_sampler_draws_n_points_within_bounds_reproducibly(method: str) -> None:
    sample = Sample(method=method, n=16, seed=3, params={
        "x": {"low": 0.5, "high": 2.5},
        "heap": {"low": "1G", "high": "64G", "type": "size", "scale": "log"},
        "k": {"low": 1, "high": 4, "type": "int"},
        "advice": {"values": ["dontneed", "free", "splittable"]},
    })
    points = sample_points(sample)
    assert len(points) == 16 and points == sample_points(sample)
    assert all(0.5 <= p["x"] <= 2.5 for p in points)
    assert all(isinstance(p["heap"], int) and 1 << 30 <= p["heap"] <= 64 << 30 for p in points)
    assert all(isinstance(p["k"], int) and 1 <= p["k"] <= 4 for p in points)
    assert {p["advice"] for p in points} <= {"dontneed", "free", "splittable"}


@pytest.mark.parametrize("method", ["sobol", "lhs"])
def test_space_filling_samplers_cover_every_category_and_integer(method: str) -> None:
    points = sample_points(Sample(method=method, n=16, params={
        "k": {"low": 1, "high": 4, "type": "int"}, "advice": {"values": ["a", "b", "c", "d"]}}))
    assert sorted({p["k"] for p in points}) == [1, 2, 3, 4]
    assert sorted({p["advice"] for p in points}) == ["a", "b", "c", "d"]


def test_log_scale_spreads_points_evenly_over_decades() -> None:
    # 64 LHS points over [1, 10000]: a quarter of them in each decade, in expectation and by stratification.
    points = sample_points(Sample(method="lhs", n=64, params={"r": {"low": 1, "high": 1e4, "scale": "log"}}))
    decades = np.histogram([math.log10(p["r"]) for p in points], bins=[0, 1, 2, 3, 4])[0]
    assert decades.tolist() == [16, 16, 16, 16]


def test_a_log_range_must_be_positive(base: dict[str, Any]) -> None:
    with pytest.raises(ConfigError, match="low > 0 for scale log"):
        load_sweep({"base": base, "sample": {"params": {"x": {"low": 0, "high": 1, "scale": "log"}}}})


def test_replication_seeds_are_distinct_reproducible_and_spawned_from_the_base_seed() -> None:
    seeds = replication_seeds(42, 8)
    assert len(set(seeds)) == 8 and seeds == replication_seeds(42, 8)
    expected = [int(c.generate_state(1)[0]) for c in np.random.SeedSequence(42).spawn(8)]
    assert seeds == expected
    assert replication_seeds(42, 3) == seeds[:3]  # raising the count later keeps earlier replications
    assert set(seeds).isdisjoint(replication_seeds(43, 8))
    assert replication_seeds(42, [7, 9]) == [7, 9]


def test_replications_draw_independent_streams() -> None:
    # Correlation between the first 10,000 draws of any two replications is noise-sized (< 0.05).
    draws = [np.random.default_rng(s).random(10_000) for s in replication_seeds(0, 4)]
    corr = np.corrcoef(draws)
    assert np.abs(corr[np.triu_indices(4, 1)]).max() < 0.05


def test_expansion_crosses_grid_zip_sample_and_seeds_with_stable_ids(base: dict[str, Any]) -> None:
    spec = {"base": base, "seeds": 2, "grid": {"tenants.0.allocator.madvise": ["dontneed", "free"]},
            "zip": {"tenants.0.replicas": [1, 2], "tenants.0.workload.rps": [100, 200]},
            "sample": {"method": "random", "n": 3, "params": {"tenants.0.workload.hot_share": {"low": 0, "high": 1}}}}
    runs = runs_of(spec)
    assert len(runs) == 2 * 2 * 3 * 2
    assert [r.run_id for r in runs] == [r.run_id for r in runs_of(spec)]
    assert len({r.run_id for r in runs}) == 24 and len({r.config_hash for r in runs}) == 12
    first = runs[0]
    assert list(first.params) == sorted(first.params)
    assert first.config["tenants"][0]["replicas"] == first.params["tenants.0.replicas"]


def test_axes_address_any_value_including_list_items(base: dict[str, Any]) -> None:
    base["nodes"].append({"name": "b", "count": 1, "memory": "16G"})
    runs = runs_of({"base": base, "grid": {"nodes.1.swap.kind": ["none", "zram"],
                                           "kernel.thp.enabled": ["always", "never"]}})
    assert [(r.config["nodes"][1]["swap"]["kind"], r.config["kernel"]["thp"]["enabled"]) for r in runs] == [
        ("none", "always"), ("zram", "always"), ("none", "never"), ("zram", "never")]  # sorted keys: kernel first


def test_a_relative_base_path_is_read_from_the_sweep_files_folder(tmp_path: Path, base: dict[str, Any]) -> None:
    import yaml

    (tmp_path / "cfg").mkdir()
    (tmp_path / "cfg" / "base.yaml").write_text(yaml.safe_dump(base))
    (tmp_path / "sweeps").mkdir()
    (tmp_path / "sweeps" / "s.yaml").write_text("base: ../cfg/base.yaml\nseeds: 3\n")
    assert len(expand(*load_sweep(tmp_path / "sweeps" / "s.yaml"))) == 3


def test_an_invalid_combination_stops_the_sweep_before_any_run(tmp_path: Path, base: dict[str, Any],
                                                               calls: Path) -> None:
    # splittable is fine on the base kernel, but the grid also drops the proposal: that run is invalid.
    spec = {"base": base, "grid": {"tenants.0.allocator.madvise": ["dontneed", "splittable"],
                                   "kernel.proposals": [["madv_splittable"], []]}}
    with pytest.raises(ConfigError) as info:
        sweep(spec, tmp_path / "out", workers=1, simulate=FakeSimulate(calls_dir=str(calls)), progress=False)
    [line] = info.value.problems
    assert line.startswith("run 3 {kernel.proposals=[], tenants.0.allocator.madvise='splittable'}: ")
    assert "needs proposal madv_splittable" in line
    assert count_calls(calls) == {} and not (tmp_path / "out").exists()


def test_an_axis_may_not_vary_the_seed_or_repeat_a_key(base: dict[str, Any]) -> None:
    with pytest.raises(ConfigError) as info:
        load_sweep({"base": base, "set": {"duration": "1m"}, "grid": {"seed": [1, 2], "duration": ["2m"]}})
    assert len(info.value.problems) == 2


def test_sweep_file_keys_are_checked_like_run_file_keys() -> None:
    with pytest.raises(ConfigError, match=r"sample\.method: 'halton' -> one of sobol, lhs, random"):
        load_sweep({"sample": {"method": "halton", "params": {"x": {"low": 0, "high": 1}}}})
    with pytest.raises(ConfigError, match="seeds: 0 -> a count >= 1"):
        load_sweep({"seeds": 0})
    assert SweepSpec(base={}).seeds == 1
