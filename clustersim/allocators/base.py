"""HeapAllocator: the bookkeeping every allocator model shares, and its syscall boundary.

An allocator owns a process's heap VMAs. Each model (tcmalloc's legacy page heap, Temeraire, jemalloc,
glibc) only decides *where* a span goes and *which* free memory to hand back; this base class, like SimPy's
``BaseResource`` with its ``_do_put``/``_do_get`` hooks, does the rest:

- the heap's address space as one allocator page index space stitched from the VMAs it mmapped, with one
  state per 4 KiB heap page and per-vhp counts (page_space.py);
- the live spans by id (span_table.py), with the id checks of alloc and free (span_ids.py);
- the syscalls: the app writes every page it is handed (``touch_many``), the configured release advice with
  its matching reuse call (UNSPLITTABLE, FREE_UNDO), MADV_COLLAPSE after reuse, and the fallback to
  MADV_DONTNEED when the kernel answers EINVAL, as tcmalloc and jemalloc do.

What the allocator believes is not what the kernel did: a lazyfree page may have been discarded by reclaim,
a DONTNEED'd range may have been re-collapsed by khugepaged. ``stats()`` reports the allocator's view; the
kernel's smaps and memory.stat report the truth.

Left out: size-class slabs (spans arrive already page-sized), metadata memory, and the cost of the
allocator's own code. Per-CPU/thread caches, arenas and partly used spans are the frontend's (frontend.py),
which reaches in through one hook: ``written_runs``, the pages of the placed spans the application writes.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from clustersim.kernel.errors import KernelError
from clustersim.kernel.mman import MADV
from clustersim.units import HPAGE_PAGES, PAGE_SIZE

from .options import BASE_OPTIONS, Collapse, HugepageAdvice, ReleaseAdvice, parse_choice
from .page_space import HOLES, REUSED, PageSpace, PageState
from .ranges import VHP_SHIFT, Runs, runs_in_states, runs_with
from .span_ids import check_distinct, check_new_ids
from .span_table import SpanTable

# Heap VMAs grow geometrically (at least this much, and at least the heap mapped so far), as jemalloc's
# exp_grow and tcmalloc's HugeAllocator do, so a heap of any size holds O(log size) VMAs and each batch of
# syscalls touches few of them. Untouched address space costs nothing but page-table bookkeeping.
GROW_MIN_PAGES = 16 * HPAGE_PAGES

# advice -> (madvise used to release, state the pages enter)
_RELEASE_CALL = {
    ReleaseAdvice.DONTNEED: (MADV.DONTNEED, PageState.RELEASED),
    ReleaseAdvice.FREE: (MADV.FREE, PageState.LAZYFREE),
    ReleaseAdvice.SPLITTABLE: (MADV.SPLITTABLE, PageState.QUEUED),
    ReleaseAdvice.FREE_UNDO: (MADV.FREE, PageState.LAZYFREE),
}
_VMA_ADVICE = {HugepageAdvice.NONE: None, HugepageAdvice.HUGEPAGE: MADV.HUGEPAGE,
               HugepageAdvice.NOHUGEPAGE: MADV.NOHUGEPAGE}


@dataclass(frozen=True)
class AllocatorStats:
    """The allocator's own view of its heap. Byte fields add up to ``mapped_bytes``."""

    in_use_bytes: int          # handed to the application (rounded to the allocator's page size)
    free_backed_bytes: int     # free but resident: fragmentation slack
    released_bytes: int        # free and not backed (DONTNEED'd or never touched)
    lazyfree_bytes: int        # free and MADV_FREE'd
    queued_bytes: int          # free and MADV_SPLITTABLE'd
    mapped_bytes: int          # every byte of every VMA the allocator holds
    requested_bytes: int       # what the application asked for (before rounding)
    untouched_bytes: int       # part of released_bytes never written at all
    hugepage_share: float      # share of resident heap in 2 MiB slots with nothing released
    madvise_calls: int         # madvise ranges issued (HUGEPAGE at mmap included)
    madvise_calls_by_advice: dict[str, int] = field(default_factory=dict)
    undo_lost_pages: int = 0   # pages FREE_UNDO reported as discarded by reclaim
    fallbacks: tuple[str, ...] = ()  # advice the kernel refused, replaced by MADV_DONTNEED


