"""HugePageFiller: packs small spans into partly used hugepages (tcmalloc/huge_page_filler.h).

Each hugepage in the filler has a PageTracker: a bitmap of its 256 tcmalloc pages (8 KiB each), its
allocation count and its longest free range (LFR). ``try_get(n)`` picks, among hugepages whose LFR is at
least n, the one with the *lowest* LFR, ties broken by the *most* allocations (counts chunked
logarithmically into 8 buckets), and places the span by best fit inside it. Hugepages are preferred in the
order regular, donated (tails of large allocations), released (subreleased); so donated tails stay whole
for as long as possible and subreleased hugepages are refilled last (Temeraire, OSDI 2021, Sec. 4.4).

Subrelease (``release_pages``) returns all free pages of the emptiest hugepages first, partly released
ones before intact ones, and is skipped when recent demand says the memory will be needed again
(GetDesiredSubreleasePages with short and long intervals, tcmalloc/huge_page_subrelease.h).

Left out: the few/many-objects split of newer tcmalloc, sparse/dense trackers, "partial rerelease" on free.
The demand requirement approximates tcmalloc's: largest per-epoch swing in the short interval plus the
largest per-epoch minimum in the long interval.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right, insort
from operator import attrgetter, sub

import numpy as np

from clustersim.units import HPAGE_PAGES

from .page_space import PageState

TC_PAGES_PER_HUGEPAGE = 256        # 2 MiB / 8 KiB tcmalloc pages
TC_PAGE_PAGES = HPAGE_PAGES // TC_PAGES_PER_HUGEPAGE
ALLOC_CHUNKS = 8                   # kChunks: allocation counts bucketed log2 into 8 lists per LFR
REGULAR, DONATED, RELEASED = 0, 1, 2   # tracker kinds, in order of preference for new spans
_RELEASED, _LAZYFREE, _QUEUED = int(PageState.RELEASED), int(PageState.LAZYFREE), int(PageState.QUEUED)
# Allocation counts bucketed log2 into ALLOC_CHUNKS chunks, more allocations ranking first: the low part
# of a list key, tabulated for every count a hugepage can hold.
_CHUNK_RANK = [ALLOC_CHUNKS - 1 - min(ALLOC_CHUNKS - 1, max(n, 1).bit_length() - 1)
               for n in range(TC_PAGES_PER_HUGEPAGE + 1)]


class PageTracker:
    """Allocation state of one hugepage in the filler, in tcmalloc pages.

    tcmalloc's PageTracker scans a 256-bit bitmap for free ranges. A hugepage holds a handful of spans, so
    here the free ranges themselves are kept, sorted by start (two parallel lists): best fit is a scan of a
    few ranges, a free merges with at most two neighbours, and the longest free range (LFR) is recomputed
    only when the range it came from shrinks.
    """

    __slots__ = ("donated", "free_len", "free_start", "key", "kind", "longest_free", "nallocs", "released",
                 "used_tc", "vhp")

    def __init__(self, vhp: int) -> None:
        self.vhp = vhp
        self.free_start = [0]
        self.free_len = [TC_PAGES_PER_HUGEPAGE]
        self.used_tc = 0
        self.nallocs = 0
        self.longest_free = TC_PAGES_PER_HUGEPAGE
        self.donated = False
        self.released = False
        self.kind = REGULAR
        self.key = -1

    def get(self, n: int) -> int:
        """Mark the best-fit free range of ``n`` pages used (the shortest that fits, lowest start on
        ties); returns its first tcmalloc page.

        REQUIRES: longest_free >= n.
        """
        assert self.longest_free >= n
        lens = self.free_len
        i, best = 0, TC_PAGES_PER_HUGEPAGE + 1
        for j, length in enumerate(lens):
            if n <= length < best:
                i, best = j, length
        start = self.free_start[i]
        self._take(i, start, n, best)
        return start

    def mark(self, start: int, n: int) -> None:
        """Mark [start, start+n) used as one allocation (the head of a donated tail).

        REQUIRES: the pages are free.
        """
        i = bisect_right(self.free_start, start) - 1
        head = self.free_start[i]
        assert i >= 0 and start + n <= head + self.free_len[i]
        if start > head:  # keep the free pages before the span as their own range
            self.free_start.insert(i, head)
            self.free_len.insert(i, start - head)
            self.free_start[i + 1] = start
            self.free_len[i + 1] -= start - head
            i += 1
        self._take(i, start, n, self.free_len[i])
        self.longest_free = max(self.free_len, default=0)

    def _take(self, i: int, start: int, n: int, length: int) -> None:
        """Allocate the first ``n`` pages of free range ``i`` (which begins at ``start``, ``length`` long)."""
        if length == n:
            del self.free_start[i], self.free_len[i]
        else:
            self.free_start[i] = start + n
            self.free_len[i] = length - n
        if length == self.longest_free:
            self.longest_free = max(self.free_len, default=0)
        self.used_tc += n
        self.nallocs += 1

    def put(self, start: int, n: int) -> None:
        """Free [start, start+n), merged with free neighbours. REQUIRES: it was allocated as one span."""
        starts, lens = self.free_start, self.free_len
        i = bisect_left(starts, start)
        after_prev = i > 0 and starts[i - 1] + lens[i - 1] == start
        before_next = i < len(starts) and starts[i] == start + n
        assert (i == 0 or starts[i - 1] + lens[i - 1] <= start) and (i == len(starts) or start + n <= starts[i])
        if after_prev and before_next:
            lens[i - 1] += n + lens[i]
            del starts[i], lens[i]
            merged = lens[i - 1]
        elif after_prev:
            lens[i - 1] += n
            merged = lens[i - 1]
        elif before_next:
            starts[i] = start
            lens[i] += n
            merged = lens[i]
        else:
            starts.insert(i, start)
            lens.insert(i, n)
            merged = n
        self.longest_free = max(self.longest_free, merged)
        self.used_tc -= n
        self.nallocs -= 1

    def free_ranges_4k(self) -> tuple[list[int], list[int]]:
        """Free ranges as (first 4 KiB page index, 4 KiB pages) in the heap's page space."""
        base = self.vhp * HPAGE_PAGES
        return [base + s * TC_PAGE_PAGES for s in self.free_start], [n * TC_PAGE_PAGES for n in self.free_len]

    def list_key(self) -> int:
        """Index of this tracker's list: lower LFR first, then more allocations first."""
        return self.longest_free * ALLOC_CHUNKS + _CHUNK_RANK[self.nallocs]


