"""Run-file schema: defaults, units, per-key and cross-key validation, overrides, hashing, shipped configs."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from clustersim.experiments import ConfigError, config_hash, load_config, resolved
from clustersim.experiments.config import TLB_SENSITIVITY_DEFAULT, RunConfig
from clustersim.experiments.sweepfile import expand, load_sweep

REPO = Path(__file__).resolve().parents[2]


def problems_of(data: dict[str, Any], overrides: list[str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config(data, overrides or [])
    return info.value.problems


def test_an_empty_config_is_one_16g_node_on_linux_6_12_with_documented_defaults() -> None:
    config = load_config({})
    assert (config.name, config.seed, config.duration, config.tick) == ("run", 0, 600.0, 1.0)
    assert config.kernel.profile == "linux-6.12" and config.kernel.proposals == []
    thp = config.kernel.thp
    assert (thp.enabled, thp.defrag, thp.max_ptes_none, thp.max_ptes_swap) == ("madvise", "madvise", 511, 64)
    assert (thp.pages_to_scan, thp.scan_sleep, thp.alloc_sleep, thp.shrink_underused) == (4096, 10.0, 60.0, True)
    assert (config.kernel.vm.swappiness, config.kernel.vm.watermark_scale_factor) == (60, 10)
    assert config.kernel.vm.min_free_kbytes is None
    assert [(g.name, g.count, g.memory, g.swap.kind) for g in config.nodes] == [("group0", 1, 16 << 30, "none")]
    assert config.tenants == []


def test_tenant_defaults_fill_allocator_and_workload_and_name_by_index() -> None:
    tenant = load_config({"tenants": [{}]}).tenants[0]
    assert tenant.name == "tenant0" and tenant.replicas == 1 and tenant.placement == "spread"
    assert tenant.allocator.kind == "tcmalloc" and tenant.allocator.release_rate == 0.0
    assert tenant.allocator.madvise == "dontneed"
    assert tenant.workload.tlb_sensitivity == TLB_SENSITIVITY_DEFAULT == 0.25
    assert tenant.workload.span_quantum == 256 << 10
    assert tenant.limits.max is None and tenant.limits.min == 0


def test_units_resolve_to_bytes_seconds_and_bytes_per_second() -> None:
    config = load_config({
        "duration": "5m", "tick": "250ms",
        "nodes": [{"memory": "1.5G", "swap": {"kind": "zswap", "size": "4GiB"},
                   "cgroups": {"s": {"low": "512M", "max": "max"}}}],
        "tenants": [{"allocator": {"kind": "glibc", "trim_threshold": "64K"},
                     "workload": {"heap": "200M", "churn": "10MiB/s", "spikes": {"rate": "2/h"}}}],
    })
    assert (config.duration, config.tick) == (300.0, 0.25)
    group = config.nodes[0]
    assert group.memory == 1536 << 20 and group.swap.size == 4 << 30 and group.swap.max_pool_percent == 20
    assert group.cgroups["s"].low == 512 << 20 and group.cgroups["s"].max is None
    tenant = config.tenants[0]
    assert tenant.allocator.trim_threshold == 65536 and tenant.workload.heap == 200 << 20
    assert tenant.workload.churn == 10 * 2**20 and tenant.workload.spikes.rate == pytest.approx(2 / 3600)


def test_each_problem_is_reported_with_key_path_value_and_what_is_allowed() -> None:
    problems = problems_of({
        "seed": -1,
        "kernel": {"profile": "linux-9", "thp": {"max_ptes_none": 600}, "bogus": 1},
        "nodes": [{"count": 0, "swap": {"kind": "floppy"}}],
        "tenants": [{"allocator": {"madvise": "maybe"}, "workload": {"churn": "-1M/s"}}],
    })
    assert len(problems) == 8
    text = "\n".join(problems)
    assert "seed: -1 -> in [0, 2^63-1]" in text
    assert "kernel.profile: 'linux-9' -> one of linux-4.5, linux-4.12, linux-6.1, linux-6.12" in text
    assert "kernel.thp.max_ptes_none: 600 -> in [0, 511]" in text
    assert re.search(r"kernel\.bogus: 1 -> not a key here; allowed keys: costs, profile", text)
    assert "nodes.0.count: 0 -> >= 1" in text
    assert "nodes.0.swap.kind: 'floppy' -> one of none, disk, zram, zswap" in text
    assert "tenants.0.allocator.madvise: 'maybe' -> one of dontneed, free, splittable, free_undo, none" in text
    assert "tenants.0.workload.churn: '-1M/s' -> a rate >= 0" in text


def test_an_option_of_another_allocator_kind_is_an_error_naming_the_allowed_keys() -> None:
    [line] = problems_of({"tenants": [{"allocator": {"kind": "jemalloc", "release_rate": "1M/s"}}]})
    assert line.startswith("tenants.0.allocator.release_rate: '1M/s' -> not a key here")
    assert "dirty_decay_ms" in line and "muzzy_decay_ms" in line


def test_a_swap_option_of_another_kind_is_an_error() -> None:
    [line] = problems_of({"nodes": [{"swap": {"kind": "zram", "device": "nvme"}}]})
    assert line.startswith("nodes.0.swap.device: 'nvme' -> not a key here; allowed keys: compression_ratio")


def test_a_bad_unit_string_names_the_accepted_forms() -> None:
    [line] = problems_of({"duration": "5 parsecs"})
    assert line == "duration: '5 parsecs' -> a duration >= 0 like '250ms', '10s', '5m', or seconds"


def test_a_packed_heap_larger_than_every_node_is_an_error() -> None:
    [line] = problems_of({"nodes": [{"memory": "8G"}],
                          "tenants": [{"placement": "pack", "workload": {"heap": "9G"}}]})
    assert line.startswith("tenants.0.workload.heap: '9G' -> at most 8G (the largest node's memory plus swap)")


def test_placement_naming_an_unknown_node_group_or_miscounting_is_an_error() -> None:
    problems = problems_of({"nodes": [{"name": "a"}],
                            "tenants": [{"replicas": 2, "placement": {"a": 1, "b": 2}}]})
    assert problems == ["tenants.0.placement.b: 'b' -> a node group name: a",
                        "tenants.0.placement: {'a': 1, 'b': 2} -> counts summing to replicas (2)"]


def test_memcg_limits_in_the_wrong_order_are_errors() -> None:
    problems = problems_of({"nodes": [{"cgroups": {"w.slice": {"min": "8G", "max": "4G"}}}],
                            "tenants": [{"limits": {"low": "3G", "high": "2G"}}]})
    assert problems == ["nodes.0.cgroups.w.slice.min: '8G' -> <= max (4G)",
                        "tenants.0.limits.low: '3G' -> <= high (2G)"]


@pytest.mark.parametrize(("advice", "proposal"), [("splittable", "madv_splittable"),
                                                  ("free_undo", "madv_free_undo")])
def test_a_never_merged_advice_needs_its_proposal_in_the_effective_kernel(advice: str, proposal: str) -> None:
    [line] = problems_of({"tenants": [{"allocator": {"madvise": advice}}]})
    assert line.startswith(f"tenants.0.allocator.madvise: '{advice}' -> needs proposal {proposal}")
    assert load_config({"kernel": {"proposals": [proposal]}, "tenants": [{"allocator": {"madvise": advice}}]})


def test_a_proposal_turned_on_in_one_node_group_allows_tenants_placed_only_there() -> None:
    data: dict[str, Any] = {
        "nodes": [{"name": "plain"}, {"name": "patched", "kernel": {"proposals": ["madv_splittable"]}}],
        "tenants": [{"allocator": {"madvise": "splittable"}, "placement": {"patched": 1}}],
    }
    config = load_config(data)
    assert config.nodes[1].kernel.proposals == ["madv_splittable"] and config.nodes[0].kernel.proposals == []
    data["tenants"][0]["placement"] = "spread"
    [line] = problems_of(data)
    assert "node group plain" in line


def test_collapse_before_linux_6_1_is_an_error_but_free_on_linux_4_5_is_allowed() -> None:
    [line] = problems_of({"kernel": {"profile": "linux-4.12"}, "tenants": [{"allocator": {"collapse": True}}]})
    assert line.startswith("tenants.0.allocator.collapse: True -> false on linux-4.12")
    assert load_config({"kernel": {"profile": "linux-4.5"}, "tenants": [{"allocator": {"madvise": "free"}}]})


def test_node_group_kernel_overrides_merge_into_the_top_level_kernel() -> None:
    config = load_config({"kernel": {"profile": "linux-6.1", "thp": {"enabled": "always"}},
                          "nodes": [{"kernel": {"thp": {"defrag": "never"}}}]})
    thp = config.nodes[0].kernel.thp
    assert (config.nodes[0].kernel.profile, thp.enabled, thp.defrag) == ("linux-6.1", "always", "never")


def test_overrides_address_list_items_by_index_and_parse_yaml_values() -> None:
    data = {"kernel": {"proposals": ["madv_splittable"]}, "nodes": [{}, {"name": "b"}], "tenants": [{}]}
    config = load_config(data, ["tenants.0.allocator.madvise=splittable", "nodes.1.swap={kind: zram, size: 4G}",
                                "kernel.thp.max_ptes_none=64", "tenants.0.workload.heap=512M"])
    assert config.tenants[0].allocator.madvise == "splittable"
    assert config.nodes[1].swap.kind == "zram" and config.nodes[1].swap.size == 4 << 30
    assert config.kernel.thp.max_ptes_none == 64 and config.tenants[0].workload.heap == 512 << 20


def test_an_override_past_the_end_of_a_list_is_an_error_naming_the_path() -> None:
    [line] = problems_of({"tenants": [{}]}, ["tenants.3.replicas=2"])
    assert "tenants.3.replicas" in line and "list of 1 item" in line


def test_config_hash_is_sha256_of_the_resolved_config_without_name_and_seed() -> None:
    config = load_config({"name": "a", "seed": 1, "tenants": [{}]})
    digest = config_hash(config)
    assert re.fullmatch(r"[0-9a-f]{64}", digest)
    assert digest == config_hash(resolved(config)) == config_hash(RunConfig.model_validate(resolved(config)))
    assert digest == config_hash(load_config({"name": "b", "seed": 2, "tenants": [{"name": "tenant0"}]}))
    assert digest != config_hash(load_config({"tenants": [{"replicas": 2}]}))


def test_run_files_are_read_with_safe_load_only(tmp_path: Path) -> None:
    path = tmp_path / "evil.yaml"
    path.write_text("name: !!python/object/apply:os.system ['true']\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(path)


@pytest.mark.parametrize("path", sorted((REPO / "configs").glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_config_validates(path: Path) -> None:
    config = load_config(path)
    assert config.tenants and config.nodes


def test_the_demo_sweep_expands_to_12_valid_runs_of_five_minutes() -> None:
    runs = expand(*load_sweep(REPO / "experiments" / "demo.yaml"))
    assert len(runs) == 12 and {r.config["duration"] for r in runs} == {300.0}


@pytest.mark.parametrize("path", sorted((REPO / "configs").glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_config_runs_a_few_simulated_seconds(path: Path) -> None:
    pytest.importorskip("clustersim.fleet.simulate", reason="the fleet simulation is not available")
    import clustersim

    result = clustersim.run(path, overrides=["duration=5s"])
    assert 0.0 <= result.summary["thp_coverage"] <= 1.0 and len(result.tenants) == len(load_config(path).tenants)
