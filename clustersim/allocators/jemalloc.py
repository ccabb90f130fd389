"""jemalloc 5.x page allocator (one arena): first fit by address, smoothstep decay of dirty and muzzy pages.

Freed extents become *dirty* (resident). Dirty pages decay over ``dirty_decay_ms`` (default 10 s) by the
smoothstep curve (decay.py): purging moves the oldest extents to *muzzy* with MADV_FREE, or, when
``muzzy_decay_ms`` is 0 (the default since 5.2), straight to *retained* with MADV_DONTNEED. Muzzy pages
decay over ``muzzy_decay_ms`` to retained with MADV_DONTNEED. Allocation reuses dirty extents first, then
muzzy, then retained, then maps more (pac_alloc_real), each by lowest address.

``background_thread``: "on" advances decay every background tick; "off" (jemalloc's default) advances it only
when the process allocates or frees (arena_decay_ticks), so an idle process keeps its dirty pages. ``thp``:
"default" leaves the VMAs alone, "always" puts MADV_HUGEPAGE on them, "never" MADV_NOHUGEPAGE
(opt.thp, pages_set_thp_state). ``muzzy_advice`` is the lazy purge (MADV_FREE by default; a proposal's
advice can be used instead); when the kernel refuses it, jemalloc's forced purge (MADV_DONTNEED) is used.

Left out: slabs and size classes below a page, tcache, multiple arenas, the oversize arena, decay jitter,
the 1000-event ticker (every batch counts as a tick).
"""

from __future__ import annotations

import numpy as np

from clustersim.jit import njit
from clustersim.kernel.mman import MADV

from .base import HeapAllocator
from .decay import Decay
from .extents import ExtentSet, first_fit
from .options import BASE_OPTIONS, Option, ReleaseAdvice, parse_switch
from .page_space import PageState
from .sorted_blocks import view

_THP = {"default": "none", "always": "hugepage", "never": "nohugepage"}
# "dontneed": no lazy purge at all, as on a kernel without MADV_FREE (pages_can_purge_lazy false):
# decayed dirty pages go straight to retained with MADV_DONTNEED.
_LAZY = {"free": ReleaseAdvice.FREE, "splittable": ReleaseAdvice.SPLITTABLE,
         "free_undo": ReleaseAdvice.FREE_UNDO, "dontneed": ReleaseAdvice.DONTNEED}

OPTIONS: dict[str, Option] = {
    "dirty_decay_ms": Option(10_000, "opt.dirty_decay_ms default; -1 never purges, 0 purges at once",
                             lo=-1, integer=True),
    "muzzy_decay_ms": Option(0, "opt.muzzy_decay_ms default since 5.2 (PR #1421); -1 never, 0 at once",
                             lo=-1, integer=True),
    "background_thread": Option(False, "opt.background_thread default false: opt-in only "
                                "(BACKGROUND_THREAD_DEFAULT, src/background_thread.c)"),
    "thp": Option("default", "opt.thp default: leave the VMAs to the system's THP policy",
                  choices=tuple(_THP)),
    "muzzy_advice": Option("free", "pages_purge_lazy: MADV_FREE where the kernel has it",
                           choices=tuple(_LAZY)),
    "collapse": BASE_OPTIONS["collapse"],
}


