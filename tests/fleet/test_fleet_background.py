"""docs/linux-rules.md K22: a node's own page cache (a file set read at a rate, charged to a system memcg,
reclaimable) and the aged start (a burn-in of that plus short-lived jobs before the tenants land)."""

from __future__ import annotations

import numpy as np
import pytest
from fleet_helpers import fleet, run, service

from clustersim.experiments.config import ConfigError, load_config
from clustersim.fleet import Fleet, background, build
from clustersim.kernel import Node
from clustersim.units import HPAGE_PAGES

MB = 1 << 20
SETTINGS = {"file_set": 256 * MB, "file_rate": 64 * MB, "cgroup": "system.slice", "burn_in": 300.0,
            "burn_in_tick": 10.0, "churn_jobs": 2, "churn_size": 128 * MB, "churn_lifetime": 60.0,
            "churn_hugepage": False}


def aged(memory: str = "1G", seed: int = 5, **over):
    node = Node(memory, seed=np.random.SeedSequence(seed))
    bg = background.NodeBackground(node, np.random.SeedSequence([seed, 1]), **{**SETTINGS, **over})
    return node, bg


def test_k22_the_file_set_is_cached_and_charged_to_the_system_memcg():
    node, bg = aged(burn_in=0.0, churn_jobs=0)
    bg.step(2.0)                                   # 128 MiB at 64 MiB/s: two files of 64 MiB
    assert node.meminfo["Cached"] == 128 * MB
    assert node.cgroup("system.slice").current == 128 * MB
    bg.step(6.0)                                   # the whole 256 MiB set, then it cycles: still 256 MiB
    assert node.meminfo["Cached"] == 256 * MB and bg.cursor == 0
    node.check()


def test_k22_a_file_set_larger_than_memory_is_reclaimed_by_the_global_lru():
    node, bg = aged(memory="512M", file_set=2048 * MB, burn_in=0.0, churn_jobs=0)
    for _ in range(32):                            # 2 GiB read through 512M
        bg.step(1.0)
        node.advance(1.0)
    assert node.vmstat["pgsteal_kswapd"] + node.vmstat["pgsteal_direct"] > 0
    assert node.meminfo["Cached"] < 512 * MB and node.phys.nr_free >= node.phys.wmark_min
    node.check()


def test_k22_burn_in_ages_the_node():
    node, bg = aged(file_set=2048 * MB)
    fresh = node.phys.free_blocks
    bg.burn(sample_every=60.0)
    assert [s["time_s"] for s in bg.samples] == [0.0, 60.0, 120.0, 180.0, 240.0, 300.0]
    assert bg.jobs_run > SETTINGS["churn_jobs"] and not bg.jobs
    assert node.mm.time == pytest.approx(300.0)
    # the page cache fills what the jobs leave: kswapd keeps free memory near the high watermark, so no more
    # free pageblocks than that many pages make, and the blocks the kernel's pages went into stay in use
    assert all(s["free_pageblocks"] <= node.phys.wmark_high // HPAGE_PAGES + 1 for s in bg.samples[1:])
    assert node.phys.free_blocks < fresh // 2 and node.meminfo["Cached"] > 0
    assert node.phys.free_blocks <= node.phys.nblocks - node.phys.unmovable_blocks()
    assert node.cgroup("burnin.slice").procs == []
    node.check()


def test_k22_the_cached_aged_state_is_the_state_a_fresh_burn_in_leaves():
    background.clear_cache()
    kernel = {"memory": "1G", "seed": np.random.SeedSequence(7)}
    first, bg1 = background.start(Node(**kernel), kernel, {}, SETTINGS)
    again, bg2 = background.start(Node(**kernel), kernel, {}, SETTINGS)   # from the cache
    background.clear_cache()
    fresh, _ = background.start(Node(**kernel), kernel, {}, SETTINGS)
    for other in (again, fresh):
        assert (other.phys.used == first.phys.used).all() and (other.phys.mt == first.phys.mt).all()
        assert other.vmstat == first.vmstat and other.time == first.time
    assert bg2.node is again and bg2 is not bg1
    assert again.rng.random() == fresh.rng.random()
    background.clear_cache()


def test_k22_background_is_off_by_default_and_errors_name_the_key():
    config = load_config(fleet([service("svc", {"kind": "tcmalloc"})]))
    [node] = build.nodes(config, np.random.SeedSequence(0))
    assert node["background"] is None
    for bad, word in (({"file_rate": "8MiB/s"}, "file_set"), ({"burn_in_tick": 0}, "burn_in_tick"),
                      ({"churn_jobs": -1}, "churn_jobs"), ({"file_sets": "1G"}, "file_sets")):
        cfg = fleet([service("svc", {"kind": "tcmalloc"})])
        cfg["nodes"][0]["background"] = bad
        with pytest.raises(ConfigError, match=word):
            load_config(cfg)


def test_k22_a_fleet_on_an_aged_node_is_deterministic():
    cfg = fleet([service("svc", {"kind": "tcmalloc"}, replicas=1, heap="256M")], memory="1G", duration="20s")
    cfg["nodes"][0]["background"] = {"file_set": "512M", "file_rate": "32MiB/s", "burn_in": "2m",
                                     "churn_jobs": 2, "churn_size": "128M", "churn_lifetime": "30s"}
    background.clear_cache()
    a = run(cfg)
    background.clear_cache()
    b = run(cfg)
    assert a.summary == b.summary
    model = Fleet(load_config(cfg))
    assert model.nodes[0].kernel.mm.time == pytest.approx(120.0)   # tenants land after the burn-in
    assert model.nodes[0].kernel.meminfo["Cached"] > 0
    background.clear_cache()
