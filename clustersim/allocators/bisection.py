"""The one binary search of the compiled allocator code: the first index of a sorted range holding a key.

The range sets, the sorted blocks and the span table all keep sorted int64 keys and ask the same question,
so they share this loop; it takes bounds rather than a slice, because a slice made inside a per-span loop
is a new array object each time.
"""

from __future__ import annotations

from clustersim.jit import inline


@inline
def first_at_least(a, lo, hi, x):
    """First index i in [lo, hi) with a[i] >= x, hi if none (``a[lo:hi]`` ascending): np.searchsorted's
    left insertion point."""
    while lo < hi:
        mid = (lo + hi) >> 1
        if a[mid] < x:
            lo = mid + 1
        else:
            hi = mid
    return lo
