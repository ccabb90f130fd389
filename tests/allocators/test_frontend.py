"""The sparse-heap frontend (frontend.py, arenas.py): partly used spans, object caches, jemalloc's arenas.

Numbers follow from the mechanisms stated in docs/model.md ("Sparse heaps"): a unit of n spans at occupancy
u takes ceil(n/u) spans and writes only its live pages; THP ``always`` backs every vhp a write lands in
(docs/linux-rules.md K9, kernel/fault.py) while ``madvise`` without MADV_HUGEPAGE backs only written pages.
"""

from __future__ import annotations

import numpy as np
import pytest

import clustersim
from clustersim import kernel
from clustersim.allocators import make_allocator
from clustersim.allocators.arenas import ncached_max, slab_regions, tcache_bound_bytes
from clustersim.allocators.base import HeapAllocator
from clustersim.allocators.frontend import Frontend, ObjectCache, occupied_units, striped_runs
from clustersim.allocators.tcmalloc import LegacyPageHeap
from clustersim.kernel.errors import KernelError

KiB, MiB = 1 << 10, 1 << 20
HPAGE = 2 * MiB


def spawn(enabled: str):
    node = kernel.Node(memory="2G", profile="linux-6.12", seed=0, thp={"enabled": enabled}, swap={"kind": "none"})
    node.cgroup("A", max="max")
    return node, node.spawn(cgroup="A", name="svc")


def small_units(ids, unit=256 * KiB, span=8 * KiB):
    ids = np.asarray(ids, dtype=np.int64)
    return ids, np.full(len(ids), unit, dtype=np.int64), np.full(len(ids), span, dtype=np.int64)


def test_a_unit_of_n_spans_at_occupancy_u_takes_ceil_n_over_u_spans_and_writes_its_live_pages():
    # 32 spans of 8 KiB at u = 0.8 -> 40 spans (320 KiB); 64 live pages over 40 spans of 2 pages: the first
    # 24 spans write both pages, the other 16 one page, each from the span's first page.
    placed, spans = occupied_units(np.array([256 * KiB]), np.array([8 * KiB]), 0.8)
    assert placed.tolist() == [320 * KiB] and spans.tolist() == [40]
    starts, lengths = striped_runs(np.array([1000]), spans, np.array([2]), np.array([64]))
    assert lengths.sum() == 64 and lengths.tolist() == [2] * 24 + [1] * 16
    assert starts.tolist() == [1000 + 2 * j for j in range(40)]
    # A large span (> 256 KiB) is its one object: unchanged and written whole.
    placed, spans = occupied_units(np.array([1 * MiB]), np.array([1 * MiB]), 0.5)
    assert placed.tolist() == [1 * MiB] and spans.tolist() == [1]


