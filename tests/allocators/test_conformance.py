"""Checks every allocator kind must pass (like scikit-learn's estimator checks, sklearn/tests/test_common.py)."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import Churn, FakeProcess, assert_conserved

from clustersim.allocators import ALLOCATORS, make_allocator

KINDS = sorted(ALLOCATORS)
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
