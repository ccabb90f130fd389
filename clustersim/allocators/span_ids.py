"""The span id checks of ``alloc`` and ``free``: an id live already, repeated in a batch, or not allocated.

The common batch (fresh ids, none repeated) is checked with one numpy test and one set; only a batch with
a problem is walked id by id, to name the first offending id in the ValueError.
"""

from __future__ import annotations

import numpy as np


def check_new_ids(live: np.ndarray, direct: dict[int, object], ids: list[int]) -> None:
    """A ValueError names the first id that is live already (``live`` per id, or in ``direct``) or repeated
    within the batch."""
    if not direct and not live.any() and len(set(ids)) == len(ids):
        return   # the common case, checked without a Python step per id
    seen: set[int] = set()
    for sid, is_live in zip(ids, live.tolist(), strict=True):
        if is_live or sid in direct or sid in seen:
            raise ValueError(f"span id {sid} is already allocated")
        seen.add(sid)


def check_live_ids(ids: list[int], live: list[bool]) -> None:
    """A ValueError names the first id that is not a live heap span (or is freed twice in the batch)."""
    if all(live) and len(set(ids)) == len(ids):
        return
    seen = set()
    for sid, is_live in zip(ids, live, strict=True):
        if not is_live or sid in seen:
            raise ValueError(f"span id {sid} is not allocated")
        seen.add(sid)


def check_distinct(ids: list[int]) -> None:
    """A ValueError names the first id that occurs twice in ``ids``."""
    seen = set()
    for sid in ids:
        if sid in seen:
            raise ValueError(f"span id {sid} is not allocated")
        seen.add(sid)