class HeapAllocator(PageSpace):
    """Shared heap bookkeeping; subclasses implement ``_place``, ``_unplace`` and ``_background``.

    Args:
        process: the kernel process handle (mmap, touch_many, madvise_many, munmap, undo_lost_pages).
        release_advice: a ``ReleaseAdvice`` value.
        hugepage_advice: a ``HugepageAdvice`` value put on every heap VMA.
        collapse: a ``Collapse`` value.
        clock: returns simulated seconds; defaults to the time of the last ``background`` call.
    """

    kind = "base"
    OPTIONS = BASE_OPTIONS
    reads_object_spans = False  # a frontend (frontend.py) also takes each unit's size-class span length

    def __init__(self, process, *, release_advice: str = BASE_OPTIONS["release_advice"].default,
                 hugepage_advice: str = BASE_OPTIONS["hugepage_advice"].default,
                 collapse: str = BASE_OPTIONS["collapse"].default,
                 clock: Callable[[], float] | None = None) -> None:
        self.process = process
        self.release_advice = parse_choice(ReleaseAdvice, release_advice, "release_advice")
        self.hugepage_advice = parse_choice(HugepageAdvice, hugepage_advice, "hugepage_advice")
        self.collapse = parse_choice(Collapse, collapse, "collapse")
        self.undo_lazyfree = self.release_advice is ReleaseAdvice.FREE_UNDO
        self._clock = clock
        self.now_s = 0.0
        self._last_background_s: float | None = None
        self._init_pages()
        self._spans = SpanTable()                         # heap spans: id -> start page, pages, bytes
        self._direct: dict[int, tuple[object, int]] = {}  # span id -> (region, bytes) for own mappings
        self._direct_bytes = 0
        self._requested_bytes = 0
        self._calls: Counter[MADV] = Counter()
        self._refused: set[MADV] = set()
        self._undo_lost_pages = 0
        self.reused_released_pages = 0  # cumulative released/lazyfree/queued pages handed out again
        # Frontend hook (frontend.py): maps the placed spans to the page runs the application writes; None
        # means every page of every span (a dense heap).
        self.written_runs: Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]] | None = None

    # ----------------------------------------------------------------------------------- heap VMAs

    def now(self) -> float:
        """Simulated seconds from the clock given at construction, else the last background tick."""
        return self._clock() if self._clock is not None else self.now_s

    def _map_heap(self, npages: int) -> int:
        """mmap a new heap VMA of at least ``npages`` (rounded to 2 MiB); returns its first page index."""
        npages = -(-npages // HPAGE_PAGES) * HPAGE_PAGES
        advice = _VMA_ADVICE[self.hugepage_advice]
        if advice is None:
            region = self.process.mmap(npages * PAGE_SIZE)
        else:
            region = self.process.mmap(npages * PAGE_SIZE, advice=advice)
            self._calls[advice] += 1
        return self._add_vma(region, npages)

    def _grow_heap(self, need_pages: int) -> int:
        """Map heap space for at least ``need_pages`` more pages (geometric growth); returns its start."""
        return self._map_heap(max(need_pages, GROW_MIN_PAGES, self._mapped_pages))

    # ----------------------------------------------------------------------------------- syscalls

    def _touch(self, starts: np.ndarray, lengths: np.ndarray) -> float:
        """The application writes the pages [start, start+length) of each range."""
        if not len(starts):
            return 0.0
        return self.process.touch_batch(self._per_region(starts, lengths))

    def _madvise(self, starts: list[int], lengths: list[int], advice: MADV) -> float:
        """madvise every range with ``advice``; counts one call per range."""
        if not starts:
            return 0.0
        batch = self._per_region(starts, lengths)
        if advice is not MADV.FREE_UNDO:   # FREE_UNDO reports lost pages per call: one call per VMA
            seconds = self.process.madvise_batch(batch, advice)
            self._calls[advice] += len(batch.offsets)
            return seconds
        seconds = 0.0
        for r, off, ln in batch:
            seconds += self.process.madvise_many(r, off, ln, advice)
            self._calls[advice] += len(off)
            self._undo_lost_pages += int(np.sum(self.process.undo_lost_pages))
        return seconds

    def _try_madvise(self, starts: list[int], lengths: list[int], advice: MADV) -> float | None:
        """madvise, or None when the kernel refuses ``advice`` with EINVAL (remembered from then on)."""
        if advice in self._refused:
            return None
        try:
            return self._madvise(starts, lengths, advice)
        except KernelError as err:
            if err.errno != "EINVAL":
                raise
            self._refused.add(advice)
            return None

    # ----------------------------------------------------------------------------------- release

    def _release_pages(self, starts: list[int], lengths: list[int], from_states: tuple[int, ...],
                       advice: ReleaseAdvice | None = None) -> float:
        """Release the page runs ``starts``/``lengths`` (already chosen, all free, all in ``from_states``)
        with ``advice`` (default: the configured one).

        The real allocators try the configured advice and fall back to MADV_DONTNEED when the kernel
        answers EINVAL (tcmalloc's SystemRelease, jemalloc's pages_purge_lazy -> pages_purge_forced).
        """
        advice = self.release_advice if advice is None else advice
        if not starts or advice is ReleaseAdvice.NONE:
            return 0.0
        madv, target = _RELEASE_CALL[advice]
        seconds = self._try_madvise(starts, lengths, madv)
        if seconds is None:
            madv, target = _RELEASE_CALL[ReleaseAdvice.DONTNEED]
            seconds = self._madvise(starts, lengths, madv)
        if len(from_states) == 1:
            self._move(starts, lengths, from_states[0], target)
        else:
            self._transition(starts, lengths, target)
        return seconds

    def release_ranges(self, starts: Sequence[int], lengths: Sequence[int],
                       from_states: tuple[PageState, ...] = (PageState.FREE_BACKED,),
                       advice: ReleaseAdvice | None = None) -> tuple[int, float]:
        """Release the pages of the given free ranges that are in ``from_states``: (pages, seconds)."""
        from_states = tuple(from_states)
        run_starts, run_lengths = runs_in_states(self._state, self._vhp_counts, starts, lengths, from_states)
        if not run_starts:
            return 0, 0.0
        return sum(run_lengths), self._release_pages(run_starts, run_lengths, from_states, advice)

    # ----------------------------------------------------------------------------------- hand out

    def _reuse_calls(self, runs: Runs, moved: list[int]) -> float:
        """UNSPLITTABLE on queued pages, FREE_UNDO on lazyfree pages (free_undo mode) before the write."""
        seconds = 0.0
        if moved[PageState.QUEUED]:
            seconds += self._madvise(*runs_with(runs, (PageState.QUEUED,)), MADV.UNSPLITTABLE)
        if self.undo_lazyfree and moved[PageState.LAZYFREE]:
            spent = self._try_madvise(*runs_with(runs, (PageState.LAZYFREE,)), MADV.FREE_UNDO)
            seconds += spent or 0.0
        return seconds

    def _maybe_collapse(self, runs: Runs, reused_pages: int) -> float:
        """MADV_COLLAPSE the hugepages in which released memory was reused and nothing released is left."""
        if self.collapse is Collapse.OFF or not reused_pages or MADV.COLLAPSE in self._refused:
            return 0.0
        vhps = np.unique(runs.starts[np.isin(runs.old, REUSED)] >> VHP_SHIFT)
        vhps = vhps[~self._vhp_counts[vhps][:, list(HOLES)].any(axis=1)].tolist()
        if not vhps:
            return 0.0
        try:
            spent = self._try_madvise([v * HPAGE_PAGES for v in vhps], [HPAGE_PAGES] * len(vhps),
                                      MADV.COLLAPSE)
        except KernelError as err:  # ENOMEM: no free pageblock; like tcmalloc, carry on without the THP
            if err.errno != "ENOMEM":
                raise
            spent = 0.0
        return spent or 0.0

    def _hand_out(self, starts: np.ndarray, npages: np.ndarray) -> float:
        """Mark the placed spans in use, make reuse calls, and let the application write them."""
        moved, runs = self._transition(starts, npages, PageState.IN_USE)
        assert moved[PageState.IN_USE] == moved[PageState.UNMAPPED] == 0, "double allocation"
        reused = moved[PageState.RELEASED] + moved[PageState.LAZYFREE] + moved[PageState.QUEUED]
        self.reused_released_pages += reused
        seconds = self._reuse_calls(runs, moved)
        # ---- frontend hook: only the pages the span's live objects occupy are written (frontend.py)
        written = (starts, npages) if self.written_runs is None else self.written_runs(starts, npages)
        seconds += self._touch(*written)
        return seconds + self._maybe_collapse(runs, reused)

    # ----------------------------------------------------------------------------------- public API

    def alloc(self, span_ids: np.ndarray, span_bytes: np.ndarray) -> float:
        """Allocate a batch of spans (bytes, multiples of 4 KiB); the app writes them. Returns seconds."""
        ids = np.asarray(span_ids, dtype=np.int64)
        nbytes = np.asarray(span_bytes, dtype=np.int64)
        if ids.shape != nbytes.shape:
            raise ValueError("span_ids and span_bytes must have the same length")
        if len(ids) == 0:
            return 0.0
        if not ((nbytes > 0) & (nbytes % PAGE_SIZE == 0)).all():
            raise ValueError("span_bytes must be positive multiples of 4096")
        check_new_ids(self._spans.contains(ids), self._direct, ids)
        seconds = self._on_alloc_batch()
        direct = self._direct_mask(nbytes)
        if direct is not None and direct.any():
            seconds += self._alloc_direct(ids[direct], nbytes[direct])
            ids, nbytes = ids[~direct], nbytes[~direct]
        npages = self._round_pages(nbytes // PAGE_SIZE)
        starts = self._place_batch(npages)
        self._spans.add(ids, starts, npages, nbytes)
        self._requested_bytes += int(nbytes.sum())
        return seconds + (self._hand_out(starts, npages) if len(starts) else 0.0)

    def free(self, span_ids: np.ndarray) -> float:
        """Free a batch of spans; the memory stays in the allocator until it releases. Returns seconds."""
        ids = np.asarray(span_ids, dtype=np.int64)
        if len(ids) == 0:
            return 0.0
        direct_ids = []
        if self._direct:
            id_list = ids.tolist()
            direct_ids = [sid for sid in id_list if sid in self._direct]
            check_distinct(direct_ids)
            if direct_ids:
                ids = np.array([sid for sid in id_list if sid not in self._direct], dtype=np.int64)
        rows, live = self._spans.find(ids)
        bad = self._spans.first_not_live(rows, live)
        if bad >= 0:
            raise ValueError(f"span id {int(ids[bad])} is not allocated")
        seconds = sum(self._free_direct(sid) for sid in direct_ids)
        if len(ids):
            starts, npages, nbytes = self._spans.take(rows)
            self._requested_bytes -= int(nbytes.sum())
            self._move(starts, npages, PageState.IN_USE, PageState.FREE_BACKED)
            self._unplace_batch(starts, npages)
        return seconds + self._on_free_batch()

    def access(self, span_ids: np.ndarray) -> float:
        """The application reads these live spans: the kernel marks them recently used (swap-in if needed)."""
        starts, npages = self._spans.lookup(np.asarray(span_ids, dtype=np.int64))
        if len(starts) == 0:
            return 0.0
        order = np.argsort(starts, kind="stable")
        return self.process.access_batch(self._per_region(starts[order], npages[order]))

    def background(self, now_s: float) -> float:
        """The allocator's background thread tick (called every second). Returns seconds spent."""
        dt_s = 0.0 if self._last_background_s is None else max(0.0, now_s - self._last_background_s)
        self._last_background_s = now_s
        self.now_s = now_s
        return self._background(now_s, dt_s)

    @property
    def in_use_bytes(self) -> int:
        """Bytes handed to the application (stats().in_use_bytes, without building the rest)."""
        return self._totals[PageState.IN_USE] * PAGE_SIZE + self._direct_bytes

    @property
    def free_backed_bytes(self) -> int:
        """Free bytes the allocator still holds resident (stats().free_backed_bytes)."""
        return self._totals[PageState.FREE_BACKED] * PAGE_SIZE

    def stats(self) -> AllocatorStats:
        """The allocator's view of its heap."""
        t = self._totals
        return AllocatorStats(
            in_use_bytes=self.in_use_bytes,
            free_backed_bytes=self.free_backed_bytes,
            released_bytes=(t[PageState.RELEASED] + t[PageState.FRESH]) * PAGE_SIZE,
            lazyfree_bytes=t[PageState.LAZYFREE] * PAGE_SIZE,
            queued_bytes=t[PageState.QUEUED] * PAGE_SIZE,
            mapped_bytes=self._mapped_pages * PAGE_SIZE + self._direct_bytes,
            requested_bytes=self._requested_bytes,
            untouched_bytes=t[PageState.FRESH] * PAGE_SIZE,
            hugepage_share=self._hugepage_share(),
            madvise_calls=sum(self._calls.values()),
            madvise_calls_by_advice={a.name: c for a, c in sorted(self._calls.items())},
            undo_lost_pages=self._undo_lost_pages,
            fallbacks=tuple(sorted(a.name for a in self._refused)),
        )

    # ----------------------------------------------------------------------------------- direct mappings

    def _alloc_direct(self, ids: np.ndarray, nbytes: np.ndarray) -> float:
        """Give each span its own mmap (glibc's mmapped chunks); the app writes it."""
        seconds = 0.0
        for sid, b in zip(ids.tolist(), nbytes.tolist(), strict=True):
            region = self.process.mmap(b)
            seconds += self.process.touch(region, 0, b)
            self._direct[sid] = (region, b)
            self._direct_bytes += b
            self._requested_bytes += b
        return seconds

    def _free_direct(self, sid: int) -> float:
        region, b = self._direct.pop(sid)
        self._direct_bytes -= b
        self._requested_bytes -= b
        spent = self.process.munmap(region)
        self._on_direct_free(b)
        return float(spent or 0.0)

    # ----------------------------------------------------------------------------------- hooks

    def _round_pages(self, npages: np.ndarray) -> np.ndarray:
        """The allocator's page granularity applied to requested 4 KiB pages."""
        return npages

    def _direct_mask(self, nbytes: np.ndarray) -> np.ndarray | None:
        """Which spans get their own mapping instead of heap space (None: none)."""
        return None

    def _on_direct_free(self, nbytes: int) -> None:
        """Called after a directly mapped span was unmapped."""

    def _place_batch(self, npages: np.ndarray) -> np.ndarray:
        """Place a batch of spans in order (sizes in 4 KiB pages); returns their first page indices.

        The reference is one ``_place`` per span; a model overrides this with one compiled call per batch.
        """
        place = self._place
        return np.array([place(n) for n in npages.tolist()], dtype=np.int64)

    def _unplace_batch(self, starts: np.ndarray, npages: np.ndarray) -> None:
        """Take a batch of freed spans back in order (one ``_unplace`` each unless overridden)."""
        unplace = self._unplace
        for start, n in zip(starts.tolist(), npages.tolist(), strict=True):
            unplace(start, n)

    def _place(self, npages: int) -> int:
        """Choose free heap space for a span of ``npages`` 4 KiB pages; returns its first page index."""
        raise NotImplementedError

    def _unplace(self, start: int, npages: int) -> None:
        """Take a freed span back into the allocator's free structures (pages are already free)."""
        raise NotImplementedError

    def _on_alloc_batch(self) -> float:
        """Work done at the start of every allocation batch (e.g. jemalloc's decay ticks)."""
        return 0.0

    def _on_free_batch(self) -> float:
        """Work done at the end of every free batch (e.g. glibc's top trim)."""
        return 0.0

    def _background(self, now_s: float, dt_s: float) -> float:
        """The background thread's release work."""
        return 0.0

