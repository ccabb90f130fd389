"""HeapAllocator: the bookkeeping every allocator model shares, and its syscall boundary.

An allocator owns a process's heap VMAs. Each model (tcmalloc's legacy page heap, Temeraire, jemalloc,
glibc) only decides *where* a span goes and *which* free memory to hand back; this base class, like SimPy's
``BaseResource`` with its ``_do_put``/``_do_get`` hooks, does the rest:

- the heap's address space as one allocator page index space stitched from the VMAs it mmapped;
- one state per 4 KiB heap page (in use, free and backed, released, lazyfree, queued by MADV_SPLITTABLE,
  never touched) with per-vhp (2 MiB slot) counts kept in numpy, so placement policies and statistics never
  walk pages in Python;
- the syscalls: the app writes every page it is handed (``touch_many``), the configured release advice with
  its matching reuse call (UNSPLITTABLE, FREE_UNDO), MADV_COLLAPSE after reuse, and the fallback to
  MADV_DONTNEED when the kernel answers EINVAL, as tcmalloc and jemalloc do.

What the allocator believes is not what the kernel did: a lazyfree page may have been discarded by reclaim,
a DONTNEED'd range may have been re-collapsed by khugepaged. ``stats()`` reports the allocator's view; the
kernel's smaps and memory.stat report the truth.

Left out: per-CPU/thread caches and size-class slabs (spans arrive already page-sized), metadata memory,
and the cost of the allocator's own code.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import IntEnum, StrEnum

import numpy as np

from clustersim.kernel.errors import KernelError
from clustersim.kernel.mman import MADV
from clustersim.units import HPAGE_PAGES, PAGE_SIZE

from .ranges import EMPTY, expand_ranges, merge_adjacent, runs_of, uniform_runs
from .span_table import SpanTable


class PageState(IntEnum):
    """The allocator's belief about one 4 KiB page of its heap."""

    IN_USE = 0        # handed to the application
    FREE_BACKED = 1   # free inside the allocator, still resident (fragmentation slack)
    RELEASED = 2      # free and returned with MADV_DONTNEED: the next touch faults
    LAZYFREE = 3      # free and returned with MADV_FREE: a plain touch reuses it unless reclaim took it
    QUEUED = 4        # free and returned with MADV_SPLITTABLE: needs MADV_UNSPLITTABLE before reuse
    FRESH = 5         # mapped but never touched (counted as released: nothing backs it)
    UNMAPPED = 6      # outside any VMA (holes in the page index space)


# Heap VMAs grow geometrically (at least this much, and at least the heap mapped so far), as jemalloc's
# exp_grow and tcmalloc's HugeAllocator do, so a heap of any size holds O(log size) VMAs and each batch of
# syscalls touches few of them. Untouched address space costs nothing but page-table bookkeeping.
GROW_MIN_PAGES = 16 * HPAGE_PAGES
_NCOLS = 8  # columns of the per-vhp count matrix; 7 states padded to 8
_NOT_BACKED = (PageState.RELEASED, PageState.FRESH)


class ReleaseAdvice(StrEnum):
    """How an allocator hands free memory back, and what it must do before reusing it."""

    DONTNEED = "dontneed"      # MADV_DONTNEED; reuse needs nothing (the touch faults)
    FREE = "free"              # MADV_FREE; reuse is a plain write
    SPLITTABLE = "splittable"  # MADV_SPLITTABLE; MADV_UNSPLITTABLE before reuse (proposal madv_splittable)
    FREE_UNDO = "free_undo"    # MADV_FREE; MADV_FREE_UNDO before reuse (proposal madv_free_undo)
    NONE = "none"              # never release


class HugepageAdvice(StrEnum):
    """THP advice put on each heap VMA when it is mapped."""

    NONE = "none"
    HUGEPAGE = "hugepage"
    NOHUGEPAGE = "nohugepage"


class Switch(StrEnum):
    """An on/off behaviour switch, spelled as a named option (booleans are accepted too)."""

    ON = "on"
    OFF = "off"


class Collapse(StrEnum):
    """Whether to MADV_COLLAPSE a hugepage once released memory in it is in use again (Linux 6.1+)."""

    OFF = "off"
    AFTER_REUSE = "after_reuse"


