"""A sliding window of per-slot minimum and maximum, one row per time slot (tcmalloc's MinMaxTracker,
timeseries_tracker.h): the HugeCache's demand window and the filler's demand history both keep one.

A table is int64 rows of (slot, low, high) in slot order; the caller holds its row count and makes room
for one more row before each call.
"""

from __future__ import annotations

from clustersim.jit import inline

SLOT, LOW, HIGH = 0, 1, 2   # columns: the slot (an epoch, a second), the least and the most value seen in it


@inline
def track_min_max(table, n, slot, value, first_kept):
    """Fold ``value`` into ``slot``'s row (a new last row for a new slot), then forget rows whose slot is
    below ``first_kept``; returns the new row count."""
    if n and table[n - 1, SLOT] == slot:
        table[n - 1, LOW] = min(table[n - 1, LOW], value)
        table[n - 1, HIGH] = max(table[n - 1, HIGH], value)
    else:
        table[n, SLOT], table[n, LOW], table[n, HIGH] = slot, value, value
        n += 1
    old = 0
    while old < n and table[old, SLOT] < first_kept:
        old += 1
    for i in range(old, n):
        table[i - old] = table[i]
    return n - old