class TrackerLists:
    """Trackers bucketed by list key, with the non-empty keys kept sorted (PageTrackerLists)."""

    def __init__(self) -> None:
        self._buckets: dict[int, dict[PageTracker, None]] = {}
        self._keys: list[int] = []
        self.size = 0

    def add(self, pt: PageTracker, key: int) -> None:
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = {}
            insort(self._keys, key)
        bucket[pt] = None
        pt.key = key
        self.size += 1

    def remove(self, pt: PageTracker) -> None:
        key = pt.key
        bucket = self._buckets[key]
        del bucket[pt]
        if not bucket:
            del self._buckets[key]
            del self._keys[bisect_left(self._keys, key)]
        self.size -= 1

    def get_least(self, min_key: int) -> PageTracker | None:
        """The most recently added tracker of the first non-empty list at or after ``min_key``."""
        i = bisect_left(self._keys, min_key)
        if i == len(self._keys):
            return None
        return next(reversed(self._buckets[self._keys[i]]))

    def trackers(self):
        for key in self._keys:
            yield from self._buckets[key]


class HugePageFiller:
    """The filler over a heap; ``heap`` is the HeapAllocator whose page states it reads and releases."""

    def __init__(self, heap, clock, skip_short_s: float = 60.0, skip_long_s: float = 300.0) -> None:
        self.heap = heap
        self.clock = clock
        self.skip_short_s = skip_short_s
        self.skip_long_s = skip_long_s
        self.lists = (TrackerLists(), TrackerLists(), TrackerLists())
        self.used_tc = 0
        self.size_hp = 0
        # Used pages per second as parallel lists (second, min, max), oldest first: the demand windows are
        # suffixes found by bisect and reduced by C-level max() instead of a Python loop per second.
        self._demand_s: list[int] = []
        self._demand_min: list[int] = []
        self._demand_max: list[int] = []
        self._demand_sorted = True   # seconds ascending (a clock that went back disables the bisect)
        # Which vhps are filler hugepages, so that statistics over them are one numpy expression rather
        # than a walk over every tracker.
        self._member = np.zeros(64, dtype=bool)

    # ----------------------------------------------------------------------------------- lists

    def _add(self, pt: PageTracker) -> None:
        if pt.released and not self._still_released(pt):
            pt.released = False
        kind = pt.kind = RELEASED if pt.released else (DONATED if pt.donated else REGULAR)
        self.lists[kind].add(pt, pt.list_key())

    def _remove(self, pt: PageTracker) -> None:
        self.lists[pt.kind].remove(pt)

    def _still_released(self, pt: PageTracker) -> bool:
        item, v = self.heap._vhp_counts.item, pt.vhp
        return item(v, _RELEASED) + item(v, _LAZYFREE) + item(v, _QUEUED) > 0

    # ----------------------------------------------------------------------------------- spans

    def try_get(self, n: int) -> tuple[PageTracker, int] | None:
        """Place ``n`` tcmalloc pages on an existing hugepage: (tracker, first tcmalloc page) or None."""
        min_key = n * ALLOC_CHUNKS
        for lists in self.lists:
            pt = lists.get_least(min_key)
            if pt is not None:
                break
        else:
            return None
        lists.remove(pt)
        start = pt.get(n)
        pt.donated = False  # used for an allocation: no longer a pristine donated tail
        self.used_tc += n
        self._add(pt)
        return pt, start

    def contribute(self, pt: PageTracker, donated: bool) -> None:
        """Add a hugepage (new, or a large allocation's donated tail) to the filler."""
        pt.donated = donated
        self.used_tc += pt.used_tc
        self.size_hp += 1
        if pt.vhp >= len(self._member):
            self._member = np.concatenate((self._member, np.zeros(pt.vhp + len(self._member), dtype=bool)))
        self._member[pt.vhp] = True
        self._add(pt)

    def put(self, pt: PageTracker, start: int, n: int) -> bool:
        """Free a span; True when the hugepage became empty and left the filler."""
        self._remove(pt)
        pt.put(start, n)
        self.used_tc -= n
        if pt.used_tc == 0:
            self.size_hp -= 1
            self._member[pt.vhp] = False
            return True
        self._add(pt)
        return False

    # ----------------------------------------------------------------------------------- demand

    def record_demand(self) -> None:
        """Note the filler's used pages for this second (called once per allocation or free batch)."""
        second, used = int(self.clock()), self.used_tc
        seconds, mins, maxs = self._demand_s, self._demand_min, self._demand_max
        if seconds and seconds[-1] == second:
            mins[-1], maxs[-1] = min(mins[-1], used), max(maxs[-1], used)
        else:
            self._demand_sorted &= not seconds or seconds[-1] < second
            seconds.append(second)
            mins.append(used)
            maxs.append(used)
        horizon = second - max(self.skip_short_s, self.skip_long_s)
        old = 0
        while old < len(seconds) and seconds[old] < horizon:
            old += 1
        if old:
            del seconds[:old], mins[:old], maxs[:old]

    def required_tc(self) -> int:
        """Pages recent demand says will be needed again (0 when skipping is off or nothing recorded)."""
        if not self._demand_s or (self.skip_short_s <= 0 and self.skip_long_s <= 0):
            return 0
        short, long_ = self._since(self.skip_short_s), self._since(self.skip_long_s)
        fluctuation = max(map(sub, short[2], short[1]), default=0)
        trend = max(long_[1], default=0)
        return fluctuation + trend

    def _since(self, interval_s: float) -> tuple[list[int], list[int], list[int]]:
        """(seconds, mins, maxs) of the entries less than ``interval_s`` before the newest."""
        seconds, after = self._demand_s, self._demand_s[-1] - interval_s
        if self._demand_sorted:
            i = bisect_right(seconds, after)
            return seconds[i:], self._demand_min[i:], self._demand_max[i:]
        keep = [i for i, sec in enumerate(seconds) if sec > after]
        return ([seconds[i] for i in keep], [self._demand_min[i] for i in keep],
                [self._demand_max[i] for i in keep])

    # ----------------------------------------------------------------------------------- release

    def member_vhps(self) -> np.ndarray:
        """vhps of the filler's hugepages, ascending."""
        return np.flatnonzero(self._member)

    def free_backed_pages(self) -> int:
        """Free 4 KiB pages still backed on the filler's hugepages (what subrelease can return)."""
        return int(self.heap._vhp_counts[self.member_vhps(), PageState.FREE_BACKED].sum())

    def release_pages(self, desired_tc: int) -> tuple[int, float]:
        """Subrelease up to about ``desired_tc`` pages, emptiest hugepages first: (4 KiB pages, seconds).

        Skip-subrelease: never release below the demand recent intervals require (tcmalloc's
        GetDesiredSubreleasePages): the allowance is backed pages minus required pages.
        """
        free_backed = self.free_backed_pages()
        required = self.required_tc()
        if required:
            desired_tc = min(desired_tc, max(0, self.used_tc + free_backed // TC_PAGE_PAGES - required))
        if desired_tc <= 0 or free_backed == 0:
            return 0, 0.0
        released, seconds = 0, 0.0
        for pt in self._release_candidates():
            if released >= desired_tc * TC_PAGE_PAGES:
                break
            starts, lengths = pt.free_ranges_4k()
            n, spent = self.heap.release_ranges(starts, lengths)
            if n == 0:
                continue
            self._remove(pt)
            pt.released = True
            self._add(pt)
            released += n
            seconds += spent
        return released, seconds

    def _release_candidates(self):
        """Partly released hugepages first, then intact ones (regular and donated); emptiest first.

        Only hugepages with free backed pages are listed: the others have nothing left to madvise, and
        leaving them out before the stable sort keeps the order of the rest. The intact ones are sorted only
        if the partly released ones did not meet the budget; releasing those never moves an intact one.
        """
        for kinds in ((RELEASED,), (REGULAR, DONATED)):
            backed = self.heap._vhp_counts[:, PageState.FREE_BACKED].tolist()
            yield from sorted([pt for k in kinds for pt in self.lists[k].trackers() if backed[pt.vhp]],
                              key=attrgetter("used_tc"))
