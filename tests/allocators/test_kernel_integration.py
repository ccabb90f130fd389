"""Each allocator on a real kernel Node: the kernel's own checks and observations agree with the model."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import Churn, assert_conserved

from clustersim.allocators import ALLOCATORS, make_allocator

kernel = pytest.importorskip("clustersim.kernel")
MiB = 1 << 20


def spawn(profile="linux-6.12", enabled="always", proposals=(), memory="1G"):
    node = kernel.Node(memory=memory, profile=profile, seed=0, thp={"enabled": enabled},
                       swap={"kind": "none"}, proposals=list(proposals))
    node.cgroup("A", max="max")
    return node, node.spawn(cgroup="A", name="svc")


@pytest.mark.parametrize("kind", sorted(ALLOCATORS))
def test_allocator_on_a_real_node_passes_node_check(kind):
    # A churned heap with releases: the node's invariants hold, RSS never exceeds what the allocator
    # believes is backed, and what the allocator believes in use is resident.
    node, p = spawn()
    options = {"glibc": {"malloc_trim": "every_tick"}, "jemalloc": {"background_thread": "on"}}
    a = make_allocator(kind, p, **options.get(kind, {"release_rate": "16MiB/s"}))
    churn = Churn(a, seed=2)
    for t in range(20):
        churn.grow(100)
        churn.shrink(80 if t < 10 else 150)
        node.advance(1.0)
        a.background(node.time)
        s = assert_conserved(a)
        node.check()
        rss = p.smaps["Rss"]
        assert rss >= s.in_use_bytes - (s.in_use_bytes - s.requested_bytes)
    assert p.smaps["Rss"] <= a.stats().mapped_bytes


def test_temeraire_heap_is_hugepage_backed_with_thp_always():
    # With enabled=always and no release, Temeraire's packed heap is almost all AnonHugePages.
    _node, p = spawn()
    a = make_allocator("temeraire", p)
    Churn(a, seed=1).grow(2000)
    s = p.smaps
    assert s["AnonHugePages"] / s["Rss"] > 0.95


def test_dontneed_subrelease_breaks_hugepages_the_kernel_reports():
    # Subreleasing a partly used hugepage with DONTNEED drops its PMD mapping (AnonHugePages falls by
    # 2 MiB per broken hugepage, docs/linux-rules.md K10).
    node, p = spawn()
    a = make_allocator("temeraire", p, skip_subrelease_short_s=0, skip_subrelease_long_s=0)
    a.alloc(np.arange(4), np.full(4, 128 * 8192))          # two full hugepages
    before = p.smaps["AnonHugePages"]
    a.free(np.array([0]))
    released, _ = a.release(1)
    assert released == 256
    assert p.smaps["AnonHugePages"] == before - 2 * MiB
    node.check()


def test_splittable_release_keeps_the_thp_and_reuse_calls_unsplittable():
    # Rientjes' proposal: SPLITTABLE keeps the THP without pressure; reuse needs UNSPLITTABLE first.
    node, p = spawn(proposals=["madv_splittable"])
    a = make_allocator("temeraire", p, release_advice="splittable", skip_subrelease_short_s=0,
                       skip_subrelease_long_s=0)
    a.alloc(np.arange(4), np.full(4, 128 * 8192))
    huge = p.smaps["AnonHugePages"]
    a.free(np.array([0]))
    a.release(1)
    assert p.smaps["AnonHugePages"] == huge
    a.alloc(np.array([9]), np.array([128 * 8192]))
    assert a.stats().madvise_calls_by_advice.get("UNSPLITTABLE", 0) >= 1
    assert p.smaps["AnonHugePages"] == huge
    node.check()


def test_free_is_used_as_asked_on_linux_4_5_and_acts_as_dontneed():
    # Neither tcmalloc nor jemalloc can tell that 4.5 without swap turns MADV_FREE into DONTNEED: the call
    # succeeds, so no fallback happens; the kernel frees the pages at once (RSS drops, no LazyFree).
    node, p = spawn(profile="linux-4.5")
    a = make_allocator("tcmalloc", p, release_rate="1GiB/s", release_advice="free")
    a.alloc(np.arange(8), np.full(8, MiB))
    a.free(np.arange(0, 8, 2))
    rss = p.smaps["Rss"]
    a.background(0.0)
    a.background(1.0)
    s = a.stats()
    assert s.fallbacks == () and s.madvise_calls_by_advice["FREE"] == 4
    assert p.smaps["LazyFree"] == 0 and p.smaps["Rss"] == rss - 4 * MiB
    node.check()


def test_unsupported_advice_falls_back_to_dontneed():
    # SPLITTABLE without the proposal is EINVAL: the allocator retries with MADV_DONTNEED and remembers.
    node, p = spawn()
    a = make_allocator("tcmalloc", p, release_rate="1GiB/s", release_advice="splittable")
    a.alloc(np.arange(8), np.full(8, MiB))
    a.free(np.arange(0, 8, 2))
    a.background(0.0)
    a.background(1.0)
    s = a.stats()
    assert s.fallbacks == ("SPLITTABLE",) and s.madvise_calls_by_advice["DONTNEED"] == 4
    node.check()


def test_collapse_after_reuse_restores_the_thp_on_linux_6_1_and_is_skipped_on_4_12():
    for profile, expect_huge in (("linux-6.1", True), ("linux-4.12", False)):
        node, p = spawn(profile=profile, enabled="madvise")
        a = make_allocator("tcmalloc", p, release_rate="1GiB/s", collapse="after_reuse",
                           hugepage_advice="hugepage")
        a.alloc(np.arange(2), np.full(2, MiB))           # one hugepage, THP at fault
        a.free(np.array([0]))
        a.background(0.0)
        a.background(1.0)                                 # DONTNEED of half: PMD split
        assert p.smaps["AnonHugePages"] == 0
        a.alloc(np.array([5]), np.array([MiB]))           # reuse -> collapse
        assert (p.smaps["AnonHugePages"] == 2 * MiB) is expect_huge
        assert ("COLLAPSE" in a.stats().fallbacks) is not expect_huge
        node.check()
