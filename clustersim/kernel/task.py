"""A process (task and its mm) and its mappings: the syscall surface of clustersim's kernel.

Each method is one system call or observation file; the work is done by the mechanism modules. Offsets and
lengths take bytes or size strings. madvise needs a page-aligned offset (EINVAL otherwise) and rounds the
length up to pages, as Linux does; a range outside the mapping is ENOMEM.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

import numpy as np

from ..units import HPAGE_PAGES, PAGE_SIZE
from . import fault, khugepaged, madvise, psi, slab
from .errors import KernelError, size_arg
from .filemap import read_file
from .memory import lru_add
from .mman import MADV
from .oom_kill import OOM_SCORE_ADJ_MAX, OOM_SCORE_ADJ_MIN
from .pagetable import (
    ADV_HUGEPAGE,
    ADV_NOHUGEPAGE,
    HOLDS_DATA,
    SWAP,
    expand_ranges,
    rollup,
    swapped_and_rows,
    uniq_rows,
)
from .ranges import batch_flat, batch_pages, check_alive, check_own, pages, pages_many
from .vma import RangeBatch, Region, map_region, unmap_region

if TYPE_CHECKING:
    from .memcg import Memcg
    from .node import Node


STALL_KINDS = (*psi.MEMSTALL_KINDS, "collapse")
_HANDLERS = {MADV.DONTNEED: madvise.dontneed, MADV.FREE: madvise.free, MADV.SPLITTABLE: madvise.splittable,
             MADV.UNSPLITTABLE: madvise.unsplittable, MADV.COLD: madvise.cold, MADV.PAGEOUT: madvise.pageout}


class Process:
    """A task in a memcg. Thin handle: state lives in the node's arrays."""

    def __init__(self, node: Node, pid: int, name: str, memcg: Memcg, oom_score_adj: int, threads: int):
        if not OOM_SCORE_ADJ_MIN <= oom_score_adj <= OOM_SCORE_ADJ_MAX:
            raise KernelError("EINVAL", f"oom_score_adj={oom_score_adj} must be in "
                                        f"[{OOM_SCORE_ADJ_MIN}, {OOM_SCORE_ADJ_MAX}]")
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
        self.stall_log: list[tuple[float, str]] = []
        self.stall_by_kind: Counter = Counter()
        self.memstall_until_ns = np.zeros(threads, dtype=np.int64)   # when each thread's memory stall ends (PSI)
        self.faults_4k = self.faults_thp = self.faults_major = 0
        self.madvise_calls = 0
        # Events Linux counts only node-wide (/proc/vmstat, e.g. thp_split_pmd), counted per task here so a
        # tenant's share is its own; memory.stat's event counters are per memcg (Memcg.counters).
        self.vm_events: Counter = Counter()
        self.undo_lost_pages = np.zeros(0, dtype=np.int64)
        memcg.procs.append(self)

    # --- mappings ------------------------------------------------------------------------------------
    def mmap(self, length: int | str, advice: MADV | None = None) -> Region:
        """Anonymous private mapping, 2 MiB aligned; ``advice`` HUGEPAGE/NOHUGEPAGE applied at once."""
        check_alive(self)
        nbytes = size_arg("length", length)
        if nbytes <= 0:
            raise KernelError("EINVAL", f"mmap length {length!r} must be > 0")
        region = map_region(self.mm, self, -(-nbytes // PAGE_SIZE))
        if advice is not None:
            self.madvise(region, 0, region.length, advice)
        return region

    def munmap(self, region: Region) -> None:
        """Unmap the whole region: pages, swap slots and page tables are freed.

        Unmapping a range with nothing mapped succeeds, as munmap(2) does (do_vmi_munmap() finds no VMA and
        returns 0): a region this task already unmapped is a no-op. Another task's region stays EINVAL.
        """
        check_alive(self)
        if region.proc is self and not region.mapped:
            return
        check_own(self, region)
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
            psi.account(self.mm, self.memcg)   # the group loses a non-idle task: account the time before
            self.alive = False
            self.memcg.procs.remove(self)
            slab.free_stacks(self.mm, self.pid)

    # --- memory access -------------------------------------------------------------------------------
    def touch(self, region: Region, offset: int | str = 0, length: int | str | None = None) -> float:
        """Write [offset, offset+length); returns seconds spent (faults, reclaim, throttling, swap-in)."""
        first, n = pages(self, region, offset, length, aligned=False)
        return self._touch(region.flat(first, n))

    def touch_many(self, region: Region, offsets, lengths) -> float:
        """touch() over many ranges (numpy arrays of byte offsets and lengths)."""
        return self._touch(batch_flat(self, [(region, offsets, lengths)]))

    def touch_batch(self, batch) -> float:
        """touch_many() over several mappings at once: ``batch`` is (region, offsets, lengths) triples.

        One kernel entry for a whole allocation batch, as the fault path costs the same either way but the
        simulator's per-call work is paid once. The ranges' pages are listed and their states counted in
        one pass (fault.touch_ranges).
        """
        first, n = batch_pages(self, batch, aligned=False)
        check_alive(self)
        return fault.touch_ranges(self.mm, self, first, n)

    def _touch(self, flat: np.ndarray) -> float:
        check_alive(self)
        return fault.touch(self.mm, self, flat)

    def access(self, region: Region, offset: int | str = 0, length: int | str | None = None) -> float:
        """Read the range: marks it recently used (active) and swaps in swapped pages; returns seconds."""
        first, n = pages(self, region, offset, length, aligned=False)
        return self._access(region.flat(first, n))

    def access_many(self, region: Region, offsets, lengths) -> float:
        """access() over many ranges (numpy arrays of byte offsets and lengths)."""
        return self._access(batch_flat(self, [(region, offsets, lengths)]))

    def access_batch(self, batch) -> float:
        """access_many() over several mappings at once ((region, offsets, lengths) triples).

        A hot set is large (tens of thousands of pages), so its ranges are read in place, not expanded.
        """
        first, n = batch_pages(self, batch, aligned=False)
        check_alive(self)
        pt = self.mm.pt
        return self._read(*swapped_and_rows(pt.flat_state, pt.cnt, first, n))

    def _access(self, flat: np.ndarray) -> float:
        check_alive(self)
        swapped = flat[self.mm.pt.flat_state[flat] == SWAP]
        return self._read(swapped, uniq_rows(flat))

    def _read(self, swapped: np.ndarray, rows: np.ndarray) -> float:
        """A read of ``rows`` that finds the pages ``swapped`` out: swap-in, then the rows become active."""
        cost = fault.touch(self.mm, self, swapped) if len(swapped) else 0.0
        lru_add(self.mm, rows, active=True)
        return cost

    def read(self, region: Region, offset: int | str = 0, length: int | str | None = None) -> float:
        """Share of the range's pages that still hold written data (observation only, no side effect)."""
        first, n = pages(self, region, offset, length, aligned=False)
        flat = region.flat(first, n)
        return float(HOLDS_DATA[self.mm.pt.flat_state[flat]].mean()) if len(flat) else 0.0

    def read_file(self, size: int | str, name: str) -> float:
        """Read ``size`` bytes of file ``name`` into the page cache, charged to this task's memcg."""
        check_alive(self)
        return read_file(self.mm, self, size_arg("size", size), name)

    # --- madvise ------------------------------------------------------------------------------------
    def madvise(self, region: Region, offset: int | str, length: int | str, advice: MADV) -> float:
        """madvise(2) on one range; returns the seconds the call cost the process."""
        first, n = pages(self, region, offset, length, aligned=True)
        return self._madvise(region, first, n, advice)

    def madvise_many(self, region: Region, offsets, lengths, advice: MADV) -> float:
        """One madvise(2) call per range, vectorised; returns the total seconds."""
        first, n = pages_many(self, region, offsets, lengths, aligned=True)
        return self._madvise(region, first, n, advice)

    def madvise_batch(self, batch, advice: MADV) -> float:
        """madvise_many() over several mappings at once ((region, offsets, lengths) triples); one call per
        range is counted and costed, as if each were its own madvise(2)."""
        advice = madvise.check_advice(self.mm, advice)
        if advice not in _HANDLERS:   # per-VMA advice, or per-call results (FREE_UNDO's lost pages)
            return sum(self.madvise_many(region, off, ln, advice) for region, off, ln in batch)
        check_alive(self)
        first, n = batch_pages(self, batch, aligned=True)
        ranges = len(first)
        flat = expand_ranges(first, n)
        self.madvise_calls += ranges
        self.mm.vmstat["madvise_calls"] += ranges
        return _HANDLERS[advice](self.mm, self, flat, ranges)

    def _madvise(self, region: Region, first: np.ndarray, n: np.ndarray, advice: MADV) -> float:
        check_alive(self)
        mm = self.mm
        advice = madvise.check_advice(mm, advice)
        ranges = len(first)
        self.madvise_calls += ranges
        mm.vmstat["madvise_calls"] += ranges
        if advice == MADV.FREE_UNDO:   # pages in call order: lost pages are counted per call
            cost, self.undo_lost_pages = madvise.free_undo(mm, self, region.flat(first, n), n)
            return cost
        flat = expand_ranges(region.start_row * HPAGE_PAGES + first, n)
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
        rss, thp_rows, lazy, swap = (int(v) for v in rollup(pt.npres, pt.pmd, pt.cnt, rows))
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
            self.stall_log.append((seconds, kind))
            if kind in psi.MEMSTALL_KINDS:
                psi.memstall(self.mm, self, self.memcg, seconds)

    @property
    def memstall_s(self) -> float:
        """PSI-style memory stall time: reclaim, compaction, memory.high throttling, swap-in."""
        return self.stall_s - self.stall_by_kind["collapse"]

    def take_stalls(self) -> list[tuple[float, str]]:
        """The stall events since the last call, as (seconds, kind) in the order they happened."""
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
        """AnonHugePages / anonymous RSS (docs/model.md, Metrics); 0 with nothing resident."""
        s = self.smaps
        return s["AnonHugePages"] / s["Rss"] if s["Rss"] else 0.0

    def _rows(self) -> np.ndarray:
        """Page-table rows of all the task's mappings (kept until the next mmap or munmap)."""
        if self._rows_cache is None or self._rows_cache[0] != len(self.regions):
            rows = np.concatenate([r.rows for r in self.regions]) if self.regions else np.empty(0, np.int64)
            self._rows_cache = (len(self.regions), rows)
        return self._rows_cache[1]


__all__ = ["ADV_HUGEPAGE", "Process", "RangeBatch", "Region"]
