"""Checks every allocator kind must pass (like scikit-learn's estimator checks, sklearn/tests/test_common.py).

The first checks run on the recording fake kernel (conftest.FakeProcess); the second part runs every
allocator on a real ``clustersim.kernel.Node`` under every kernel profile and checks that the kernel's
numbers (smaps, memory.current, vmstat, the node's own invariants) agree with the allocator's view.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import Churn, FakeProcess, assert_conserved

from clustersim.allocators import ALLOCATORS, make_allocator
from clustersim.kernel import Node
from clustersim.kernel.profiles import profile_names

KINDS = sorted(ALLOCATORS)
PROFILES = profile_names()
RELEASING = {
    "tcmalloc": {"release_rate": "64MiB/s"},
    "temeraire": {"release_rate": "64MiB/s"},
    "jemalloc": {"dirty_decay_ms": 1000, "background_thread": "on"},
    "glibc": {"malloc_trim": "every_tick"},
}


def run_trace(kind, proc, steps=30, **options):
    a = make_allocator(kind, proc, **options)
    churn = Churn(a, seed=1)
    for t in range(steps):
        churn.grow(150)
        churn.shrink(120 if t < steps // 2 else 220)
        a.background(float(t))
        assert_conserved(a)
    return a


@pytest.mark.parametrize("kind", KINDS)
def test_alloc_free_background_conserve_bytes(kind, proc):
    # A grow-then-shrink trace; after every step the mapped heap splits exactly into the five states.
    run_trace(kind, proc, **RELEASING[kind])


@pytest.mark.parametrize("kind", KINDS)
def test_allocation_writes_every_page_it_hands_out(kind, proc):
    # The app writes its spans: the kernel sees at least the requested pages touched, all inside VMAs.
    a = make_allocator(kind, proc)
    sizes = np.array([4096, 8192, 40960, 3 << 20, 5 << 20], dtype=np.int64)
    a.alloc(np.arange(5), sizes)
    assert proc.touched_pages >= sizes.sum() // 4096
    assert proc.resident_pages() >= sizes.sum() // 4096


@pytest.mark.parametrize("kind", KINDS)
def test_free_keeps_memory_until_release(kind, proc):
    # free() makes no madvise: freed memory stays in the allocator (glibc's top trim aside, checked by
    # freeing a span that is not at the top).
    a = make_allocator(kind, proc)
    a.alloc(np.arange(3), np.array([8192, 8192, 8192]))
    a.free(np.array([0]))
    assert a.stats().free_backed_bytes >= 8192
    assert sum(proc.calls[adv] for adv in proc.calls if adv.name in ("DONTNEED", "FREE")) == 0


@pytest.mark.parametrize("kind", KINDS)
def test_same_seed_same_syscalls(kind):
    # Determinism: two runs of the same trace produce the same syscall log and the same stats.
    p1, p2 = FakeProcess(), FakeProcess()
    a1 = run_trace(kind, p1, steps=12, **RELEASING[kind])
    a2 = run_trace(kind, p2, steps=12, **RELEASING[kind])
    assert p1.log == p2.log
    assert a1.stats() == a2.stats()


@pytest.mark.parametrize("kind", KINDS)
def test_double_free_and_bad_sizes_are_rejected(kind, proc):
    a = make_allocator(kind, proc)
    a.alloc(np.array([7]), np.array([8192]))
    with pytest.raises(ValueError, match="already allocated"):
        a.alloc(np.array([7]), np.array([8192]))
    with pytest.raises(ValueError, match="multiples of 4096"):
        a.alloc(np.array([8]), np.array([1000]))
    a.free(np.array([7]))
    with pytest.raises(ValueError, match="not allocated"):
        a.free(np.array([7]))


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(("batch", "culprit"), [([3, 5, 3, 6], 3), ([2, 4, 99, 6], 99), ([4, 1, 6], 1)])
def test_a_rejected_free_names_the_id_and_frees_nothing(kind, proc, batch, culprit):
    # A free batch with an id repeated, never allocated or freed before is refused as a whole: the error
    # names the first such id in batch order, and every span of the batch is still live afterwards.
    a = make_allocator(kind, proc)
    a.alloc(np.arange(1, 8), np.full(7, 8192))
    a.free(np.array([1]))   # span 1 is freed before the batch below
    in_use = a.stats().in_use_bytes
    with pytest.raises(ValueError, match=f"span id {culprit} is not allocated"):
        a.free(np.array(batch))
    assert a.stats().in_use_bytes == in_use
    a.free(np.array([2, 3, 4, 5, 6, 7]))   # none was taken by the refused batch
    assert a.stats().in_use_bytes == 0


@pytest.mark.parametrize("kind", KINDS)
def test_everything_freed_then_reused_without_growing(kind, proc):
    # Freed memory is reused: the same demand a second time maps no new VMA.
    a = make_allocator(kind, proc)
    sizes = np.full(200, 16384)
    a.alloc(np.arange(200), sizes)
    mapped = a.stats().mapped_bytes
    a.free(np.arange(200))
    a.alloc(np.arange(200, 400), sizes)
    assert a.stats().mapped_bytes == mapped
    assert_conserved(a)


def test_unknown_kind_and_option_are_named():
    with pytest.raises(ValueError, match=r"'tcmaloc' is unknown; allowed: .*temeraire"):
        make_allocator("tcmaloc", FakeProcess())
    with pytest.raises(ValueError, match=r"unknown option\(s\) relase_rate; allowed: release_rate"):
        make_allocator("tcmalloc", FakeProcess(), relase_rate=1)
    with pytest.raises(ValueError, match="release_advice='maybe'"):
        make_allocator("temeraire", FakeProcess(), release_advice="maybe")
    with pytest.raises(ValueError, match="thp='sometimes'"):
        make_allocator("jemalloc", FakeProcess(), thp="sometimes")


# --- on a real kernel, every profile ---------------------------------------------------------------------
# Release through MADV_FREE wherever the allocator can (jemalloc: dirty -> muzzy -> DONTNEED), so the
# profiles differ: lazyfree pages on 4.12 and later, DONTNEED on a swapless 4.5.
LAZY = {
    "tcmalloc": {"release_rate": "64MiB/s", "release_advice": "free"},
    "temeraire": {"release_rate": "64MiB/s", "release_advice": "free", "skip_subrelease_short_s": 0,
                  "skip_subrelease_long_s": 0},
    "jemalloc": {"dirty_decay_ms": 1000, "muzzy_decay_ms": 3000, "background_thread": "on"},
    "glibc": {"malloc_trim": "every_tick", "release_advice": "free"},
}
# Advice no profile offers without the madv_splittable proposal.
SPLITTABLE = {"tcmalloc": {"release_rate": "64MiB/s", "release_advice": "splittable"},
              "temeraire": {"release_rate": "64MiB/s", "release_advice": "splittable",
                            "skip_subrelease_short_s": 0, "skip_subrelease_long_s": 0},
              "jemalloc": {"dirty_decay_ms": 0, "muzzy_decay_ms": 2000, "muzzy_advice": "splittable"},
              "glibc": {"malloc_trim": "every_tick", "release_advice": "splittable"}}


def small_node(profile):
    """A 256M swapless node with THP on MADV_HUGEPAGE, khugepaged every second, and one task in memcg A."""
    node = Node(memory="256M", profile=profile, seed=0, thp={"enabled": "madvise", "scan_sleep": "1s"})
    memcg = node.cgroup("A", max="max")
    return node, memcg, node.spawn(cgroup="A", name="svc")


def run_on_node(alloc, node, memcg, proc, steps=15):
    """Grow, then shrink, one tick per step; the kernel and the allocator agree after every step."""
    churn = Churn(alloc, seed=3)
    for t in range(steps):
        churn.grow(60)
        churn.shrink(50 if t < steps // 2 else 90)
        node.advance(1.0)
        alloc.background(node.time)
        assert_kernel_agrees(alloc, node, memcg, proc)
    return churn


def assert_kernel_agrees(alloc, node, memcg, proc):
    """What the allocator believes against what the kernel reports, with the node's invariants checked."""
    s = assert_conserved(alloc)
    node.check()
    smaps = proc.smaps
    # Every requested byte was written; nothing resident lies outside the allocator's VMAs. (Released pages
    # can be resident again: a THP fault or a khugepaged collapse backs a whole 2 MiB.)
    assert s.requested_bytes <= smaps["Rss"] <= s.mapped_bytes
    assert smaps["LazyFree"] <= s.lazyfree_bytes
    assert smaps["Swap"] == 0
    assert memcg.current >= smaps["Rss"]          # anon is charged; a deferred split keeps more charged
    assert proc.madvise_calls == s.madvise_calls  # one kernel madvise per range the allocator issued
    return s