@pytest.mark.parametrize("u", [1.0, 0.8, 0.5])
def test_with_occupancy_u_madvise_rss_is_the_live_heap_and_thp_always_backs_all_its_spans(u):
    # 400 units of 256 KiB (100 MiB of live objects) at occupancy u. madvise: RSS is the written pages,
    # 100 MiB whatever u. always: every vhp holding a span is faulted whole, so RSS is the spans' bytes
    # (100 MiB / u) rounded up to whole vhps: the THP bloat is 1/u - 1.
    live = 400 * 256 * KiB
    placed = 400 * int(occupied_units(np.array([256 * KiB]), np.array([8 * KiB]), u)[0][0])
    for enabled, expected in (("madvise", live), ("always", -(-placed // HPAGE) * HPAGE)):
        _node, p = spawn(enabled)
        a = make_allocator("tcmalloc", p, span_occupancy=u)
        assert isinstance(a, Frontend if u < 1 else LegacyPageHeap)
        a.alloc(*small_units(range(400))) if u < 1 else a.alloc(*small_units(range(400))[:2])
        assert p.smaps["Rss"] == expected, (enabled, u)
    assert placed / live == pytest.approx(1 / u, rel=0.01)


@pytest.mark.parametrize("k", [1, 4, 8])
def test_k_arenas_each_hold_their_own_partly_used_hugepage(k):
    # Four 256 KiB units per arena (unit id -> arena id mod k): each arena's heap is its own VMA holding
    # 1 MiB of extents, so under THP always each arena faults one whole vhp: RSS = k x 2 MiB for k MiB of
    # live extents; one arena holding the same 4k units fills k/2 vhps exactly when k is even.
    _node, p = spawn("always")
    a = make_allocator("jemalloc", p, narenas=k, thp="default")
    ids, nbytes, spans = small_units(range(4 * k))
    a.alloc(ids, nbytes, spans) if isinstance(a, Frontend) else a.alloc(ids, nbytes)
    assert a.in_use_bytes == 4 * k * 256 * KiB
    assert p.smaps["Rss"] == k * HPAGE
    assert len(p.mm.regions) >= k


def test_jemalloc_tcache_bins_follow_jemallocs_slot_rules():
    # tcache_ncached_max_compute: 2 x the slab's regions, clamped to [20, 200]; large bins 20.
    assert slab_regions(8) == 512 and ncached_max(8) == 200
    assert slab_regions(128) == 32 and ncached_max(128) == 64
    assert slab_regions(4096) == 1 and ncached_max(4096) == 20
    assert slab_regions(320) == 64 and ncached_max(320) == 128   # 320 B: 5 pages hold 64 regions exactly
    assert ncached_max(32 * KiB) == 20
    assert tcache_bound_bytes() == 4644416   # about 4.4 MiB per thread with every bin full


def test_object_cache_bound_is_respected_per_cache_and_the_oldest_are_flushed():
    # Two caches of 1 MiB; 20 units of 256 KiB freed in id order: cache 0 gets the even ids, cache 1 the odd
    # ones; each keeps its newest four (1 MiB) and flushes the rest, oldest first.
    cache = ObjectCache(2, 1 * MiB)
    flushed = cache.push(np.arange(20), np.full(20, 256 * KiB))
    assert sorted(flushed.tolist()) == list(range(12))
    assert cache.per_cache_bytes().tolist() == [1 * MiB, 1 * MiB]
    flushed = cache.push(np.array([20]), np.array([256 * KiB]))
    assert flushed.tolist() == [12]


def test_per_cpu_caches_hold_freed_small_units_resident_and_large_units_pass_through():
    # tcmalloc with 2 per-CPU caches of 1 MiB: freeing 40 small units keeps 8 of them (2 MiB) in the caches,
    # counted free for the application but still in use for the page heap; a freed large span is not cached.
    _node, p = spawn("madvise")
    a = make_allocator("tcmalloc", p, cpu_caches=2, cpu_cache_size=1 * MiB)
    ids, nbytes, spans = small_units(range(40))
    a.alloc(ids, nbytes, spans)
    a.alloc(np.array([100]), np.array([1 * MiB]), np.array([1 * MiB]))
    a.free(np.arange(40))
    assert a.cached_bytes == 2 * MiB
    assert a.in_use_bytes == 1 * MiB
    backend: HeapAllocator = a.backends[0]
    assert backend.in_use_bytes == 3 * MiB
    a.free(np.array([100]))
    assert a.in_use_bytes == 0 and backend.in_use_bytes == 2 * MiB


def test_frontend_options_at_their_defaults_build_the_page_level_model_and_bad_values_are_named():
    _node, p = spawn("madvise")
    assert type(make_allocator("jemalloc", p, narenas=1, tcache=False, span_occupancy=1.0)).__name__ == \
        "JemallocArena"
    with pytest.raises(ValueError, match="span_occupancy=0"):
        make_allocator("tcmalloc", p, span_occupancy=0)
    with pytest.raises(ValueError, match="narenas=0"):
        make_allocator("jemalloc", p, narenas=0)
    with pytest.raises(ValueError, match="cpu_caches=-1"):
        make_allocator("temeraire", p, cpu_caches=-1)


@pytest.mark.parametrize(("u", "split"), [(0.5, False), (0.05, True)])
def test_the_underused_thp_shrinker_splits_the_thps_of_spans_sparser_than_max_ptes_none(u, split):
    # literature.md section 7: under reclaim, 6.12 splits a THP with more than max_ptes_none zero-filled
    # subpages and frees them. 100 units of 32 spans of 8 KiB under THP always, max_ptes_none=409:
    # u=0.5: 64 spans per unit each write 1 of 2 pages, 256 zero subpages per THP <= 409, nothing split;
    # u=0.05: 640 spans per unit, the first 64 write one page each: at most 64 written per THP, so every
    # THP is split and RSS falls to the 25 MiB of live pages.
    node = kernel.Node(memory="1G", profile="linux-6.12", seed=0,
                       thp={"enabled": "always", "max_ptes_none": 409}, swap={"kind": "none"})
    cg = node.cgroup("A", max="max")
    p = node.spawn(cgroup="A", name="svc")
    a = make_allocator("tcmalloc", p, span_occupancy=u)
    ids, nbytes, spans = small_units(range(100))
    a.alloc(ids, nbytes, spans)
    thps = p.smaps["AnonHugePages"] // HPAGE
    with pytest.raises(KernelError):   # no swap: the heap's written pages cannot be reclaimed
        cg.reclaim("1G")
    node.check()
    assert node.vmstat["thp_underused_split_page"] == (thps if split else 0)
    assert p.smaps["Rss"] == (100 * 256 * KiB if split else thps * HPAGE)


def test_a_sparse_fleet_run_is_the_same_twice_and_always_costs_more_than_madvise():
    # Same seed, same results bit for bit. tcmalloc/beta's live heap is 99.9% small-object spans, so at
    # span_occupancy 0.5 THP always backs about twice the written pages: the ratio of the RSS is below
    # 1/u = 2 (free extents and cached units are written, so backed under both) and well above 1.
    rss = {}
    for enabled in ("madvise", "always", "always"):
        cfg = {"name": "sparse", "seed": 3, "duration": "20s", "kernel": {"thp": {"enabled": enabled}},
               "nodes": [{"name": "n", "count": 1, "memory": "2G", "swap": {"kind": "none"}}],
               "tenants": [{"name": "svc", "replicas": 1,
                            "allocator": {"kind": "jemalloc", "narenas": 4, "tcache": True, "span_occupancy": 0.5},
                            "workload": {"kind": "service", "heap": "128M", "churn": "8MiB/s", "rps": 50}}]}
        result = clustersim.run(cfg)
        value = float(result.tenants["rss_bytes_mean"].iloc[0])
        assert rss.setdefault(enabled, value) == value
    assert 1.5 * rss["madvise"] < rss["always"] < 2.0 * rss["madvise"]
