"""Golden syscall traces: a fixed span trace gives the same syscalls, argument for argument, as when the digests
were recorded.

The allocators' data structures are tuned for speed (numpy span tables, cached per-hugepage free ranges);
these digests pin their behaviour so such work cannot move a placement or a release by one page. Each
digest covers every syscall (region, offsets, lengths, advice) and the final ``stats()``.

A behaviour change that is meant must update the digests: run
``UPDATE_SYSCALL_DIGESTS=1 pytest tests/allocators/test_syscall_trace.py -s`` and paste what it prints.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os

import numpy as np
import pytest
from conftest import LINUX_4_5, FakeProcess

from clustersim.allocators import make_allocator

PAGE = 4096


class RecordingProcess(FakeProcess):
    """The fake kernel, logging every syscall with its full arguments."""

    def __init__(self, advice=None):
        super().__init__() if advice is None else super().__init__(advice)
        self.trace: list = []

    def mmap(self, length, advice=None):
        r = super().mmap(length, advice)
        self.trace.append(["mmap", r.id, length, advice and advice.name])
        return r

    def munmap(self, r):
        self.trace.append(["munmap", r.id])
        return super().munmap(r)

    def touch_many(self, r, offsets, lengths):
        self.trace.append(["touch", r.id, np.asarray(offsets).tolist(), np.asarray(lengths).tolist()])
        return super().touch_many(r, offsets, lengths)

    def madvise_many(self, r, offsets, lengths, advice):
        self.trace.append(["madvise", r.id, advice.name, np.asarray(offsets).tolist(),
                           np.asarray(lengths).tolist()])
        return super().madvise_many(r, offsets, lengths, advice)

    def access_many(self, r, offsets, lengths):
        self.trace.append(["access", r.id, np.asarray(offsets).tolist(), np.asarray(lengths).tolist()])
        return 0.0


def span_sizes(rng, n):
    """Mostly small spans, some mid-size (half a hugepage to one) and some of several hugepages, in 4 KiB."""
    kind = rng.choice(3, n, p=[0.75, 0.17, 0.08])
    small = rng.integers(1, 65, n)
    mid = rng.integers(256, 513, n)
    large = rng.integers(513, 2000, n)
    return np.choose(kind, [small, mid, large]) * PAGE


def run_fixed_trace(kind, proc, ticks=40, **options):
    """Grow for half the ticks, then shrink; frees pick random live spans; a background tick every step."""
    a = make_allocator(kind, proc, **options)
    rng = np.random.default_rng(7)
    live, next_id = [], 0
    for t in range(ticks):
        n = 80 if t < ticks // 2 else 30
        ids = np.arange(next_id, next_id + n)
        next_id += n
        a.alloc(ids, span_sizes(rng, n))
        live.extend(ids.tolist())
        k = min(len(live), 50 if t < ticks // 2 else 90)
        pick = set(rng.choice(len(live), k, replace=False).tolist())
        a.free(np.array([s for i, s in enumerate(live) if i in pick], dtype=np.int64))
        live = [s for i, s in enumerate(live) if i not in pick]
        if t % 7 == 3:
            a.access(np.array(live[::5], dtype=np.int64))
        a.background(float(t))
    return a


CASES = {
    "tcmalloc-default": ("tcmalloc", {"release_rate": "2MiB/s"}),
    "tcmalloc-founding-options": ("tcmalloc", {
        "release_rate": "4MiB/s", "prefer_split_hugepages": "on", "prefer_long_spans": "on",
        "refault_discount": "on", "release_advice": "free", "hugepage_advice": "hugepage",
        "collapse": "after_reuse"}),
    "tcmalloc-splittable-fallback": ("tcmalloc", {"release_rate": "8MiB/s", "release_advice": "splittable"}),
    "tcmalloc-splittable-reuse": ("tcmalloc", {"release_rate": "8MiB/s", "release_advice": "splittable",
                                               "collapse": "after_reuse"}),
    "temeraire-default": ("temeraire", {}),
    "temeraire-subrelease": ("temeraire", {"release_rate": "8MiB/s", "skip_subrelease_short_s": 0,
                                           "skip_subrelease_long_s": 0, "hugepage_advice": "hugepage"}),
    "temeraire-skip-free-undo": ("temeraire", {"release_rate": "16MiB/s", "skip_subrelease_short_s": 5,
                                               "skip_subrelease_long_s": 10, "release_advice": "free_undo",
                                               "collapse": "after_reuse", "cache_window_s": 1.0}),
    "jemalloc-default": ("jemalloc", {}),
    "jemalloc-muzzy-thread": ("jemalloc", {"dirty_decay_ms": 3000, "muzzy_decay_ms": 5000,
                                           "background_thread": "on", "thp": "always"}),
    "jemalloc-immediate-splittable": ("jemalloc", {"dirty_decay_ms": 0, "muzzy_decay_ms": 2000,
                                                   "muzzy_advice": "splittable"}),
    "jemalloc-free-undo": ("jemalloc", {"dirty_decay_ms": 2000, "muzzy_decay_ms": 4000,
                                        "muzzy_advice": "free_undo", "collapse": "after_reuse"}),
    "glibc-default": ("glibc", {}),
    "glibc-trim-static": ("glibc", {"malloc_trim": "every_tick", "dynamic_thresholds": "off",
                                    "mmap_threshold": "1M", "release_advice": "free"}),
}
OLD_KERNEL = {"tcmalloc-splittable-fallback", "jemalloc-immediate-splittable"}

DIGESTS = {
    "glibc-default": "21bcb34837841e8660cd3f6e",  # 351 syscalls
    "glibc-trim-static": "5c815afd0e9812b7ba009388",  # 1805 syscalls
    "jemalloc-default": "10605cbc1c501037029a2a04",  # 304 syscalls
    "jemalloc-free-undo": "dc1be5800f6f91da3792ca8f",  # 588 syscalls
    "jemalloc-immediate-splittable": "2477963d16ad56eab5ea3d33",  # 307 syscalls
    "jemalloc-muzzy-thread": "8b7cf4fbc60b0f7e133d64bd",  # 437 syscalls
    "tcmalloc-default": "3c1e3be3ce0091004e857ca1",  # 192 syscalls
    "tcmalloc-founding-options": "fff09e9a1c61f7d9b87c8c64",  # 195 syscalls
    "tcmalloc-splittable-fallback": "e368ca42d025fa3e99901932",  # 213 syscalls
    "tcmalloc-splittable-reuse": "33fb2833ff2853f3479776bb",  # 367 syscalls
    "temeraire-default": "0763fbc33d0bd92bfd251050",  # 206 syscalls
    "temeraire-skip-free-undo": "575eccb6fc2897b82314828b",  # 353 syscalls
    "temeraire-subrelease": "72db486a2fea0fd97a4a7c09",  # 220 syscalls
}


def trace_digest(name):
    kind, options = CASES[name]
    proc = RecordingProcess(LINUX_4_5 if name in OLD_KERNEL else None)
    a = run_fixed_trace(kind, proc, **options)
    record = {"syscalls": proc.trace, "stats": dataclasses.asdict(a.stats())}
    return hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()[:24], len(proc.trace)


@pytest.mark.parametrize("name", sorted(CASES))
def test_fixed_trace_makes_the_recorded_syscalls(name):
    # A fixed mix of small, mid-size and multi-hugepage spans grows a heap for 20 ticks and shrinks it for
    # 20 more, with background ticks (and so releases) in between; the whole syscall log must match.
    digest, ncalls = trace_digest(name)
    if os.environ.get("UPDATE_SYSCALL_DIGESTS"):
        print(f'    "{name}": "{digest}",  # {ncalls} syscalls')
        return
    assert digest == DIGESTS[name]
