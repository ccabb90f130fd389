"""The fleet model's mechanics: determinism, placement, OOM downtime, stalls reaching the latency tail."""

from __future__ import annotations

import numpy as np
import pytest
from fleet_helpers import fleet, run, service

from clustersim.experiments.config import load_config
from clustersim.fleet import Fleet
from clustersim.fleet.placement import Slot, place
from clustersim.results_contract import SUMMARY_KEYS

TEMERAIRE = {"kind": "temeraire", "hugepage_advice": True, "release_rate": "4MiB/s"}


def test_same_seed_gives_identical_results_and_another_seed_differs():
    config = fleet([service("svc", TEMERAIRE)], duration="30s")
    a, b = run(config), run(config)
    assert a.summary == b.summary
    assert a.timeseries.equals(b.timeseries)
    assert a.latency_histograms.equals(b.latency_histograms)
    c = run(config, seed=99)
    assert c.summary != a.summary


def test_every_randomness_comes_from_the_run_seed():
    # Nothing may draw from global generators: reseeding numpy's and Python's global state between two runs
    # with the same config must not change a single number.
    import random
    config = fleet([service("svc", TEMERAIRE)], duration="20s")
    np.random.seed(1)
    random.seed(1)
    a = run(config).summary
    np.random.seed(2)
    random.seed(2)
    assert run(config).summary == a


def test_spread_deals_replicas_round_robin_and_pack_fills_a_node_first():
    slots = [Slot("g", i, 16 << 30) for i in range(3)]
    spread = place(slots, "spread", 5, 1 << 30, {})
    assert [s.index for s in spread] == [0, 1, 2, 0, 1]
    packed = place(slots, "pack", 5, 5 << 30, {})
    # 0.85 x 16 GiB holds two 5 GiB heaps per node
    assert [s.index for s in packed] == [0, 0, 1, 1, 2]
    explicit = place([Slot("a", 0, 1), Slot("b", 0, 1), Slot("b", 1, 1)], {"b": 3}, 3, 1, {})
    assert [(s.group, s.index) for s in explicit] == [("b", 0), ("b", 1), ("b", 0)]


def test_each_replica_runs_in_its_own_memcg_leaf_with_the_tenant_limits():
    config = fleet([{**service("svc", TEMERAIRE), "cgroup": "workload.slice/web",
                     "limits": {"max": "900M", "high": "800M"}}], duration="5s")
    model = Fleet(load_config(config))
    kernel = model.nodes[0].kernel
    leaf = kernel.memcgs.get("workload.slice/web/svc-1")
    assert leaf.max == (900 << 20) // 4096 and leaf.high == (800 << 20) // 4096
    assert [p.kproc.memcg.path for p in model.processes] == ["workload.slice/web/svc-0", "workload.slice/web/svc-1"]


def test_an_oom_killed_replica_is_down_for_its_restart_delay_and_its_requests_fail():
    # A 512M heap under memory.max=300M on a swapless node: the memcg OOM killer takes the replica, which
    # then fails every request for restarts.delay (10 s) before it comes back with an empty heap.
    tenant = {**service("svc", TEMERAIRE, replicas=1, restarts={"delay": "10s"}), "limits": {"max": "300M"}}
    out = run(fleet([tenant], duration="40s"))
    assert out.summary["oom_kills"] >= 1
    ts = out.timeseries
    assert (ts["processes_up"] == 0).any() and (ts["processes_up"] == 1).any()
    model = Fleet(load_config(fleet([tenant], duration="40s")))
    model.run()
    book = model.processes[0].book
    assert book.failed >= 200 * 10 * 0.9     # rps x delay, per kill
    assert book.restarts >= 1


def test_direct_reclaim_stalls_land_in_the_latency_tail():
    # Two tenants overcommit a 2 GiB node with swap on zram: reclaim stalls and swap-ins are discrete events
    # on single requests, so p99.9 rises far above the same fleet on a roomy node while p50 barely moves.
    tenants = [service("svc", TEMERAIRE, heap="768M", churn="32MiB/s", hot_share=0.5)]
    roomy = run(fleet(tenants, memory="8G", duration="60s")).summary
    tight = run(fleet(tenants, memory="1536M", duration="60s",
                      swap={"kind": "zram", "size": "2G"})).summary
    assert tight["reclaim_stall_s"] > roomy["reclaim_stall_s"]
    assert tight["swap_bytes_mean"] > 0
    assert tight["latency_p999_ms"] > roomy["latency_p999_ms"]
    assert tight["latency_p50_ms"] == pytest.approx(roomy["latency_p50_ms"], rel=0.25)


def test_summary_has_every_contract_key_and_tenants_table_the_same():
    out = run(fleet([service("a", TEMERAIRE), service("b", {"kind": "jemalloc"})], duration="10s"))
    assert set(SUMMARY_KEYS) <= set(out.summary)
    assert list(out.tenants["tenant"]) == ["a", "b"]
    assert set(SUMMARY_KEYS) <= set(out.tenants.columns)
    assert {"time_s", "node_group", "tenant", "thp_coverage"} <= set(out.timeseries.columns)


def test_a_cache_tenant_under_pressure_refills_what_free_undo_reports_lost():
    # A cache tenant releasing with MADV_FREE and re-pinning with MADV_FREE_UNDO under a tight memcg: reclaim
    # discards lazyfree pages, FREE_UNDO reports them, and each refill lands on a request as a cache miss
    # (lost bytes / refill_rate): the tail grows with the refill cost.
    def config(refill: str) -> dict:
        tenant = {**service("cache", {"kind": "tcmalloc", "madvise": "free_undo", "release_rate": "32MiB/s"},
                            replicas=1, heap="512M", churn="32MiB/s", kind="cache", refill_rate=refill),
                  "limits": {"max": "560M"}}
        return fleet([tenant], proposals=["madv_free_undo"], duration="60s")
    fast, slow = run(config("10GiB/s")).summary, run(config("10MiB/s")).summary
    lost = Fleet(load_config(config("10MiB/s")))
    lost.run()
    assert lost.processes[0].allocator.stats().undo_lost_pages > 0
    assert slow["latency_p999_ms"] > fast["latency_p999_ms"]


def test_request_rate_and_heap_birth_rate_follow_one_diurnal_curve_with_a_phase():
    # A service whose day is 600 s long, shifted 100 s later: both multipliers are
    # 1 + 0.5 sin(2 pi (t - 100) / 600), so they peak together at t = 100 + 600/4 = 250 s (x1.5), cross 1 at
    # t = 100 s and bottom out at t = 550 s (x0.5). A sign slip in either would put that peak at t = 50 s.
    diurnal = {"amplitude": 0.5, "period": "600s", "phase": "100s"}
    model = Fleet(load_config(fleet([service("svc", TEMERAIRE, replicas=1, diurnal=diurnal)], duration="5s")))
    proc = model.processes[0]
    heap = proc.demand.modulation.diurnal
    assert proc.diurnal is heap
    for t_s, factor in ((100.0, 1.0), (250.0, 1.5), (400.0, 1.0), (550.0, 0.5)):
        assert heap.factor(t_s) == pytest.approx(factor, abs=1e-12)
        assert proc.request_rate(t_s) == pytest.approx(200 * factor, abs=1e-9)
    times = np.arange(0.0, 600.0, 1.0)
    rate = np.array([proc.request_rate(t) / 200 for t in times])
    birth = np.array([proc.demand.modulation.birth_factor(t - 0.5, 1.0) for t in times])
    assert times[rate.argmax()] == times[birth.argmax()] == 250.0
    np.testing.assert_allclose(rate, birth, rtol=1e-12)
