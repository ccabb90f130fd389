"""Legacy tcmalloc, jemalloc and glibc release behaviour, each checked against its mechanism."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import Churn, assert_conserved

from clustersim.allocators import GlibcMalloc, JemallocArena, LegacyPageHeap, PageState
from clustersim.allocators.decay import H_STEPS, SMOOTHSTEP_BFP
from clustersim.kernel.mman import MADV

KiB, MiB = 1 << 10, 1 << 20


class Clock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t


# ----------------------------------------------------------------------------------- legacy tcmalloc

def test_legacy_best_fit_takes_the_smallest_hole_lowest_address_first(proc):
    # Holes of 6, 2 and 2 tcmalloc pages: a 2-page span goes to the lower 2-page hole.
    a = LegacyPageHeap(proc)
    a.alloc(np.arange(6), np.array([6, 1, 2, 1, 2, 1]) * 8192)
    a.free(np.array([0, 2, 4]))
    a.alloc(np.array([9]), np.array([2 * 8192]))
    assert a._spans[9][0] == a._spans[1][0] + 2


def test_legacy_release_rate_bounds_bytes_released_per_second(proc):
    # 64 free spans of 1 MiB; 4 MiB/s releases whole spans until at least 4 MiB, i.e. exactly 4 spans.
    a = LegacyPageHeap(proc, release_rate="4MiB/s")
    a.alloc(np.arange(128), np.full(128, MiB))
    a.free(np.arange(0, 128, 2))
    a.background(0.0)
    a.background(1.0)
    assert a.pages_in(PageState.RELEASED) == 4 * 256
    assert proc.calls[MADV.DONTNEED] == 4


def test_prefer_split_hugepages_releases_on_already_broken_hugepages_first(proc):
    # Two hugepages each with one free 64 KiB span; the second already has a released page. With the
    # option the next 64 KiB of budget goes to the broken hugepage, without it to the first by address.
    def run(option):
        a = LegacyPageHeap(type(proc)(), release_rate=64 * KiB, prefer_split_hugepages=option)
        a.alloc(np.arange(6), np.array([8, 256 - 16, 8, 8, 256 - 32, 8]) * 8192)  # 2 MiB each
        a.free(np.array([0, 3, 5]))
        a.release_ranges(np.array([a._spans[4][0] + (256 - 32) * 2]), np.array([16]))  # break vhp 1
        a.background(0.0)
        a.background(1.0)
        return a.vhp_counts(PageState.RELEASED)[:2].tolist()

    assert run("off")[0] > 0
    assert run("on")[0] == 0


def test_prefer_long_spans_releases_the_longest_span_first(proc):
    a = LegacyPageHeap(proc, release_rate=8192, prefer_long_spans="on")
    a.alloc(np.arange(4), np.array([1, 1, 20, 1]) * 8192)
    a.free(np.array([0, 2]))
    a.background(0.0)
    a.background(1.0)
    assert proc.log[-1][-1] == 40  # one madvise of the 20-page span (40 small pages)


def test_refault_discount_subtracts_reused_released_memory_from_the_budget(proc):
    # Release 1 MiB, reuse it, then with the discount the next 1 MiB/s budget is used up by the refault.
    def released_after(option):
        p = type(proc)()
        a = LegacyPageHeap(p, release_rate=MiB, refault_discount=option)
        a.alloc(np.arange(8), np.full(8, MiB))
        a.free(np.arange(0, 8, 2))
        a.background(0.0)
        a.background(1.0)
        a.alloc(np.array([100]), np.array([MiB]))  # best fit reuses the released span
        a.background(2.0)
        return p.calls[MADV.DONTNEED]

    assert released_after("off") == 2
    assert released_after("on") == 1


# ----------------------------------------------------------------------------------- jemalloc

def _fragmented_dirty(a, n=1000):
    """n separate one-page dirty extents (every other page freed, so none coalesce)."""
    a.alloc(np.arange(2 * n), np.full(2 * n, 4096))
    a.free(np.arange(0, 2 * n, 2))


@pytest.mark.parametrize("epochs", [50, 100, 150])
def test_jemalloc_decay_purges_the_smoothstep_share(proc, epochs):
    # decay.c: pages that became dirty at epoch 0 may stay unpurged up to backlog * h[199 - k] >> 24 after
    # k more epochs (h = smootherstep at (200 - k) / 200); the rest is purged with MADV_DONTNEED
    # (muzzy_decay_ms 0). Epochs are dirty_decay_ms / 200 = 50 ms; 50/100/150 epochs = 2.5/5/7.5 s.
    clock = Clock()
    a = JemallocArena(proc, dirty_decay_ms=10_000, background_thread="on", clock=clock)
    _fragmented_dirty(a, 1000)
    a.background(1.0)                      # first epoch advance records the 1000 pages in the backlog
    assert a.dirty_pages == 1000
    a.background(1.0 + epochs * 0.05 + 1e-9)
    limit = 1000 * H_STEPS[199 - epochs] >> SMOOTHSTEP_BFP
    assert a.dirty_pages == limit
    assert a.pages_in(PageState.RELEASED) == 1000 - limit
    if epochs == 100:
        assert limit == 500                # h(0.5) = 1/2: half purged after half the decay time


def test_jemalloc_without_background_thread_an_idle_process_keeps_dirty_pages(proc):
    clock = Clock()
    a = JemallocArena(proc, dirty_decay_ms=1000, background_thread="off", clock=clock)
    _fragmented_dirty(a, 100)
    for t in range(1, 60):
        clock.t = float(t)
        a.background(float(t))
    assert a.dirty_pages == 100
    # Activity advances the epoch; the pages enter the backlog only now (as new dirty pages, h = 1), so
    # they start decaying from here and are gone one decay time of activity later.
    a.alloc(np.array([10_000]), np.array([4096]))
    assert a.dirty_pages == 99
    clock.t = 61.0
    a.alloc(np.array([10_001]), np.array([4096]))
    assert a.dirty_pages == 0


def test_jemalloc_muzzy_decay_goes_through_madv_free_then_dontneed(proc):
    clock = Clock()
    a = JemallocArena(proc, dirty_decay_ms=0, muzzy_decay_ms=1000, background_thread="on", clock=clock)
    _fragmented_dirty(a, 10)
    assert a.muzzy_pages == 10 and proc.calls[MADV.FREE] == 10
    assert a.pages_in(PageState.LAZYFREE) == 10
    for t in (1.0, 3.0):
        a.background(t)
    assert a.muzzy_pages == 0 and proc.calls[MADV.DONTNEED] == 10
    assert_conserved(a)


def test_jemalloc_reuses_lowest_address_dirty_extent_first(proc):
    a = JemallocArena(proc)
    a.alloc(np.arange(5), np.full(5, 8192))
    a.free(np.array([3, 1]))
    a.alloc(np.array([9]), np.array([8192]))
    assert a._spans[9][0] == a._spans[0][0] + 2


@pytest.mark.parametrize(("thp", "advice"), [("always", MADV.HUGEPAGE), ("never", MADV.NOHUGEPAGE)])
def test_jemalloc_thp_option_advises_its_mappings(proc, thp, advice):
    a = JemallocArena(proc, thp=thp)
    a.alloc(np.array([1]), np.array([8192]))
    assert proc.log[0][0] == "mmap" and proc.log[0][3] is advice


# ----------------------------------------------------------------------------------- glibc

def test_glibc_inner_hole_never_returns_without_malloc_trim(proc):
    a = GlibcMalloc(proc)
    a.alloc(np.arange(3), np.full(3, 64 * KiB))
    a.free(np.array([1]))
    for t in range(100):
        a.background(float(t))
    assert a.stats().free_backed_bytes == 64 * KiB
    assert sum(proc.calls.values()) == 0


def test_glibc_malloc_trim_releases_whole_pages_of_inner_holes(proc):
    # mtrim keeps the page holding the free chunk's header: 16 pages free -> 15 released.
    a = GlibcMalloc(proc, malloc_trim="every_tick")
    a.alloc(np.arange(3), np.full(3, 64 * KiB))
    a.free(np.array([1]))
    a.background(0.0)
    assert a.stats().free_backed_bytes == 4 * KiB
    assert a.pages_in(PageState.RELEASED) == 15


def test_glibc_freeing_the_top_above_trim_threshold_returns_it(proc):
    # Top below 128 KiB stays; once it reaches the threshold, all but top_pad (128 KiB) is released.
    a = GlibcMalloc(proc)
    a.alloc(np.arange(6), np.full(6, 64 * KiB))
    a.free(np.array([5]))
    assert a.pages_in(PageState.RELEASED) == 0
    a.free(np.array([4, 3, 2]))
    assert a.stats().free_backed_bytes == 128 * KiB
    assert a.pages_in(PageState.RELEASED) == (256 - 128) // 4
    assert proc.calls[MADV.DONTNEED] == 1


def test_glibc_mmaps_large_chunks_and_raises_thresholds_when_they_are_freed(proc):
    a = GlibcMalloc(proc)
    a.alloc(np.array([1]), np.array([1 * MiB]))
    assert a.stats().mapped_bytes == MiB and len(proc.regions) == 1
    a.free(np.array([1]))
    assert proc.log[-1][0] == "munmap"
    assert a.mmap_threshold_bytes == MiB and a.trim_threshold_bytes == 2 * MiB
    a.alloc(np.array([2]), np.array([512 * KiB]))  # now below the threshold: from the heap
    assert a._spans[2][1] == 128


def test_every_churned_allocator_conserves_bytes_with_lazy_advice(proc):
    a = LegacyPageHeap(proc, release_rate="32MiB/s", release_advice="free")
    churn = Churn(a)
    for t in range(10):
        churn.grow(200)
        churn.shrink(180)
        a.background(float(t))
        assert_conserved(a)
    assert a.pages_in(PageState.LAZYFREE) > 0
