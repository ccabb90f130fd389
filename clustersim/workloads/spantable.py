"""The live allocation units of one process, as a structure of numpy arrays.

Each row is one unit: its id, its class and its death time; bytes and span length follow from the class, so
live totals are kept as per-class counts. Removal moves the last rows into the holes (swap-remove), so it
costs work proportional to the number of deaths; rows are not kept in any order.

Finding the dead is one comparison over a table. `LiveUnits` keeps that table small: units dying before a
horizon a few seconds ahead sit in a `near` table scanned every step, the rest in a `far` table scanned only
when the horizon moves. A plain single table was about twice as slow on a 3 GiB heap; a sorted table or a
heap would need per-insert work that numpy cannot vectorise.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

_COLUMNS = (("ids", np.int64), ("cls", np.int64), ("death_s", np.float64))


@dataclass
class Rows:
    """Units taken out of (or put into) a table, in table order."""

    ids: np.ndarray
    cls: np.ndarray
    death_s: np.ndarray

    @property
    def size(self) -> int:
        return int(self.ids.size)

    def select(self, mask: np.ndarray) -> Rows:
        return Rows(self.ids[mask], self.cls[mask], self.death_s[mask])


class SpanTable:
    """Live units of `n_classes` classes; grows by doubling and never shrinks."""

    def __init__(self, n_classes: int, capacity: int = 1024) -> None:
        assert capacity >= 1 and n_classes >= 1
        self.n = 0
        self.units_per_class = np.zeros(n_classes, dtype=np.int64)
        self.ids = np.empty(capacity, dtype=np.int64)
        self.cls = np.empty(capacity, dtype=np.int64)
        self.death_s = np.empty(capacity, dtype=np.float64)

    def add(self, rows: Rows) -> None:
        self._reserve(self.n + rows.size)
        lo, hi = self.n, self.n + rows.size
        self.ids[lo:hi] = rows.ids
        self.cls[lo:hi] = rows.cls
        self.death_s[lo:hi] = rows.death_s
        self.n = hi
        self.units_per_class += np.bincount(rows.cls, minlength=self.units_per_class.size)

    def pop_before(self, t_s: float) -> Rows:
        """Remove and return every unit whose death time is before `t_s`."""
        return self._remove(np.flatnonzero(self.death_s[: self.n] < t_s))

    def clear(self) -> Rows:
        """Remove and return every unit."""
        rows = Rows(self.ids[: self.n].copy(), self.cls[: self.n].copy(), self.death_s[: self.n].copy())
        self.n = 0
        self.units_per_class[:] = 0
        return rows

    def column(self, name: str) -> np.ndarray:
        """One column over the live rows (a copy)."""
        return getattr(self, name)[: self.n].copy()

    def _remove(self, dead: np.ndarray) -> Rows:
        rows = Rows(self.ids[dead], self.cls[dead], self.death_s[dead])
        if dead.size:
            self.units_per_class -= np.bincount(rows.cls, minlength=self.units_per_class.size)
            self._fill_holes(dead)
        return rows

    def _fill_holes(self, dead: np.ndarray) -> None:
        # `dead` is ascending. Rows at or past the new end are dropped; the survivors among them move into
        # the holes below the new end, one for one.
        new_n = self.n - dead.size
        holes = dead[dead < new_n]
        tail_alive = np.ones(dead.size, dtype=bool)
        tail_alive[dead[dead >= new_n] - new_n] = False
        fillers = np.arange(new_n, self.n)[tail_alive]
        for column in (self.ids, self.cls, self.death_s):
            column[holes] = column[fillers]
        self.n = new_n

    def _reserve(self, needed: int) -> None:
        capacity = self.ids.size
        if needed <= capacity:
            return
        while capacity < needed:
            capacity *= 2
        for name, dtype in _COLUMNS:
            new = np.empty(capacity, dtype=dtype)
            new[: self.n] = getattr(self, name)[: self.n]
            setattr(self, name, new)


class LiveUnits:
    """Live units split at a moving horizon into a `near` table (scanned each step) and a `far` table."""

    def __init__(self, n_classes: int, horizon_s: float = 16.0) -> None:
        assert horizon_s > 0
        self.horizon_s = horizon_s
        self.horizon_end_s = -np.inf
        self.near = SpanTable(n_classes)
        self.far = SpanTable(n_classes)

    @property
    def n(self) -> int:
        return self.near.n + self.far.n

    @property
    def units_per_class(self) -> np.ndarray:
        return self.near.units_per_class + self.far.units_per_class

    def add(self, rows: Rows) -> None:
        soon = rows.death_s < self.horizon_end_s
        self.near.add(rows.select(soon))
        self.far.add(rows.select(~soon))

    def pop_before(self, t_s: float) -> Rows:
        """Remove and return every unit whose death time is before `t_s`."""
        if t_s > self.horizon_end_s:
            # INVARIANT: every far unit dies at or after horizon_end_s.
            self.horizon_end_s = t_s + self.horizon_s
            self.near.add(self.far.pop_before(self.horizon_end_s))
        return self.near.pop_before(t_s)

    def clear(self) -> Rows:
        near, far = self.near.clear(), self.far.clear()
        return Rows(*(np.concatenate([getattr(near, f), getattr(far, f)]) for f in ("ids", "cls", "death_s")))

    def column(self, name: str) -> np.ndarray:
        return np.concatenate([self.near.column(name), self.far.column(name)])