class JemallocArena(HeapAllocator):
    """One jemalloc arena over the process heap."""

    kind = "jemalloc"
    OPTIONS = OPTIONS

    def __init__(self, process, *, dirty_decay_ms: int = OPTIONS["dirty_decay_ms"].default,
                 muzzy_decay_ms: int = OPTIONS["muzzy_decay_ms"].default,
                 background_thread: bool | str = OPTIONS["background_thread"].default,
                 thp: str = OPTIONS["thp"].default, muzzy_advice: str = OPTIONS["muzzy_advice"].default,
                 collapse: str = OPTIONS["collapse"].default, clock=None) -> None:
        if thp not in _THP:
            raise ValueError(f"thp={thp!r} is not allowed; allowed: {', '.join(map(repr, _THP))}")
        if muzzy_advice not in _LAZY:
            raise ValueError(f"muzzy_advice={muzzy_advice!r} is not allowed; allowed: "
                             f"{', '.join(map(repr, _LAZY))}")
        super().__init__(process, release_advice="dontneed", hugepage_advice=_THP[thp], collapse=collapse,
                         clock=clock)
        self.lazy_advice = _LAZY[muzzy_advice]
        self.undo_lazyfree = self.lazy_advice is ReleaseAdvice.FREE_UNDO
        self.background_thread = parse_switch(background_thread, "background_thread")
        now = self.now()
        self.dirty = ExtentSet("dirty")
        self.muzzy = ExtentSet("muzzy")
        self.retained = ExtentSet("retained")
        self.decay_dirty = Decay(OPTIONS["dirty_decay_ms"].check(dirty_decay_ms, "dirty_decay_ms"), now)
        self.decay_muzzy = Decay(OPTIONS["muzzy_decay_ms"].check(muzzy_decay_ms, "muzzy_decay_ms"), now)

    # ----------------------------------------------------------------------------------- placement

    def _place_batch(self, npages: np.ndarray) -> np.ndarray:
        starts = np.empty(len(npages), dtype=np.int64)
        done = 0
        while True:
            for extents in (self.dirty, self.muzzy, self.retained):
                extents.reserve(len(npages) - done)
            done = _place_spans(self.dirty.buf, self.muzzy.buf, self.retained.buf, npages, starts, done)
            if done == len(npages):
                return starts
            # Nothing fits in any set: map more heap; the new space is retained (mapped, never touched),
            # merged with a retained extent ending at the old top, and the span is placed again.
            base = self._grow_heap(int(npages[done]))
            self.retained.insert(base, self._top_page - base)

    def _unplace_batch(self, starts: np.ndarray, npages: np.ndarray) -> None:
        self.dirty.insert_many(starts, npages)

    # ----------------------------------------------------------------------------------- decay

    def _on_alloc_batch(self) -> float:
        return 0.0 if self.background_thread else self.decay(self.now())

    def _on_free_batch(self) -> float:
        if self.decay_dirty.decay_ms == 0 or self.decay_muzzy.decay_ms == 0:
            return self.decay(self.now())  # decay_ms 0 purges at once, with or without a thread
        return 0.0 if self.background_thread else self.decay(self.now())

    def _background(self, now_s: float, dt_s: float) -> float:
        return self.decay(now_s) if self.background_thread else 0.0

    def decay(self, now_s: float) -> float:
        """arena_decay for dirty then muzzy pages; returns seconds spent in madvise."""
        seconds = self._decay_one(self.decay_dirty, self.dirty, now_s)
        return seconds + self._decay_one(self.decay_muzzy, self.muzzy, now_s)

    def _decay_one(self, decay: Decay, extents: ExtentSet, now_s: float) -> float:
        if decay.decay_ms < 0:
            return 0.0
        if decay.decay_ms == 0:
            return self._purge_to_limit(extents, 0)
        if decay.maybe_advance_epoch(now_s, extents.npages) and extents.npages > decay.npages_limit:
            return self._purge_to_limit(extents, decay.npages_limit)
        return 0.0

    def _purge_to_limit(self, extents: ExtentSet, limit_pages: int) -> float:
        """Evict the oldest extents until at most ``limit_pages`` remain, and purge them."""
        starts, lengths = extents.evict_to(limit_pages)
        if not len(starts):
            return 0.0
        lazy = self.lazy_advice is not ReleaseAdvice.DONTNEED
        if extents is self.dirty and self.decay_muzzy.decay_ms != 0 and lazy:
            return self._purge_lazy(starts, lengths)
        from_states = (PageState.FREE_BACKED,) if extents is self.dirty else _LAZY_STATES
        _, seconds = self.release_ranges(starts, lengths, from_states=from_states,
                                         advice=ReleaseAdvice.DONTNEED)
        self.retained.insert_many(starts, lengths)
        return seconds

    def _purge_lazy(self, starts: np.ndarray, lengths: np.ndarray) -> float:
        """Dirty -> muzzy with the lazy advice; refused by the kernel -> forced purge to retained."""
        _, seconds = self.release_ranges(starts, lengths, advice=self.lazy_advice)
        refused = _LAZY_MADV[self.lazy_advice] in self._refused
        (self.retained if refused else self.muzzy).insert_many(starts, lengths)
        return seconds

    @property
    def dirty_pages(self) -> int:
        return self.dirty.npages

    @property
    def muzzy_pages(self) -> int:
        return self.muzzy.npages


_LAZY_MADV = {ReleaseAdvice.FREE: MADV.FREE, ReleaseAdvice.SPLITTABLE: MADV.SPLITTABLE,
              ReleaseAdvice.FREE_UNDO: MADV.FREE}
_LAZY_STATES = (PageState.LAZYFREE, PageState.QUEUED)


@njit
def _place_spans(dirty, muzzy, retained, npages, out, first):
    """pac_alloc_real for spans ``first``, ``first + 1``, ... in order: reuse dirty extents first (still
    resident: no fault), then muzzy (lazily freed: usually still resident), then retained (released: the
    touch faults), each by eset_first_fit's lowest address. Writes the starts to ``out``; returns the index
    of the first span no set can hold (len(npages) when all were placed)."""
    sets = (view(dirty), view(muzzy), view(retained))
    for k in range(first, npages.shape[0]):
        start = -1
        for v in sets:
            start = first_fit(v, npages[k])
            if start >= 0:
                break
        if start < 0:
            return k
        out[k] = start
    return npages.shape[0]
