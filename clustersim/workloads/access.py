"""Which live spans a process touches often (hot) in a step, for reclaim and swap-in decisions.

Each span id gets a fixed key in [0, 1) from a salted integer hash (splitmix64); the salt is the one draw from
the generator, so the choice is deterministic given the rng and costs one vectorised hash per call. A span is
hot when its key falls in a window of width `hot_share` that slides round the unit circle at `drift_per_s`, so
the hot set changes gradually (0 keeps it fixed). Because keys do not depend on size, the hot share of live
bytes matches `hot_share` up to sampling noise.

Left out: access frequency within the hot set (skew), correlation of hotness with size class or age, and
the page-level pattern inside a span (a hot span counts as wholly hot).
"""

from __future__ import annotations

import numpy as np

from ..jit import njit

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
DEFAULT_HOT_SHARE = 0.2   # share of the live heap touched often: the 80/20 rule as a starting point
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)


class AccessPattern:
    """Hot/cold choice over span ids.

    Args:
        rng: generator; one draw (the hash salt) at construction.
        hot_share: share of live spans (and so of live bytes) that is hot, in [0, 1].
        drift_per_s: how far the hot window moves per second, as a share of all keys (0 = fixed hot set).
    """

    def __init__(self, rng: np.random.Generator, *, hot_share: float = DEFAULT_HOT_SHARE,
                 drift_per_s: float = 0.0) -> None:
        if not 0.0 <= hot_share <= 1.0:
            raise ValueError(f"hot_share: {hot_share!r} must be in [0, 1]")
        if not (np.isfinite(drift_per_s) and drift_per_s >= 0):
            raise ValueError(f"drift_per_s: {drift_per_s!r} must be a finite share per second >= 0")
        self.hot_share = hot_share
        self.drift_per_s = drift_per_s
        self._salt = np.uint64(rng.integers(0, np.iinfo(np.int64).max, dtype=np.int64))

    def keys(self, ids: np.ndarray) -> np.ndarray:
        """Fixed key in [0, 1) per span id."""
        return _splitmix_keys(np.asarray(ids, dtype=np.int64).reshape(-1), self._salt)

    def hot_mask(self, ids: np.ndarray, t_s: float) -> np.ndarray:
        """True for the ids that are hot at time t_s."""
        keys = self.keys(ids)
        if self.drift_per_s == 0:   # keys lie in [0, 1), where shifting by 0 and wrapping changes nothing
            return keys < self.hot_share
        return np.mod(keys - self.drift_per_s * t_s, 1.0) < self.hot_share

    def hot_ids(self, ids: np.ndarray, t_s: float) -> np.ndarray:
        return np.asarray(ids)[self.hot_mask(ids, t_s)]


@njit
def _splitmix_keys(ids, salt):
    """splitmix64 of each id xor the salt, its top 53 bits as a float in [0, 1) (uint64 arithmetic wraps)."""
    out = np.empty(ids.shape[0], dtype=np.float64)
    for i in range(ids.shape[0]):
        z = np.uint64(ids[i]) ^ salt
        z = z + _GOLDEN
        z = (z ^ (z >> np.uint64(30))) * _MIX1
        z = (z ^ (z >> np.uint64(27))) * _MIX2
        z = z ^ (z >> np.uint64(31))
        out[i] = np.float64(z >> np.uint64(11)) * (1.0 / (1 << 53))
    return out