@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize("kind", KINDS)
def test_on_a_real_node_the_kernel_agrees_with_the_allocator(kind, profile):
    # A heap grows for 7 one-second ticks and shrinks for 8, releasing with MADV_FREE where it can. After
    # every tick: the allocator's states add up, the node's invariants hold, Rss lies between the requested
    # and the mapped bytes, LazyFree never exceeds what the allocator marked lazyfree, memory.current covers
    # Rss, and the kernel counted every madvise range. Lazyfree pages exist exactly when the profile makes
    # MADV_FREE lazy on a swapless node (4.12 and later), and memory.stat agrees with vmstat.
    node, memcg, proc = small_node(profile)
    alloc = make_allocator(kind, proc, **LAZY[kind])
    run_on_node(alloc, node, memcg, proc)
    s = alloc.stats()
    assert s.madvise_calls_by_advice.get("FREE", 0) > 0 and not s.fallbacks
    pglazyfree = node.vmstat.get("pglazyfree", 0)
    assert memcg.stat["pglazyfree"] == pglazyfree
    assert (pglazyfree == 0) == node.profile.lazyfree_needs_swap


@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize("kind", KINDS)
def test_on_a_real_node_freeing_everything_and_exiting_leaves_nothing(kind, profile):
    # The same heap, then every span freed and 30 more ticks of background release: nothing is in use.
    # The task exits: memory.current is 0 and the node has every page it had before the task started.
    node, memcg, proc = small_node(profile)
    free_before = node.phys.nr_free + len(node.mm.stack_blocks[proc.pid])   # before the spawn's kernel stack
    alloc = make_allocator(kind, proc, **LAZY[kind])
    churn = run_on_node(alloc, node, memcg, proc)
    churn.shrink(len(churn.live))
    for _ in range(30):
        node.advance(1.0)
        alloc.background(node.time)
    s = assert_kernel_agrees(alloc, node, memcg, proc)
    assert s.in_use_bytes == s.requested_bytes == 0
    proc.exit()
    node.check()
    assert memcg.current == 0 and memcg.stat["anon"] == 0
    assert node.phys.nr_free == free_before


@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize("kind", KINDS)
def test_on_a_real_node_advice_the_profile_lacks_falls_back_to_dontneed(kind, profile):
    # MADV_SPLITTABLE is a proposal no profile offers unless enabled: the kernel refuses it (EINVAL), the
    # allocator records the fallback and releases with MADV_DONTNEED, and nothing is queued.
    node, memcg, proc = small_node(profile)
    alloc = make_allocator(kind, proc, **SPLITTABLE[kind])
    run_on_node(alloc, node, memcg, proc, steps=10)
    s = alloc.stats()
    assert s.fallbacks == ("SPLITTABLE",)
    assert s.madvise_calls_by_advice.get("DONTNEED", 0) > 0 and "SPLITTABLE" not in s.madvise_calls_by_advice
    assert s.queued_bytes == 0
