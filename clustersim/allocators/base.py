"""HeapAllocator: the bookkeeping every allocator model shares, and its syscall boundary.

An allocator owns a process's heap VMAs. Each model (tcmalloc's legacy page heap, Temeraire, jemalloc,
glibc) only decides *where* a span goes and *which* free memory to hand back; this base class, like SimPy's
``BaseResource`` with its ``_do_put``/``_do_get`` hooks, does the rest:

- the heap's address space as one allocator page index space stitched from the VMAs it mmapped;
- one state per 4 KiB heap page (in use, free and backed, released, lazyfree, queued by MADV_SPLITTABLE,
  never touched) with per-vhp (2 MiB slot) counts, in numpy arrays: ranges.py changes them a batch at a time
  in compiled loops, statistics and placement policies read them, and nothing walks pages in Python;
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
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import IntEnum, StrEnum

import numpy as np

from clustersim.kernel.errors import KernelError
from clustersim.kernel.mman import MADV
from clustersim.kernel.task import RangeBatch
from clustersim.units import HPAGE_PAGES, PAGE_SIZE

from .ranges import (
    VHP_SHIFT,
    Runs,
    as_pages,
    count_in,
    move,
    runs_in_states,
    runs_with,
    split_by_vma,
    transition,
)
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
_REUSED = (PageState.RELEASED, PageState.LAZYFREE, PageState.QUEUED)   # free, not backed by the allocator
_HOLES = (*_REUSED, PageState.FRESH)                                  # what keeps a vhp from being whole


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
        # One state byte per page and a count per (vhp, state): ranges.py's compiled loops change both,
        # statistics and placement policies read them.
        self._state = np.full(HPAGE_PAGES * 64, PageState.UNMAPPED, dtype=np.int8)
        self._vhp_counts = np.zeros((64, _NCOLS), dtype=np.int64)
        self._vhp_counts[:, PageState.UNMAPPED] = HPAGE_PAGES
        self._totals = [0] * _NCOLS
        self._top_page = 0
        self._mapped_pages = 0
        self._segments: list[_Segment] = []
        self._seg_bounds = np.empty((2, 0), dtype=np.int64)   # first and end page of each VMA, ascending

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
        self._mapped_pages += npages
        self._segments.append(_Segment(start, npages, region))
        self._seg_bounds = np.append(self._seg_bounds, [[start], [start + npages]], axis=1)
        return start

    def _grow_heap(self, need_pages: int) -> int:
        """Map heap space for at least ``need_pages`` more pages (geometric growth); returns its start."""
        return self._map_heap(max(need_pages, GROW_MIN_PAGES, self._mapped_pages))

    def _transition(self, starts: Sequence[int], lengths: Sequence[int],
                    new_state: int) -> tuple[list[int], Runs]:
        """Move the pages of the ranges to ``new_state``, keeping per-vhp and total counts; returns how many
        pages left each state and the runs (start, pages, old state) they came from, in range order."""
        moved, runs = transition(self._state, self._vhp_counts, starts, lengths, new_state)
        totals = self._totals
        for st, k in enumerate(moved):
            totals[st] -= k
        totals[new_state] += sum(moved)
        return moved, runs

    def _move(self, starts: Sequence[int], lengths: Sequence[int], old_state: int, new_state: int) -> None:
        """``_transition`` for ranges whose pages are all in ``old_state``."""
        n = move(self._state, self._vhp_counts, starts, lengths, old_state, new_state)
        self._totals[old_state] -= n
        self._totals[new_state] += n

    def free_backed_in(self, starts: Sequence[int], lengths: Sequence[int]) -> list[int]:
        """Free-and-backed pages in each range [starts[i], starts[i] + lengths[i]).

        The whole 2 MiB slots a range covers are read from the per-vhp counts; only its ragged ends are read
        page by page, so a long free range costs little more than a short one.
        """
        return count_in(self._state, self._vhp_counts, starts, lengths, PageState.FREE_BACKED)

    def pages_in(self, state: PageState) -> int:
        """Heap pages currently in ``state``."""
        return self._totals[state]

    def vhp_counts(self, state: PageState) -> np.ndarray:
        """Per-vhp page counts in ``state`` (a view; do not modify)."""
        return self._vhp_counts[: self.nvhp, state]

    # ----------------------------------------------------------------------------------- syscalls

    def _per_region(self, starts, lengths) -> RangeBatch:
        """Split page ranges by VMA into byte offsets and lengths per region, VMAs in address order. A range
        over a VMA boundary is cut into one piece per VMA, listed after the ranges that fit whole, as the
        kernel would see separate calls."""
        vmas, off, ln, counts = split_by_vma(as_pages(starts), as_pages(lengths), self._seg_bounds)
        segments = self._segments
        return RangeBatch([segments[k].region for k in vmas.tolist()], off, ln, counts.tolist())

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
        vhps = np.unique(runs.starts[np.isin(runs.old, _REUSED)] >> VHP_SHIFT)
        vhps = vhps[~self._vhp_counts[vhps][:, list(_HOLES)].any(axis=1)].tolist()
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
        seconds += self._touch(starts, npages)
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
        id_list, byte_list = ids.tolist(), nbytes.tolist()
        if not all(b > 0 and b % PAGE_SIZE == 0 for b in byte_list):
            raise ValueError("span_bytes must be positive multiples of 4096")
        self._check_new_ids(ids, id_list)
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
        return seconds + (self._hand_out(starts, npages) if len(starts) else 0.0)

    def _check_new_ids(self, ids: np.ndarray, id_list: list[int]) -> None:
        """A ValueError names the first id that is live already or repeated within the batch."""
        live = self._spans.contains(ids)
        if not self._direct and not live.any() and len(set(id_list)) == len(id_list):
            return   # the common case, checked without a Python step per id
        live = live.tolist()
        direct, seen = self._direct, set()
        for sid, is_live in zip(id_list, live, strict=True):
            if is_live or sid in direct or sid in seen:
                raise ValueError(f"span id {sid} is already allocated")
            seen.add(sid)

    def free(self, span_ids: np.ndarray) -> float:
        """Free a batch of spans; the memory stays in the allocator until it releases. Returns seconds."""
        ids = np.asarray(span_ids, dtype=np.int64)
        if len(ids) == 0:
            return 0.0
        id_list = ids.tolist()
        direct_ids = []
        if self._direct:
            direct_ids = [sid for sid in id_list if sid in self._direct]
            _check_distinct(direct_ids)
            if direct_ids:
                id_list = [sid for sid in id_list if sid not in self._direct]
                ids = np.array(id_list, dtype=np.int64)
        rows, live = self._spans.find(ids)
        _check_live_ids(id_list, live.tolist())
        seconds = sum(self._free_direct(sid) for sid in direct_ids)
        if id_list:
            starts, npages, nbytes = self._spans.take(rows)
            self._requested_bytes -= int(nbytes.sum())
            self._move(starts, npages, PageState.IN_USE, PageState.FREE_BACKED)
            unplace = self._unplace
            for start, n in zip(starts.tolist(), npages.tolist(), strict=True):
                unplace(start, n)
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

    def _hugepage_share(self) -> float:
        """Resident heap in vhps with nothing released or untouched, over all resident heap.

        Every vhp below the top is mapped, so its resident and hole pages add up to a whole vhp: a vhp with
        no holes is one whose resident count is HPAGE_PAGES, and holds exactly that many resident pages.
        """
        t = self._totals
        total = t[PageState.IN_USE] + t[PageState.FREE_BACKED] + t[PageState.QUEUED]
        if total == 0:
            return 0.0
        c = self._vhp_counts[: self.nvhp]
        resident = c[:, PageState.IN_USE] + c[:, PageState.FREE_BACKED]
        resident += c[:, PageState.QUEUED]
        return float(np.count_nonzero(resident == HPAGE_PAGES) * HPAGE_PAGES) / total

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



def _check_live_ids(ids: list[int], live: list[bool]) -> None:
    """A ValueError names the first id that is not a live heap span (or is freed twice in the batch)."""
    if all(live) and len(set(ids)) == len(ids):
        return
    seen = set()
    for sid, is_live in zip(ids, live, strict=True):
        if not is_live or sid in seen:
            raise ValueError(f"span id {sid} is not allocated")
        seen.add(sid)


def _check_distinct(ids: list[int]) -> None:
    """A ValueError names the first id that occurs twice in ``ids``."""
    seen = set()
    for sid in ids:
        if sid in seen:
            raise ValueError(f"span id {sid} is not allocated")
        seen.add(sid)