# advice -> (madvise used to release, state the pages enter)
_RELEASE_CALL = {
    ReleaseAdvice.DONTNEED: (MADV.DONTNEED, PageState.RELEASED),
    ReleaseAdvice.FREE: (MADV.FREE, PageState.LAZYFREE),
    ReleaseAdvice.SPLITTABLE: (MADV.SPLITTABLE, PageState.QUEUED),
    ReleaseAdvice.FREE_UNDO: (MADV.FREE, PageState.LAZYFREE),
}
_VMA_ADVICE = {HugepageAdvice.NONE: None, HugepageAdvice.HUGEPAGE: MADV.HUGEPAGE,
               HugepageAdvice.NOHUGEPAGE: MADV.NOHUGEPAGE}


def parse_choice(enum: type[StrEnum], value: object, name: str) -> StrEnum:
    """``value`` as a member of ``enum``; a ValueError names the option and what is allowed."""
    try:
        return enum(value)
    except ValueError:
        allowed = ", ".join(repr(m.value) for m in enum)
        raise ValueError(f"{name}={value!r} is not allowed; allowed: {allowed}") from None


def parse_switch(value: object, name: str) -> bool:
    """True for ``"on"``/True, False for ``"off"``/False; a ValueError names the option otherwise."""
    if isinstance(value, bool):
        return value
    return parse_choice(Switch, value, name) is Switch.ON


