"""SpanTable: the live spans of a heap by id (first page, pages, requested bytes), kept in numpy.

The fleet allocates and frees hundreds of spans per process per tick; a Python dict costs a few lookups per
span on every path, where sorted id columns answer a whole batch with one ``np.searchsorted``. Workloads
number spans in birth order, so a batch of new ids usually lands past the last one and is appended; only
out-of-order ids pay a sort.
"""

from __future__ import annotations

import numpy as np

from .ranges import EMPTY


class SpanTable:
    """id -> (start page, pages, requested bytes) for live heap spans; ids sorted ascending."""

    def __init__(self) -> None:
        self.ids = EMPTY
        self.start = EMPTY
        self.npages = EMPTY
        self.nbytes = EMPTY

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, sid: int) -> tuple[int, int]:
        """(start page, pages) of one live span (for tests and debugging; batches use ``lookup``)."""
        pos, found = self._positions(np.array([sid], dtype=np.int64))
        if not found[0]:
            raise KeyError(sid)
        return int(self.start[pos[0]]), int(self.npages[pos[0]])

    def _positions(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Where each id is or would go, and whether it is there."""
        pos = np.searchsorted(self.ids, ids)
        if len(self.ids) == 0:
            return pos, np.zeros(len(ids), dtype=bool)
        found = self.ids[np.minimum(pos, len(self.ids) - 1)] == ids
        return pos, found

    def contains(self, ids: np.ndarray) -> np.ndarray:
        """Mask of the ids that are live."""
        return self._positions(ids)[1]

    def add(self, ids: np.ndarray, start: np.ndarray, npages: np.ndarray, nbytes: np.ndarray) -> None:
        """Add new spans. REQUIRES: the ids are distinct and none is live."""
        cols = [np.concatenate((old, new)) for old, new in
                ((self.ids, ids), (self.start, start), (self.npages, npages), (self.nbytes, nbytes))]
        in_order = len(ids) == 0 or ((len(self.ids) == 0 or ids[0] > self.ids[-1])
                                     and bool((ids[1:] > ids[:-1]).all()))
        if not in_order:
            order = np.argsort(cols[0], kind="stable")
            cols = [c[order] for c in cols]
        self.ids, self.start, self.npages, self.nbytes = cols

    def pop(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Remove live spans: their (start, npages, nbytes) in the order of ``ids``.

        REQUIRES: the ids are distinct and live.
        """
        pos, found = self._positions(ids)
        assert found.all()
        out = self.start[pos], self.npages[pos], self.nbytes[pos]
        keep = np.ones(len(self.ids), dtype=bool)
        keep[pos] = False
        self.ids, self.start, self.npages, self.nbytes = (
            self.ids[keep], self.start[keep], self.npages[keep], self.nbytes[keep])
        return out

    def lookup(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(start, npages) of the ids that are live, in the order of ``ids``; others are skipped."""
        pos, found = self._positions(ids)
        pos = pos[found]
        return self.start[pos], self.npages[pos]
