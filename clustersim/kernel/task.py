"""A process (task and its mm) and its mappings: the syscall surface of clustersim's kernel.

Each method is one system call or observation file; the work is done by the mechanism modules. Offsets and
lengths take bytes or size strings. madvise needs a page-aligned offset (EINVAL otherwise) and rounds the
length up to pages, as Linux does; a range outside the mapping is ENOMEM.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

import numpy as np

from ..jit import njit
from ..units import HPAGE_PAGES, PAGE_SIZE
from . import fault, khugepaged, madvise
from .errors import KernelError, size_arg
from .filemap import read_file
from .memory import lru_add
from .mman import MADV
from .pagetable import ADV_HUGEPAGE, ADV_NOHUGEPAGE, HOLDS_DATA, LAZY, SWAP, uniq_rows
from .vma import RangeBatch, Region, map_region, unmap_region

if TYPE_CHECKING:
    from .memcg import Memcg
    from .node import Node


_INT64 = np.dtype(np.int64)
_NO_RANGES = np.empty(0, dtype=np.int64)
STALL_KINDS = ("reclaim", "compaction", "throttle", "swapin", "collapse")
_HANDLERS = {MADV.DONTNEED: madvise.dontneed, MADV.FREE: madvise.free, MADV.SPLITTABLE: madvise.splittable,
             MADV.UNSPLITTABLE: madvise.unsplittable, MADV.COLD: madvise.cold, MADV.PAGEOUT: madvise.pageout}


class Process:
    """A task in a memcg. Thin handle: state lives in the node's arrays."""

    def __init__(self, node: Node, pid: int, name: str, memcg: Memcg, oom_score_adj: int, threads: int):
        if not -1000 <= oom_score_adj <= 1000:
            raise KernelError("EINVAL", f"oom_score_adj={oom_score_adj} must be in [-1000, 1000]")
        if threads < 1:
            raise KernelError("EINVAL", f"threads={threads} must be >= 1")
        self.node, self.mm = node, node.mm   # the machine it runs on, and that machine's state
        self.pid, self.name, self.memcg = pid, name, memcg
        self.oom_score_adj, self.threads = oom_score_adj, threads
        self.alive = True
        self.thp_disable = False
        self.regions: list[Region] = []
        self._rows_cache: tuple[int, np.ndarray] | None = None
        self.stall_s = 0.0
        self.stall_log: list[float] = []
        self.stall_by_kind: Counter = Counter()
        self.faults_4k = self.faults_thp = self.faults_major = 0
        self.madvise_calls = 0
        self.undo_lost_pages = np.zeros(0, dtype=np.int64)
        memcg.procs.append(self)

    # --- mappings ------------------------------------------------------------------------------------
    def mmap(self, length: int | str, advice: MADV | None = None) -> Region:
        """Anonymous private mapping, 2 MiB aligned; ``advice`` HUGEPAGE/NOHUGEPAGE applied at once."""
        self._check_alive()
        nbytes = size_arg("length", length)
        if nbytes <= 0:
            raise KernelError("EINVAL", f"mmap length {length!r} must be > 0")
        region = map_region(self.mm, self, -(-nbytes // PAGE_SIZE))
        if advice is not None:
            self.madvise(region, 0, region.length, advice)
        return region

    def munmap(self, region: Region) -> None:
        """Unmap the whole region: pages, swap slots and page tables are freed."""
        self._own(region)
        unmap_region(self.mm, region)
        self.regions.remove(region)
        self._rows_cache = None

    def exit(self) -> None:
        """The task exits: every mapping goes away. Page cache it read stays (it belongs to the files)."""
        for region in list(self.regions):
            self.munmap(region)
        self._leave()

    def kill(self) -> None:
        """SIGKILL from the OOM killer: like exit."""
        if self.alive:
            self.exit()

    def _leave(self) -> None:
        if self.alive:
            self.alive = False
            self.memcg.procs.remove(self)

    # --- memory access -------------------------------------------------------------------------------
    def touch(self, region: Region, offset: int | str = 0, length: int | str | None = None) -> float:
        """Write [offset, offset+length); returns seconds spent (faults, reclaim, throttling, swap-in)."""
        first, n = self._pages(region, offset, length, aligned=False)
        return self._touch(region.flat(first, n))

    def touch_many(self, region: Region, offsets, lengths) -> float:
        """touch() over many ranges (numpy arrays of byte offsets and lengths)."""
        return self._touch(self._batch_flat([(region, offsets, lengths)]))

    def touch_batch(self, batch) -> float:
        """touch_many() over several mappings at once: ``batch`` is (region, offsets, lengths) triples.

        One kernel entry for a whole allocation batch, as the fault path costs the same either way but the
        simulator's per-call work is paid once.
        """
        return self._touch(self._batch_flat(batch))

    def _touch(self, flat: np.ndarray) -> float:
        self._check_alive()
        return fault.touch(self.mm, self, flat)

    def _batch_flat(self, batch, *, aligned: bool = False) -> np.ndarray:
        """Sorted distinct flat pages of (region, offsets, lengths) triples, each range checked."""
        return _flat_pages(*self._batch_pages(batch, aligned=aligned))

    def _batch_pages(self, batch, *, aligned: bool) -> tuple[np.ndarray, np.ndarray]:
        """First flat page and page count of every range of (region, offsets, lengths) triples.

        The ranges of all mappings are checked in one compiled pass: a batch is a few dozen ranges over a
        handful of VMAs, where per-VMA numpy calls would cost more than the work. Any bad range sends the
        batch through the per-mapping checks instead, so the error raised is the one the first bad range in
        batch order gets, exactly as when each mapping was checked in turn.
        """
        if type(batch) is RangeBatch:
            got = self._range_batch_pages(batch, aligned)
            if got is not None:
                return got
        batch = list(batch)   # read twice when a range is bad
        got = self._range_batch_pages(self._sorted_batch(batch, aligned), aligned)
        if got is None:
            self._raise_first_error(batch, aligned)
        return got

    def _sorted_batch(self, batch: list, aligned: bool) -> RangeBatch:
        """(region, offsets, lengths) triples as a RangeBatch in address order (so the pages come out sorted);
        offsets or lengths that are not matching int64 arrays raise the first error of the batch."""
        regions, offs, lens = [], [], []
        for region, off, ln in sorted(batch, key=_start_row):
            try:
                off, ln = _int64(off), _int64(ln)
            except (TypeError, ValueError):
                self._raise_first_error(batch, aligned)
            if off.shape != ln.shape:
                self._raise_first_error(batch, aligned)
            regions.append(region)
            offs.append(off)
            lens.append(ln)
        if len(offs) == 1:
            return RangeBatch(regions, offs[0], lens[0], [len(offs[0])])
        return RangeBatch(regions, np.concatenate(offs or [_NO_RANGES]), np.concatenate(lens or [_NO_RANGES]),
                          [len(o) for o in offs])

    def _range_batch_pages(self, batch: RangeBatch, aligned: bool) -> tuple[np.ndarray, np.ndarray] | None:
        """_batch_pages() of a RangeBatch whose mappings are live, this task's and in address order; None
        when they are not or a range is bad (the caller then sorts, or raises the first range's error)."""
        off, ln = batch.offsets, batch.lengths
        if not (off.dtype == _INT64 == ln.dtype and off.ndim == 1 and off.shape == ln.shape
                and sum(batch.counts) == len(off)):
            return None
        bounds, last = [], -1
        for r, k in zip(batch.regions, batch.counts, strict=True):
            if r.proc is not self or not r.mapped or r.start_row < last:
                return None
            last = r.start_row
            bounds += (last * HPAGE_PAGES, r.length, k)
        self._check_alive()
        first, n, ok = _batch_ranges(off, ln, np.array(bounds, dtype=np.int64).reshape(-1, 3), aligned)
        return (first, n) if ok else None

    def _raise_first_error(self, batch, aligned: bool):
        """Check each mapping's ranges in turn, as separate calls would: raises the first range's error."""
        for region, off, ln in batch:
            self._pages_many(region, off, ln, aligned=aligned)
        raise AssertionError("a range failed the batch check but passed the per-mapping one")

    def access(self, region: Region, offset: int | str = 0, length: int | str | None = None) -> float:
        """Read the range: marks it recently used (active) and swaps in swapped pages; returns seconds."""
        first, n = self._pages(region, offset, length, aligned=False)
        return self._access(region.flat(first, n))

    def access_many(self, region: Region, offsets, lengths) -> float:
        """access() over many ranges (numpy arrays of byte offsets and lengths)."""
        return self._access(self._batch_flat([(region, offsets, lengths)]))

    def access_batch(self, batch) -> float:
        """access_many() over several mappings at once ((region, offsets, lengths) triples).

        A hot set is large (tens of thousands of pages), so its ranges are read in place, not expanded.
        """
        first, n = self._batch_pages(batch, aligned=False)
        self._check_alive()
        pt = self.mm.pt
        return self._read(*_swapped_and_rows(pt.flat_state, pt.cnt, first, n))

    def _access(self, flat: np.ndarray) -> float:
        self._check_alive()
        swapped = flat[self.mm.pt.flat_state[flat] == SWAP]
        return self._read(swapped, uniq_rows(flat))

    def _read(self, swapped: np.ndarray, rows: np.ndarray) -> float:
        """A read of ``rows`` that finds the pages ``swapped`` out: swap-in, then the rows become active."""
        cost = fault.touch(self.mm, self, swapped) if len(swapped) else 0.0
        lru_add(self.mm, rows, active=True)
        return cost

    def read(self, region: Region, offset: int | str = 0, length: int | str | None = None) -> float:
        """Share of the range's pages that still hold written data (observation only, no side effect)."""
        first, n = self._pages(region, offset, length, aligned=False)
        flat = region.flat(first, n)
        return float(HOLDS_DATA[self.mm.pt.flat_state[flat]].mean()) if len(flat) else 0.0

    def read_file(self, size: int | str, name: str) -> float:
        """Read ``size`` bytes of file ``name`` into the page cache, charged to this task's memcg."""
        self._check_alive()
        return read_file(self.mm, self, size_arg("size", size), name)

    # --- madvise ------------------------------------------------------------------------------------
    def madvise(self, region: Region, offset: int | str, length: int | str, advice: MADV) -> float:
        """madvise(2) on one range; returns the seconds the call cost the process."""
        first, n = self._pages(region, offset, length, aligned=True)
        return self._madvise(region, first, n, advice)

    def madvise_many(self, region: Region, offsets, lengths, advice: MADV) -> float:
        """One madvise(2) call per range, vectorised; returns the total seconds."""
        first, n = self._pages_many(region, offsets, lengths, aligned=True)
        return self._madvise(region, first, n, advice)

    def madvise_batch(self, batch, advice: MADV) -> float:
        """madvise_many() over several mappings at once ((region, offsets, lengths) triples); one call per
        range is counted and costed, as if each were its own madvise(2)."""
        advice = madvise.check_advice(self.mm, advice)
        if advice not in _HANDLERS:   # per-VMA advice, or per-call results (FREE_UNDO's lost pages)
            return sum(self.madvise_many(region, off, ln, advice) for region, off, ln in batch)
        self._check_alive()
        first, n = self._batch_pages(batch, aligned=True)
        ranges = len(first)
        flat = _flat_pages(first, n)
        self.madvise_calls += ranges
        self.mm.vmstat["madvise_calls"] += ranges
        return _HANDLERS[advice](self.mm, self, flat, ranges)

    def _madvise(self, region: Region, first: np.ndarray, n: np.ndarray, advice: MADV) -> float:
        self._check_alive()
        mm = self.mm
        advice = madvise.check_advice(mm, advice)
        ranges = len(first)
        self.madvise_calls += ranges
        mm.vmstat["madvise_calls"] += ranges
        if advice == MADV.FREE_UNDO:   # pages in call order: lost pages are counted per call
            cost, self.undo_lost_pages = madvise.free_undo(mm, self, region.flat(first, n), n)
            return cost
        flat = _flat_pages(region.start_row * HPAGE_PAGES + first, n)
        if advice == MADV.COLLAPSE:
            return self._collapse(region, flat)
        if advice in _HANDLERS:
            return _HANDLERS[advice](mm, self, flat, ranges)
        return madvise.set_thp_advice(mm, region, flat, advice)

    def _collapse(self, region: Region, flat: np.ndarray) -> float:
        """MADV_COLLAPSE (6.1+): EINVAL on MADV_NOHUGEPAGE or with THP disabled by prctl."""
        mm = self.mm
        rows = uniq_rows(flat)
        if (mm.pt.advice[rows] == ADV_NOHUGEPAGE).any() or self.thp_disable is True:
            raise KernelError("EINVAL", "MADV_COLLAPSE on a VMA with MADV_NOHUGEPAGE or THP disabled by prctl")
        rows = rows[khugepaged.collapsible(mm, rows, limits=False)]
        _, failed, cost = khugepaged.collapse(mm, rows)
        self.stall(cost, "collapse")
        if len(failed):
            raise KernelError("ENOMEM", f"MADV_COLLAPSE: no hugepage for {len(failed)} of {len(rows)} ranges")
        return cost + mm.costs.syscall_s

    # --- prctl --------------------------------------------------------------------------------------------
    @property
    def thp_disable(self) -> bool | str:
        """prctl(PR_SET_THP_DISABLE): False, True (no THP in any VMA, MADV_COLLAPSE included) or
        "except_advised" (PR_THP_DISABLE_EXCEPT_ADVISED: only MADV_HUGEPAGE VMAs and MADV_COLLAPSE get THPs)."""
        return self._thp_disable

    @thp_disable.setter
    def thp_disable(self, value: bool | str) -> None:
        if not (isinstance(value, bool) or value == "except_advised"):
            raise KernelError("EINVAL", f"thp_disable={value!r} must be True, False or 'except_advised'")
        self._thp_disable = value
        if value is False:   # the node keeps the set, so faults skip the owner lookup when it is empty
            self.mm.thp_disabled_pids.discard(self.pid)
        else:
            self.mm.thp_disabled_pids.add(self.pid)

    # --- observations -------------------------------------------------------------------------------
    @property
    def smaps(self) -> dict[str, int]:
        """smaps_rollup fields in bytes: Rss, Anonymous, AnonHugePages, LazyFree, Swap."""
        pt = self.mm.pt
        rows = self._rows()   # a task's own mappings are anonymous; page cache belongs to files
        rss, thp_rows, lazy, swap = (int(v) for v in _rollup(pt.npres, pt.pmd, pt.cnt, rows))
        return {"Rss": rss * PAGE_SIZE, "Anonymous": rss * PAGE_SIZE,
                "AnonHugePages": thp_rows * HPAGE_PAGES * PAGE_SIZE,
                "LazyFree": lazy * PAGE_SIZE, "Swap": swap * PAGE_SIZE}

    @property
    def stall_seconds(self) -> float:
        """Seconds stalled on reclaim, compaction, memory.high throttling, swap-in and collapses."""
        return self.stall_s

    def stall(self, seconds: float, kind: str) -> None:
        """Record one stall event of a STALL_KINDS kind; reclaim, compaction, throttle and swapin are the
        memory stalls PSI counts (TMO, psi.rst); a collapse holding the mm is not."""
        assert kind in STALL_KINDS, kind
        if seconds > 0:
            self.stall_s += seconds
            self.stall_by_kind[kind] += seconds
            self.stall_log.append(seconds)

    @property
    def memstall_s(self) -> float:
        """PSI-style memory stall time: reclaim, compaction, memory.high throttling, swap-in."""
        return self.stall_s - self.stall_by_kind["collapse"]

    def take_stalls(self) -> list[float]:
        """The stall events since the last call, one duration each: they land on individual requests."""
        log, self.stall_log = self.stall_log, []
        return log

    def rss_pages(self) -> int:
        rows = self._rows()
        return int(self.mm.pt.present(rows).sum()) if len(rows) else 0

    def swap_pages(self) -> int:
        rows = self._rows()
        return int(self.mm.pt.cnt[rows, SWAP].sum()) if len(rows) else 0

    def pagetable_pages(self) -> int:
        rows = self._rows()
        return int(self.mm.pt.pt[rows].sum()) if len(rows) else 0

    def thp_coverage(self) -> float:
        """AnonHugePages / anonymous RSS (DESIGN.md section 7); 0 with nothing resident."""
        s = self.smaps
        return s["AnonHugePages"] / s["Rss"] if s["Rss"] else 0.0

    def _rows(self) -> np.ndarray:
        """Page-table rows of all the task's mappings (kept until the next mmap or munmap)."""
        if self._rows_cache is None or self._rows_cache[0] != len(self.regions):
            rows = np.concatenate([r.rows for r in self.regions]) if self.regions else np.empty(0, np.int64)
            self._rows_cache = (len(self.regions), rows)
        return self._rows_cache[1]

    # --- argument checks -----------------------------------------------------------------------------
    def _check_alive(self) -> None:
        if not self.alive:
            raise KernelError("ESRCH", f"process {self.name!r} (pid {self.pid}) has exited or was killed")

    def _own(self, region: Region) -> None:
        self._check_alive()   # a dead task has no mm: ESRCH before any question about its mappings
        if region.proc is not self or not region.mapped:
            raise KernelError("EINVAL", "region is not a live mapping of this process")

    def _pages(self, region, offset, length, *, aligned):
        off = size_arg("offset", offset)
        ln = region.length - off if length is None else size_arg("length", length)
        return self._pages_many(region, np.array([off]), np.array([ln]), aligned=aligned)

    def _pages_many(self, region, offsets, lengths, *, aligned):
        self._own(region)
        off = np.asarray(offsets, dtype=np.int64).reshape(-1)
        ln = np.asarray(lengths, dtype=np.int64).reshape(-1)
        if off.shape != ln.shape:
            raise KernelError("EINVAL", f"{len(off)} offsets but {len(ln)} lengths")
        if (off < 0).any() or (ln < 0).any():
            raise KernelError("EINVAL", "offsets and lengths must be >= 0")
        if aligned and (off % PAGE_SIZE).any():
            bad = int(off[off % PAGE_SIZE != 0][0])
            raise KernelError("EINVAL", f"offset {bad} is not aligned to the 4096-byte page size")
        if (off + ln > region.length).any():
            bad = int(np.flatnonzero(off + ln > region.length)[0])
            raise KernelError("ENOMEM", f"range [{off[bad]}, {off[bad] + ln[bad]}) lies outside the "
                                        f"{region.length}-byte mapping")
        first = off // PAGE_SIZE
        last = -(-(off + ln) // PAGE_SIZE)
        return first, np.maximum(last - first, 0)


def _flat_pages(first: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Sorted distinct flat pages of ranges given as first flat page and page count (n >= 0)."""
    return _expand_ranges(first, n)


@njit
def _disjoint_ascending(first, n) -> bool:
    """Each range starts at or after the end of the one before (its pages come out sorted and distinct)."""
    for i in range(1, first.shape[0]):   # noqa: SIM110 (numba compiles loops, not generators)
        if first[i] < first[i - 1] + n[i - 1]:
            return False
    return True


@njit
def _expand_ranges(first, n):
    """The pages of the ranges, sorted and distinct (ranges out of order or overlapping are merged)."""
    disjoint = _disjoint_ascending(first, n)
    if not disjoint:
        order = np.argsort(first, kind="mergesort")
        first, n = first[order], n[order]
        disjoint = _disjoint_ascending(first, n)
    pages = np.empty(n.sum(), dtype=np.int64)
    k = 0
    for i in range(first.shape[0]):
        for j in range(n[i]):
            pages[k + j] = first[i] + j
        k += n[i]
    return pages if disjoint else np.unique(pages)


@njit
def _batch_ranges(off, ln, bounds, aligned):
    """First flat page and page count of each byte range, its mapping given per run of ranges by
    ``bounds`` rows (first row * 512, mapping length, ranges); ok is False if any range is bad."""
    first = np.empty(off.shape[0], dtype=np.int64)
    count = np.empty(off.shape[0], dtype=np.int64)
    ok, i = True, 0
    for m in range(bounds.shape[0]):
        base, limit = bounds[m, 0], bounds[m, 1]
        for _ in range(bounds[m, 2]):
            o, n = off[i], ln[i]
            end = o + n
            if o < 0 or n < 0 or end > limit or (aligned and o % PAGE_SIZE != 0):
                ok = False
            f = o // PAGE_SIZE
            first[i] = base + f
            count[i] = (end + (PAGE_SIZE - 1)) // PAGE_SIZE - f
            i += 1
    return first, count, ok


@njit
def _rollup(npres, pmd, cnt, rows):
    """smaps_rollup counts over rows: (present pages, PMD-mapped rows, lazyfree pages, swapped pages)."""
    rss, thp, lazy, swap = 0, 0, 0, 0
    for r in rows:
        rss += npres[r]
        thp += pmd[r]
        lazy += cnt[r, LAZY]
        swap += cnt[r, SWAP]
    return rss, thp, lazy, swap


@njit
def _swapped_and_rows(flat_state, cnt, first, n):
    """Swapped pages (sorted, distinct) and sorted distinct rows of the ranges, read in place: only rows
    whose count says they hold a swapped page are read page by page."""
    if not _disjoint_ascending(first, n):
        order = np.argsort(first, kind="mergesort")
        pages = _expand_ranges(first[order], n[order])
        first, n = pages, np.ones(pages.shape[0], dtype=np.int64)
    swapped = np.empty(n.sum(), dtype=np.int64)
    rows = np.empty(n.sum() // HPAGE_PAGES + 2 * first.shape[0], dtype=np.int64)
    k = m = 0
    for i in range(first.shape[0]):
        start, end = first[i], first[i] + n[i]
        while start < end:
            r = start // HPAGE_PAGES
            stop = min(end, (r + 1) * HPAGE_PAGES)
            if m == 0 or rows[m - 1] != r:
                rows[m] = r
                m += 1
            if cnt[r, SWAP]:
                for f in range(start, stop):
                    if flat_state[f] == SWAP:
                        swapped[k] = f
                        k += 1
            start = stop
    return swapped[:k], rows[:m]


def _start_row(triple) -> int:
    return triple[0].start_row


def _int64(values) -> np.ndarray:
    """A 1-d int64 array of ``values`` (no copy when it already is one)."""
    # dtype ==, not is: arrays made by compiled code carry an equal but distinct dtype object
    if type(values) is np.ndarray and values.dtype == _INT64 and values.ndim == 1:
        return values
    return np.asarray(values, dtype=np.int64).reshape(-1)




__all__ = ["ADV_HUGEPAGE", "Process", "RangeBatch", "Region"]
