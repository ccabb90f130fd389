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

from ..jit import njit

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
        if rows.size == 0:
            return
        self._reserve(self.n + rows.size)
        self.n = _append(self.ids, self.cls, self.death_s, self.n, self.units_per_class,
                         rows.ids, rows.cls, rows.death_s)

    def pop_before(self, t_s: float) -> Rows:
        """Remove and return every unit whose death time is before `t_s`."""
        ids, cls, death_s, self.n = _pop_before(self.ids, self.cls, self.death_s, self.n, self.units_per_class,
                                                t_s)
        return Rows(ids, cls, death_s)

    def clear(self) -> Rows:
        """Remove and return every unit."""
        rows = Rows(self.ids[: self.n].copy(), self.cls[: self.n].copy(), self.death_s[: self.n].copy())
        self.n = 0
        self.units_per_class[:] = 0
        return rows

    def column(self, name: str) -> np.ndarray:
        """One column over the live rows (a copy)."""
        return getattr(self, name)[: self.n].copy()

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
        if rows.size == 0:
            return
        near, far = self.near, self.far
        near._reserve(near.n + rows.size)
        far._reserve(far.n + rows.size)
        near.n, far.n = _append_split(near.ids, near.cls, near.death_s, near.n, near.units_per_class,
                                      far.ids, far.cls, far.death_s, far.n, far.units_per_class,
                                      rows.ids, rows.cls, rows.death_s, self.horizon_end_s)

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


@njit
def _append(ids, cls, death_s, n, per_class, new_ids, new_cls, new_death_s):
    """Write rows after the first n (capacity reserved) and count them per class; returns the new n."""
    for i in range(new_ids.shape[0]):
        n = _put_row(ids, cls, death_s, n, per_class, new_ids[i], new_cls[i], new_death_s[i])
    return n


@njit
def _put_row(ids, cls, death_s, n, per_class, unit_id, unit_cls, unit_death_s):
    """Write one row at index n and count it in its class; returns n + 1."""
    ids[n], cls[n], death_s[n] = unit_id, unit_cls, unit_death_s
    per_class[unit_cls] += 1
    return n + 1


@njit
def _pop_before(ids, cls, death_s, n, per_class, t_s):
    """Remove the rows dying before t_s and return them in table order: (ids, cls, death_s, new n)."""
    dead = np.flatnonzero(death_s[:n] < t_s)
    out_ids, out_cls, out_death = ids[dead], cls[dead], death_s[dead]
    for c in out_cls:
        per_class[c] -= 1
    # Swap-remove: the rows past the new end that survive fill the holes below it, both in order.
    new_n = n - dead.shape[0]
    dying = np.zeros(n - new_n, dtype=np.bool_)
    for d in dead:
        if d >= new_n:
            dying[d - new_n] = True
    j = new_n
    for d in dead:
        if d >= new_n:
            break
        while dying[j - new_n]:
            j += 1
        ids[d], cls[d], death_s[d] = ids[j], cls[j], death_s[j]
        j += 1
    return out_ids, out_cls, out_death, new_n


@njit
def _append_split(n_ids, n_cls, n_death, n_n, n_per_class, f_ids, f_cls, f_death, f_n, f_per_class,
                  ids, cls, death_s, horizon_s):
    """Append rows dying before ``horizon_s`` to the near table and the rest to the far one (in order,
    capacity reserved); returns the new row counts."""
    for i in range(ids.shape[0]):
        if death_s[i] < horizon_s:
            n_n = _put_row(n_ids, n_cls, n_death, n_n, n_per_class, ids[i], cls[i], death_s[i])
        else:
            f_n = _put_row(f_ids, f_cls, f_death, f_n, f_per_class, ids[i], cls[i], death_s[i])
    return n_n, f_n