def check_non_negative(value: float, name: str) -> float:
    """``value`` if it is a finite number >= 0; a ValueError names the parameter and the bound."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
        raise ValueError(f"{name}={value!r} must be a number >= 0")
    return value


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


@dataclass
class _Segment:
    start_page: int
    npages: int
    region: object


class HeapAllocator:
    """Shared heap bookkeeping; subclasses implement ``_place``, ``_unplace`` and ``_background``.

    Args:
        process: the kernel process handle (mmap, touch_many, madvise_many, munmap, undo_lost_pages).
        release_advice: a ``ReleaseAdvice`` value.
        hugepage_advice: a ``HugepageAdvice`` value put on every heap VMA.
        collapse: a ``Collapse`` value.
        clock: returns simulated seconds; defaults to the time of the last ``background`` call.
    """

    kind = "base"

    def __init__(self, process, *, release_advice: str = "dontneed", hugepage_advice: str = "none",
                 collapse: str = "off", clock: Callable[[], float] | None = None) -> None:
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

    # ----------------------------------------------------------------------------------- page space

    def _init_pages(self) -> None:
        self._state = np.full(HPAGE_PAGES * 64, PageState.UNMAPPED, dtype=np.int8)
        self._vhp_counts = np.zeros((64, _NCOLS), dtype=np.int64)
        self._vhp_counts[:, PageState.UNMAPPED] = HPAGE_PAGES
        self._totals = np.zeros(_NCOLS, dtype=np.int64)
        self._top_page = 0
        self._segments: list[_Segment] = []
        self._seg_starts = EMPTY
        self._seg_ends = EMPTY

    @property
    def nvhp(self) -> int:
        """vhps in the page index space (mapped or not)."""
        return self._top_page // HPAGE_PAGES

    def now(self) -> float:
        """Simulated seconds from the clock given at construction, else the last background tick."""
        return self._clock() if self._clock is not None else self.now_s

    def _ensure_capacity(self, npages: int) -> None:
        cap = len(self._state)
        if npages <= cap:
            return
        new_cap = max(npages, 2 * cap)
        state = np.full(new_cap, PageState.UNMAPPED, dtype=np.int8)
        state[:cap] = self._state
        counts = np.zeros((new_cap // HPAGE_PAGES, _NCOLS), dtype=np.int64)
        counts[:, PageState.UNMAPPED] = HPAGE_PAGES
        counts[: len(self._vhp_counts)] = self._vhp_counts
        self._state, self._vhp_counts = state, counts

    def _map_heap(self, npages: int) -> int:
        """mmap a new heap VMA of at least ``npages`` (rounded to 2 MiB); returns its first page index."""
        npages = -(-npages // HPAGE_PAGES) * HPAGE_PAGES
        advice = _VMA_ADVICE[self.hugepage_advice]
        if advice is None:
            region = self.process.mmap(npages * PAGE_SIZE)
        else:
            region = self.process.mmap(npages * PAGE_SIZE, advice=advice)
            self._calls[advice] += 1
        start = self._top_page
        self._ensure_capacity(start + npages)
        self._top_page = start + npages
        self._state[start:start + npages] = PageState.FRESH
        vhps = slice(start // HPAGE_PAGES, (start + npages) // HPAGE_PAGES)
        self._vhp_counts[vhps, PageState.UNMAPPED] = 0
        self._vhp_counts[vhps, PageState.FRESH] = HPAGE_PAGES
        self._totals[PageState.FRESH] += npages
        self._segments.append(_Segment(start, npages, region))
        self._seg_starts = np.array([s.start_page for s in self._segments], dtype=np.int64)
        self._seg_ends = self._seg_starts + np.array([s.npages for s in self._segments], dtype=np.int64)
        return start

    def _grow_heap(self, need_pages: int) -> int:
        """Map heap space for at least ``need_pages`` more pages (geometric growth); returns its start."""
        mapped = sum(s.npages for s in self._segments)
        return self._map_heap(max(need_pages, GROW_MIN_PAGES, mapped))

    def _transition(self, pages: np.ndarray, lengths: np.ndarray,
                    new_state: int) -> tuple[np.ndarray, np.ndarray]:
        """Move ``pages`` (ranges of ``lengths`` pages, expanded) to ``new_state``, keeping per-vhp and total
        counts; returns their old states and how many pages left each state.

        The counts move per run of pages sharing an old state and a vhp (np.add.at): a batch of spans
        costs a few passes over its page indices plus work per span, and only the vhps it touches are
        updated, not a bincount over the whole heap.
        """
        old = self._state[pages]
        if len(pages) == 0:
            return old, np.zeros(_NCOLS, dtype=np.int64)
        starts, npages, was = uniform_runs(pages, lengths, old)
        vhp = starts >> 9
        np.subtract.at(self._vhp_counts, (vhp, was), npages)
        np.add.at(self._vhp_counts[:, new_state], vhp, npages)
        moved = np.bincount(was, weights=npages, minlength=_NCOLS).astype(np.int64)
        self._totals -= moved
        self._totals[new_state] += len(pages)
        self._state[pages] = new_state
        return old, moved

    def free_backed_in(self, starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """Free-and-backed pages in each range [starts[i], starts[i] + lengths[i]).

        The whole 2 MiB slots a range covers are read from the per-vhp counts (a prefix sum over vhps); only
        its ragged ends are read page by page, so a long free range costs no more than a short one.
        """
        ends = starts + lengths
        full_lo = np.minimum(-(-starts // HPAGE_PAGES), ends // HPAGE_PAGES)
        full_hi = np.maximum(ends // HPAGE_PAGES, full_lo)
        cum = np.concatenate(([0], np.cumsum(self._vhp_counts[: self.nvhp, PageState.FREE_BACKED])))
        backed = cum[full_hi] - cum[full_lo]
        head_end = np.where(full_hi > full_lo, full_lo * HPAGE_PAGES, ends)
        tail_start = np.maximum(full_hi * HPAGE_PAGES, head_end)
        piece_starts = np.concatenate((starts, tail_start))
        piece_lengths = np.concatenate((head_end - starts, ends - tail_start))
        is_backed = self._state[expand_ranges(piece_starts, piece_lengths)] == PageState.FREE_BACKED
        upto = np.concatenate(([0], np.cumsum(is_backed)))[np.cumsum(piece_lengths)]
        per_piece = np.diff(upto, prepend=0)
        return backed + per_piece[: len(starts)] + per_piece[len(starts):]

    def pages_in(self, state: PageState) -> int:
        """Heap pages currently in ``state``."""
        return int(self._totals[state])

    def vhp_counts(self, state: PageState) -> np.ndarray:
        """Per-vhp page counts in ``state`` (a view; do not modify)."""
        return self._vhp_counts[: self.nvhp, state]

    # ----------------------------------------------------------------------------------- syscalls

    def _per_region(self, starts: np.ndarray, lengths: np.ndarray):
        """Split page ranges by VMA: yields (region, byte offsets, byte lengths)."""
        seg = np.searchsorted(self._seg_starts, starts, side="right") - 1
        ends = starts + lengths
        crossing = ends > self._seg_ends[seg]
        if crossing.any():
            starts, lengths, seg = self._split_crossing(starts, lengths, seg, crossing)
        first = int(seg[0])
        if (seg == first).all():
            s = self._segments[first]
            yield s.region, (starts - s.start_page) * PAGE_SIZE, lengths * PAGE_SIZE
            return
        for k in np.unique(seg).tolist():
            m = seg == k
            s = self._segments[k]
            yield s.region, (starts[m] - s.start_page) * PAGE_SIZE, lengths[m] * PAGE_SIZE

    def _split_crossing(self, starts, lengths, seg, crossing):
        """Cut the (rare) ranges that run over a VMA boundary into one piece per VMA."""
        out_s, out_l, out_k = [starts[~crossing]], [lengths[~crossing]], [seg[~crossing]]
        for a, n, k in zip(starts[crossing].tolist(), lengths[crossing].tolist(), seg[crossing].tolist(),
                           strict=True):
            end = a + n
            while a < end:
                piece = min(end, int(self._seg_ends[k])) - a
                out_s.append(np.array([a])), out_l.append(np.array([piece])), out_k.append(np.array([k]))
                a += piece
                k += 1
        return np.concatenate(out_s), np.concatenate(out_l), np.concatenate(out_k)

    def _touch(self, starts: np.ndarray, lengths: np.ndarray) -> float:
        """The application writes the pages [start, start+length) of each range."""
        if len(starts) == 0:
            return 0.0
        return self.process.touch_batch(list(self._per_region(starts, lengths)))

    def _madvise(self, starts: np.ndarray, lengths: np.ndarray, advice: MADV) -> float:
        """madvise every range with ``advice``; counts one call per range."""
        if len(starts) == 0:
            return 0.0
        batch = list(self._per_region(starts, lengths))
        if advice is not MADV.FREE_UNDO:   # FREE_UNDO reports lost pages per call: one call per VMA
            seconds = self.process.madvise_batch(batch, advice)
            self._calls[advice] += sum(len(off) for _, off, _ in batch)
            return seconds
        seconds = 0.0
        for r, off, ln in batch:
            seconds += self.process.madvise_many(r, off, ln, advice)
            self._calls[advice] += len(off)
            self._undo_lost_pages += int(np.sum(self.process.undo_lost_pages))
        return seconds

    def _try_madvise(self, starts: np.ndarray, lengths: np.ndarray, advice: MADV) -> float | None:
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

    def _release_pages(self, pages: np.ndarray, starts: np.ndarray, lengths: np.ndarray,
                       advice: ReleaseAdvice | None = None) -> float:
        """Release ``pages`` (already chosen, all free; ``starts``/``lengths`` are their runs) with
        ``advice`` (default: the configured one).

        The real allocators try the configured advice and fall back to MADV_DONTNEED when the kernel
        answers EINVAL (tcmalloc's SystemRelease, jemalloc's pages_purge_lazy -> pages_purge_forced).
        """
        advice = self.release_advice if advice is None else advice
        if len(pages) == 0 or advice is ReleaseAdvice.NONE:
            return 0.0
        madv, target = _RELEASE_CALL[advice]
        seconds = self._try_madvise(starts, lengths, madv)
        if seconds is None:
            madv, target = _RELEASE_CALL[ReleaseAdvice.DONTNEED]
            seconds = self._madvise(starts, lengths, madv)
        self._transition(pages, lengths, target)
        return seconds

    def release_ranges(self, starts: np.ndarray, lengths: np.ndarray,
                       from_states: tuple[PageState, ...] = (PageState.FREE_BACKED,),
                       advice: ReleaseAdvice | None = None) -> tuple[int, float]:
        """Release the pages of the given free ranges that are in ``from_states``: (pages, seconds)."""
        pages = expand_ranges(starts, lengths)
        if len(pages) == 0:
            return 0, 0.0
        st = self._state[pages]
        keep = st == from_states[0]
        for s in from_states[1:]:
            keep |= st == s
        if keep.all():
            starts, lengths = merge_adjacent(starts, lengths)
        else:
            pages = pages[keep]
            starts, lengths = runs_of(pages)
        return len(pages), self._release_pages(pages, starts, lengths, advice)

    # ----------------------------------------------------------------------------------- hand out

    def _reuse_calls(self, pages: np.ndarray, old: np.ndarray, moved: np.ndarray) -> float:
        """UNSPLITTABLE on queued pages, FREE_UNDO on lazyfree pages (free_undo mode) before the write."""
        seconds = 0.0
        if moved[PageState.QUEUED]:
            queued = pages[old == PageState.QUEUED]
            seconds += self._madvise(*runs_of(queued), MADV.UNSPLITTABLE)
        if self.undo_lazyfree and moved[PageState.LAZYFREE]:
            lazy = pages[old == PageState.LAZYFREE]
            if len(lazy):
                spent = self._try_madvise(*runs_of(lazy), MADV.FREE_UNDO)
                seconds += spent or 0.0
        return seconds

    def _maybe_collapse(self, pages: np.ndarray, old: np.ndarray, reused_pages: int) -> float:
        """MADV_COLLAPSE the hugepages in which released memory was reused and nothing released is left."""
        if self.collapse is Collapse.OFF or not reused_pages or MADV.COLLAPSE in self._refused:
            return 0.0
        reused = (old == PageState.RELEASED) | (old == PageState.LAZYFREE) | (old == PageState.QUEUED)
        vhps = np.unique(pages[reused] >> 9)
        c = self._vhp_counts[vhps]
        left = c[:, PageState.RELEASED] + c[:, PageState.LAZYFREE] + c[:, PageState.QUEUED]
        vhps = vhps[(left + c[:, PageState.FRESH]) == 0]
        if len(vhps) == 0:
            return 0.0
        try:
            spent = self._try_madvise(vhps * HPAGE_PAGES, np.full(len(vhps), HPAGE_PAGES), MADV.COLLAPSE)
        except KernelError as err:  # ENOMEM: no free pageblock; like tcmalloc, carry on without the THP
            if err.errno != "ENOMEM":
                raise
            spent = 0.0
        return spent or 0.0

    def _hand_out(self, starts: np.ndarray, npages: np.ndarray) -> float:
        """Mark the placed spans in use, make reuse calls, and let the application write them."""
        pages = expand_ranges(starts, npages)
        old, moved = self._transition(pages, npages, PageState.IN_USE)
        assert moved[PageState.IN_USE] == moved[PageState.UNMAPPED] == 0, "double allocation"
        reused = int(moved[PageState.RELEASED] + moved[PageState.LAZYFREE] + moved[PageState.QUEUED])
        self.reused_released_pages += reused
        seconds = self._reuse_calls(pages, old, moved)
        seconds += self._touch(starts, npages)
        return seconds + self._maybe_collapse(pages, old, reused)

    # ----------------------------------------------------------------------------------- public API

    def alloc(self, span_ids: np.ndarray, span_bytes: np.ndarray) -> float:
        """Allocate a batch of spans (bytes, multiples of 4 KiB); the app writes them. Returns seconds."""
        ids = np.asarray(span_ids, dtype=np.int64)
        nbytes = np.asarray(span_bytes, dtype=np.int64)
        if ids.shape != nbytes.shape:
            raise ValueError("span_ids and span_bytes must have the same length")
        if len(ids) == 0:
            return 0.0
        if (nbytes <= 0).any() or (nbytes % PAGE_SIZE).any():
            raise ValueError("span_bytes must be positive multiples of 4096")
        self._check_new_ids(ids)
        seconds = self._on_alloc_batch()
        direct = self._direct_mask(nbytes)
        if direct is not None and direct.any():
            seconds += self._alloc_direct(ids[direct], nbytes[direct])
            ids, nbytes = ids[~direct], nbytes[~direct]
        npages = self._round_pages(nbytes // PAGE_SIZE)
        place = self._place
        starts = np.array([place(n) for n in npages.tolist()], dtype=np.int64)
        self._spans.add(ids, starts, npages, nbytes)
        self._requested_bytes += int(nbytes.sum())
        return seconds + self._hand_out(starts, npages)

    def _check_new_ids(self, ids: np.ndarray) -> None:
        """A ValueError names the first id that is live already or repeated within the batch."""
        distinct = bool((ids[1:] > ids[:-1]).all()) or len(np.unique(ids)) == len(ids)
        live = self._spans.contains(ids)
        if self._direct:
            live |= np.fromiter((sid in self._direct for sid in ids.tolist()), dtype=bool, count=len(ids))
        if not distinct:
            live |= _repeats(ids)
        if live.any():
            raise ValueError(f"span id {ids[live][0]} is already allocated")

    def free(self, span_ids: np.ndarray) -> float:
        """Free a batch of spans; the memory stays in the allocator until it releases. Returns seconds."""
        ids = np.asarray(span_ids, dtype=np.int64)
        if len(ids) == 0:
            return 0.0
        direct_ids = []
        if self._direct:
            direct = np.fromiter((sid in self._direct for sid in ids.tolist()), dtype=bool, count=len(ids))
            if len(set(ids[direct].tolist())) != np.count_nonzero(direct):
                raise ValueError(f"span id {ids[direct][_repeats(ids[direct])][0]} is not allocated")
            direct_ids, ids = ids[direct].tolist(), ids[~direct]
        self._check_live_ids(ids)
        seconds = sum(self._free_direct(sid) for sid in direct_ids)
        if len(ids):
            starts, npages, nbytes = self._spans.pop(ids)
            self._requested_bytes -= int(nbytes.sum())
            self._transition(expand_ranges(starts, npages), npages, PageState.FREE_BACKED)
            unplace = self._unplace
            for start, n in zip(starts.tolist(), npages.tolist(), strict=True):
                unplace(start, n)
        return seconds + self._on_free_batch()

    def _check_live_ids(self, ids: np.ndarray) -> None:
        """A ValueError names the first id that is not a live heap span (or is freed twice in the batch)."""
        dead = ~self._spans.contains(ids)
        if len(np.unique(ids)) != len(ids):
            dead |= _repeats(ids)
        if dead.any():
            raise ValueError(f"span id {ids[dead][0]} is not allocated")

    def access(self, span_ids: np.ndarray) -> float:
        """The application reads these live spans: the kernel marks them recently used (swap-in if needed)."""
        starts, npages = self._spans.lookup(np.asarray(span_ids, dtype=np.int64))
        if len(starts) == 0:
            return 0.0
        order = np.argsort(starts, kind="stable")
        return self.process.access_batch(list(self._per_region(starts[order], npages[order])))

    def background(self, now_s: float) -> float:
        """The allocator's background thread tick (called every second). Returns seconds spent."""
        dt_s = 0.0 if self._last_background_s is None else max(0.0, now_s - self._last_background_s)
        self._last_background_s = now_s
        self.now_s = now_s
        return self._background(now_s, dt_s)

    def stats(self) -> AllocatorStats:
        """The allocator's view of its heap."""
        t = self._totals * PAGE_SIZE
        released = int(t[PageState.RELEASED] + t[PageState.FRESH])
        return AllocatorStats(
            in_use_bytes=int(t[PageState.IN_USE]) + self._direct_bytes,
            free_backed_bytes=int(t[PageState.FREE_BACKED]),
            released_bytes=released,
            lazyfree_bytes=int(t[PageState.LAZYFREE]),
            queued_bytes=int(t[PageState.QUEUED]),
            mapped_bytes=int(sum(s.npages for s in self._segments)) * PAGE_SIZE + self._direct_bytes,
            requested_bytes=self._requested_bytes,
            untouched_bytes=int(t[PageState.FRESH]),
            hugepage_share=self._hugepage_share(),
            madvise_calls=sum(self._calls.values()),
            madvise_calls_by_advice={a.name: c for a, c in sorted(self._calls.items())},
            undo_lost_pages=self._undo_lost_pages,
            fallbacks=tuple(sorted(a.name for a in self._refused)),
        )

    def _hugepage_share(self) -> float:
        """Resident heap in vhps with nothing released or untouched, over all resident heap."""
        c = self._vhp_counts[: self.nvhp]
        resident = c[:, PageState.IN_USE] + c[:, PageState.FREE_BACKED] + c[:, PageState.QUEUED]
        holes = c[:, PageState.RELEASED] + c[:, PageState.FRESH] + c[:, PageState.LAZYFREE]
        total = int(resident.sum())
        if total == 0:
            return 0.0
        return float(resident[holes == 0].sum()) / total

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


def _repeats(ids: np.ndarray) -> np.ndarray:
    """Mask of the ids that occur earlier in ``ids`` too."""
    _, first = np.unique(ids, return_index=True)
    mask = np.ones(len(ids), dtype=bool)
    mask[first] = False
    return mask
