"""Golden syscall traces: a fixed span trace gives the same syscalls, argument for argument, as recorded.

The allocators' data structures are tuned for speed (numpy span tables, cached per-hugepage free ranges);
these traces pin their behaviour so such work cannot move a placement or a release by one page. Each trace,
a text file in ``traces/``, lists every syscall (region, advice, offsets, lengths) under a marker per tick,
then the final ``stats()``; a failure shows the diff from the first differing call.

A behaviour change that is meant is recorded with ``CLUSTERSIM_UPDATE_GOLDEN=1``, which rewrites the
files and skips these tests.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from conftest import LINUX_4_5, FakeProcess

from clustersim.allocators import make_allocator

PAGE = 4096
TRACE_DIR = Path(__file__).parent / "traces"


class RecordingProcess(FakeProcess):
    """The fake kernel, logging every syscall with its full arguments."""

    def __init__(self, advice=None):
        super().__init__() if advice is None else super().__init__(advice)
        self.trace: list = []
        self.lines: list[str] = []   # the trace as text, one call per line, with the tick markers

    def record(self, call):
        self.trace.append(call)
        self.lines.append(call_line(call))

    def mark(self, text):
        self.lines.append(f"## {text}")

    def mmap(self, length, advice=None):
        r = super().mmap(length, advice)
        self.record(["mmap", r.id, length, advice and advice.name])
        return r

    def munmap(self, r):
        self.record(["munmap", r.id])
        return super().munmap(r)

    def touch_many(self, r, offsets, lengths):
        self.record(["touch", r.id, np.asarray(offsets).tolist(), np.asarray(lengths).tolist()])
        return super().touch_many(r, offsets, lengths)

    def madvise_many(self, r, offsets, lengths, advice):
        self.record(["madvise", r.id, advice.name, np.asarray(offsets).tolist(),
                           np.asarray(lengths).tolist()])
        return super().madvise_many(r, offsets, lengths, advice)

    def access_many(self, r, offsets, lengths):
        self.record(["access", r.id, np.asarray(offsets).tolist(), np.asarray(lengths).tolist()])
        return 0.0


def call_line(call):
    """One syscall as text: ``touch r3 0+4 16+2`` (ranges: offset+length in 4 KiB pages), ``mmap r0 2097152 None``."""
    op, rid, *args = call
    if op in ("mmap", "munmap"):
        return " ".join(map(str, [op, f"r{rid}", *args]))
    *advice, offsets, lengths = args
    ranges = [f"{o // PAGE}+{n // PAGE}" for o, n in zip(offsets, lengths, strict=True)]
    return " ".join([op, f"r{rid}", *advice, *ranges])


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
        proc.mark(f"tick {t}")
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


def trace_lines(name):
    """The fixed trace of case ``name`` as text: one syscall per line under tick markers, then the stats."""
    kind, options = CASES[name]
    proc = RecordingProcess(LINUX_4_5 if name in OLD_KERNEL else None)
    a = run_fixed_trace(kind, proc, **options)
    lines = [f"# {kind} {options!r}; ranges are offset+length in 4 KiB pages", *proc.lines, "# stats"]
    lines += [f"{k} {v!r}" for k, v in sorted(dataclasses.asdict(a.stats()).items())]
    return lines


@pytest.mark.parametrize("name", sorted(CASES))
def test_fixed_trace_makes_the_recorded_syscalls(name, golden_text):
    # A fixed mix of small, mid-size and multi-hugepage spans grows a heap for 20 ticks and shrinks it for
    # 20 more, with background ticks (and so releases) in between; the whole syscall log must match.
    golden_text(TRACE_DIR / f"{name}.log", trace_lines(name))
