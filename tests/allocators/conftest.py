"""A tiny recording fake of the kernel's syscall API, for allocator unit tests.

It keeps a log of every call (like SimPy's ``log`` fixture) and a per-page residency bitmap per region, so a
test can check what the allocator asked of the kernel without the real memory model. Costs are fixed:
1 us per touched 4 KiB page, 1 us per madvise range.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from clustersim.kernel.errors import KernelError
from clustersim.kernel.mman import MADV

PAGE = 4096
ALL_ADVICE = frozenset(MADV)
LINUX_4_5 = frozenset({MADV.DONTNEED, MADV.FREE, MADV.HUGEPAGE, MADV.NOHUGEPAGE})


class FakeProfile:
    def __init__(self, advice=ALL_ADVICE):
        self.advice = frozenset(advice)

    def supports(self, advice):
        return advice in self.advice


class FakeRegion:
    def __init__(self, rid, length):
        self.id = rid
        self.length = length
        self.resident = np.zeros(length // PAGE, dtype=bool)


class FakeProcess:
    """Records mmap/touch/madvise/munmap; refuses advice its profile lacks with EINVAL."""

    def __init__(self, advice=ALL_ADVICE):
        self.profile = FakeProfile(advice)
        self.log: list[tuple] = []
        self.calls: Counter = Counter()
        self.regions: dict[int, FakeRegion] = {}
        self.touched_pages = 0
        self.undo_lost_pages = np.zeros(0, dtype=np.int64)

    def mmap(self, length, advice=None):
        assert length > 0 and length % PAGE == 0
        r = FakeRegion(len(self.log), length)
        self.regions[r.id] = r
        self.log.append(("mmap", r.id, length, advice))
        if advice is not None:
            self.calls[advice] += 1
        return r

    def munmap(self, r):
        self.log.append(("munmap", r.id))
        del self.regions[r.id]
        return 1e-6

    def _check(self, r, offsets, lengths):
        offsets, lengths = np.asarray(offsets), np.asarray(lengths)
        assert r.id in self.regions, "syscall on an unmapped region"
        assert (offsets % PAGE == 0).all() and (lengths % PAGE == 0).all()
        assert (offsets >= 0).all() and (offsets + lengths <= r.length).all(), "range outside the VMA"
        return offsets // PAGE, lengths // PAGE

    def touch(self, r, offset, length):
        return self.touch_many(r, np.array([offset]), np.array([length]))

    def touch_many(self, r, offsets, lengths):
        first, n = self._check(r, offsets, lengths)
        for a, k in zip(first.tolist(), n.tolist(), strict=True):
            r.resident[a:a + k] = True
        self.touched_pages += int(n.sum())
        self.log.append(("touch", r.id, int(n.sum())))
        return 1e-6 * int(n.sum())

    def touch_batch(self, batch):
        return sum(self.touch_many(r, off, ln) for r, off, ln in batch)

    def access_many(self, r, offsets, lengths):
        self._check(r, offsets, lengths)
        return 0.0

    def access_batch(self, batch):
        return sum(self.access_many(r, off, ln) for r, off, ln in batch)

    def madvise(self, r, offset, length, advice):
        return self.madvise_many(r, np.array([offset]), np.array([length]), advice)

    def madvise_batch(self, batch, advice):
        return sum(self.madvise_many(r, off, ln, advice) for r, off, ln in batch)

    def madvise_many(self, r, offsets, lengths, advice):
        if not self.profile.supports(advice):
            raise KernelError("EINVAL", f"{advice.name} not supported")
        first, n = self._check(r, offsets, lengths)
        if advice in (MADV.DONTNEED, MADV.FREE, MADV.SPLITTABLE):
            for a, k in zip(first.tolist(), n.tolist(), strict=True):
                r.resident[a:a + k] = False
        if advice is MADV.FREE_UNDO:
            self.undo_lost_pages = np.zeros(len(first), dtype=np.int64)
        self.calls[advice] += len(first)
        self.log.append(("madvise", r.id, advice, len(first), int(n.sum())))
        return 1e-6 * len(first)

    def resident_pages(self):
        return sum(int(r.resident.sum()) for r in self.regions.values())


@pytest.fixture
def proc():
    return FakeProcess()


@pytest.fixture
def proc_4_5():
    return FakeProcess(LINUX_4_5)


# ----------------------------------------------------------------------------------- helpers

def assert_conserved(alloc):
    """Every mapped byte is in exactly one allocator state (in use, free backed, released, lazy, queued)."""
    s = alloc.stats()
    assert s.in_use_bytes + s.free_backed_bytes + s.released_bytes + s.lazyfree_bytes + s.queued_bytes \
        == s.mapped_bytes
    assert min(s.in_use_bytes, s.free_backed_bytes, s.released_bytes, s.lazyfree_bytes, s.queued_bytes) >= 0
    assert s.requested_bytes <= s.in_use_bytes
    return s


class Churn:
    """Random span traffic: sizes uniform in whole 8 KiB pages up to ``max_pages8``, frees of random live spans."""

    def __init__(self, alloc, seed=0, max_pages8=32):
        self.alloc = alloc
        self.rng = np.random.default_rng(seed)
        self.max_pages8 = max_pages8
        self.live: list[int] = []
        self.next_id = 0

    def grow(self, n):
        sizes = self.rng.integers(1, self.max_pages8 + 1, n) * 8192
        ids = np.arange(self.next_id, self.next_id + n)
        self.next_id += n
        self.live.extend(ids.tolist())
        return self.alloc.alloc(ids, sizes)

    def shrink(self, n):
        n = min(n, len(self.live))
        idx = self.rng.choice(len(self.live), n, replace=False)
        victims = [self.live[i] for i in idx]
        keep = np.ones(len(self.live), dtype=bool)
        keep[idx] = False
        self.live = [s for s, k in zip(self.live, keep, strict=True) if k]
        return self.alloc.free(np.array(victims, dtype=np.int64))


def hugepage_footprint_overhead(alloc):
    """2 MiB slots holding any in-use page, over in-use bytes, minus one (Temeraire Fig. 11's overhead)."""
    from clustersim.allocators import PageState
    used_vhps = int(np.count_nonzero(alloc.vhp_counts(PageState.IN_USE)))
    return used_vhps * 2 * 1024 * 1024 / alloc.stats().in_use_bytes - 1
