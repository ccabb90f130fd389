"""SpanTable: the live spans of a heap by id (first page, pages, requested bytes), kept in numpy.

The fleet allocates and frees hundreds of spans per process per tick; a Python dict costs a few lookups per
span on every path, where sorted id columns answer a whole batch with one ``np.searchsorted``. Workloads
number spans in birth order, so new ids usually land past the last one and are appended in place (the
columns grow by doubling); only out-of-order ids pay a sort. A free only marks its rows dead; the columns
are compacted once dead rows outnumber live ones, so no batch copies the whole table.
"""

from __future__ import annotations

import numpy as np

from clustersim.jit import inline, njit

from .bisection import first_at_least

_MIN_CAPACITY = 1024


class SpanTable:
    """id -> (start page, pages, requested bytes) for live heap spans; rows sorted by id."""

    def __init__(self) -> None:
        self._rows = 0   # rows in use, live or dead
        self._dead = 0
        self._ids = np.zeros(_MIN_CAPACITY, dtype=np.int64)
        self._start = np.zeros(_MIN_CAPACITY, dtype=np.int64)
        self._npages = np.zeros(_MIN_CAPACITY, dtype=np.int64)
        self._nbytes = np.zeros(_MIN_CAPACITY, dtype=np.int64)
        self._live = np.zeros(_MIN_CAPACITY, dtype=bool)

    def __len__(self) -> int:
        return self._rows - self._dead

    def __getitem__(self, sid: int) -> tuple[int, int]:
        """(start page, pages) of one live span (for tests and debugging; batches use ``lookup``)."""
        pos, found = self._positions(np.array([sid], dtype=np.int64))
        if not found[0]:
            raise KeyError(sid)
        return int(self._start[pos[0]]), int(self._npages[pos[0]])

    def _positions(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Row of each id (clipped to a valid row) and whether it is a live span there."""
        return _positions(self._ids, self._live, self._rows, ids)

    def contains(self, ids: np.ndarray) -> np.ndarray:
        """Mask of the ids that are live."""
        n = self._rows
        if len(ids) and (n == 0 or ids.min() > self._ids[n - 1]):   # new ids past every row: none is live
            return np.zeros(len(ids), dtype=bool)
        return self._positions(ids)[1]

    def add(self, ids: np.ndarray, start: np.ndarray, npages: np.ndarray, nbytes: np.ndarray) -> None:
        """Add new spans. REQUIRES: the ids are distinct and none is live."""
        if len(ids) == 0:
            return
        n, k = self._rows, len(ids)
        self._reserve(n + k)
        if not _append_in_order(*self._columns(), n, ids, start, npages, nbytes):
            self._rebuild(ids, start, npages, nbytes)
            return
        self._rows = n + k

    def find(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Row of each id and whether it is live there (rows for ``take``)."""
        return self._positions(ids)

    def first_not_live(self, pos: np.ndarray, found: np.ndarray) -> int:
        """Index in a ``find`` result of the first id that is not live or repeats an earlier one; -1 if none."""
        return int(_first_not_live(self._live, pos, found))

    def pop(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Remove live spans: their (start, npages, nbytes) in the order of ``ids``.

        REQUIRES: the ids are distinct and live.
        """
        pos, found = self._positions(ids)
        assert found.all()
        return self.take(pos)

    def take(self, pos: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Remove the spans at rows ``pos`` (from ``find``): their (start, npages, nbytes).

        REQUIRES: the rows are distinct and live.
        """
        out = _take_rows(self._start, self._npages, self._nbytes, self._live, pos)
        self._dead += len(pos)
        if self._dead > max(self._rows // 2, _MIN_CAPACITY):
            self._compact()
        return out

    def lookup(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(start, npages) of the ids that are live, in the order of ``ids``; others are skipped."""
        pos, found = self._positions(ids)
        pos = pos[found]
        return self._start[pos], self._npages[pos]

    # ----------------------------------------------------------------------------------- storage

    def _columns(self) -> list[np.ndarray]:
        return [self._ids, self._start, self._npages, self._nbytes, self._live]

    def _reserve(self, rows: int) -> None:
        cap = len(self._ids)
        if rows <= cap:
            return
        cap = max(rows, 2 * cap)
        grown = []
        for col in self._columns():
            new = np.zeros(cap, dtype=col.dtype)
            new[: self._rows] = col[: self._rows]
            grown.append(new)
        self._ids, self._start, self._npages, self._nbytes, self._live = grown

    def _compact(self) -> None:
        """Drop dead rows (they keep the ids sorted until then)."""
        live = np.flatnonzero(self._live[: self._rows])
        for col in self._columns():
            col[: len(live)] = col[live]
        self._live[len(live): self._rows] = False
        self._rows, self._dead = len(live), 0

    def _rebuild(self, ids, start, npages, nbytes) -> None:
        """Merge out-of-order new spans in by sorting all live rows again."""
        self._compact()
        n = self._rows
        merged = [np.concatenate((col[:n], new)) for col, new in
                  zip(self._columns()[:4], (ids, start, npages, nbytes), strict=True)]
        order = np.argsort(merged[0], kind="stable")
        self._rows = 0
        self._reserve(len(order))
        for col, values in zip(self._columns()[:4], merged, strict=True):
            col[: len(order)] = values[order]
        self._live[: len(order)] = True
        self._rows = len(order)


@njit
def _positions(table_ids, live, n, ids):
    """Row of each id among the first n sorted table ids (np.searchsorted's, clipped to [0, n)) and whether
    it is live there."""
    pos = np.zeros(ids.shape[0], dtype=np.int64)
    found = np.zeros(ids.shape[0], dtype=np.bool_)
    if n == 0:
        return pos, found
    for i in range(ids.shape[0]):
        p = min(_search(table_ids, n, ids[i]), n - 1)
        pos[i] = p
        found[i] = table_ids[p] == ids[i] and live[p]
    return pos, found


@njit
def _append_in_order(table_ids, table_start, table_npages, table_nbytes, live, n, ids, start, npages, nbytes):
    """Append the new spans at row n if their ids ascend past every row's (True); else write nothing
    (False: the caller merges them in by sorting). REQUIRES: room for them."""
    if n and ids[0] <= table_ids[n - 1]:
        return False
    for i in range(1, ids.shape[0]):
        if ids[i] <= ids[i - 1]:
            return False
    for i in range(ids.shape[0]):
        table_ids[n + i], table_start[n + i] = ids[i], start[i]
        table_npages[n + i], table_nbytes[n + i], live[n + i] = npages[i], nbytes[i], True
    return True


@njit
def _first_not_live(live, pos, found):
    """``first_not_live``: each live row is cleared as its id is met, so a repeat finds it dead; the
    cleared rows are set live again."""
    bad, k = -1, 0
    for i in range(pos.shape[0]):
        if not found[i] or not live[pos[i]]:
            bad = i
            break
        live[pos[i]] = False
        k = i + 1
    for i in range(k):
        live[pos[i]] = True
    return bad


@njit
def _take_rows(table_start, table_npages, table_nbytes, live, pos):
    """(start, npages, nbytes) of the rows ``pos``, which are marked dead: one pass instead of a numpy
    gather per column."""
    start = np.empty(pos.shape[0], dtype=np.int64)
    npages = np.empty(pos.shape[0], dtype=np.int64)
    nbytes = np.empty(pos.shape[0], dtype=np.int64)
    for i in range(pos.shape[0]):
        p = pos[i]
        start[i], npages[i], nbytes[i] = table_start[p], table_npages[p], table_nbytes[p]
        live[p] = False
    return start, npages, nbytes


@inline
def _search(a, n, x):
    """np.searchsorted(a[:n], x) (leftmost insertion point). Ids are handed out in order, so a row's id is
    close to linear in the row: the search starts at the interpolated row and gallops out from it, touching
    a cache line or two instead of the log2(n) lines of a plain bisection of a table gone cold."""
    lo, hi = 0, n   # the answer lies in [lo, hi]
    if x <= a[0]:
        return 0
    if x > a[n - 1]:
        return n
    g = int((x - a[0]) * (n - 1) // max(a[n - 1] - a[0], 1))   # a[0] < x <= a[n - 1]
    step = 1
    if a[g] < x:   # answer > g: gallop right
        lo = g + 1
        while lo + step - 1 < n and a[lo + step - 1] < x:
            lo += step
            step *= 2
        hi = min(lo + step - 1, n)
    else:          # answer <= g: gallop left
        hi = g
        while hi - step >= 0 and a[hi - step] >= x:
            hi -= step
            step *= 2
        lo = max(hi - step + 1, 0)
    return first_at_least(a, lo, hi, x)
