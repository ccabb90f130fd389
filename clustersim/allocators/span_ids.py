"""The span id checks of ``alloc`` and ``free``: an id live already or repeated in a batch.

The common new batch (fresh ids in ascending order) is checked by numpy; only one with a problem is walked
id by id, to name the first offending id in the ValueError. A free batch's ids are checked by the span
table's compiled pass (``SpanTable.first_not_live``), which names the first bad one itself.
"""

from __future__ import annotations

import numpy as np


def check_new_ids(live: np.ndarray, direct: dict[int, object], ids: np.ndarray) -> None:
    """A ValueError names the first id that is live already (``live`` per id, or in ``direct``) or repeated
    within the batch."""
    if not direct and not live.any() and _distinct(ids):
        return   # the common case, checked without a Python step per id
    seen: set[int] = set()
    for sid, is_live in zip(ids.tolist(), live.tolist(), strict=True):
        if is_live or sid in direct or sid in seen:
            raise ValueError(f"span id {sid} is already allocated")
        seen.add(sid)


def _distinct(ids: np.ndarray) -> bool:
    """No id occurs twice: at once for ascending ids (a workload numbers its births in order), else by a set."""
    return bool((ids[1:] > ids[:-1]).all()) or len(set(ids.tolist())) == len(ids)


def check_distinct(ids: list[int]) -> None:
    """A ValueError names the first id that occurs twice in ``ids``."""
    seen = set()
    for sid in ids:
        if sid in seen:
            raise ValueError(f"span id {sid} is not allocated")
        seen.add(sid)
