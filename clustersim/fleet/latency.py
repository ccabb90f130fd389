"""Request latency: log-bucketed mergeable histograms.

Histograms (HdrHistogram's idea, DDSketch's log buckets): bucket i covers [EDGES_S[i], EDGES_S[i + 1]) with
EDGES_S[i] = LO_S * GAMMA**i and GAMMA = (1 + REL_ERR) / (1 - REL_ERR), so reporting a bucket's midpoint is
within 1% of any value in it; counts are float (a weight per value) and histograms merge by addition across
processes, nodes and runs. A value's bucket is found against the edges themselves (a log gives the first
guess, the edges decide), so it does not depend on how a compiler evaluates the log. The requests whose
response times fill them are simulated in ``queue.py`` (docs/model.md, "Requests and latency").
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..bits import float_bits
from ..jit import njit

REL_ERR = 0.01
GAMMA = (1 + REL_ERR) / (1 - REL_ERR)
LO_S = 1e-6          # 1 us: anything faster lands in bucket 0
HI_S = 1e4           # 10^4 s: the last bucket holds everything slower
NBUCKETS = math.ceil(math.log(HI_S / LO_S) / math.log(GAMMA)) + 1
_LOG_GAMMA = math.log(GAMMA)
EDGES_S = LO_S * GAMMA ** np.arange(NBUCKETS + 1)   # lower edge of each bucket, then the last one's upper


def bucket_of(seconds: np.ndarray) -> np.ndarray:
    """Bucket index of each latency."""
    return _buckets(np.asarray(seconds, dtype=np.float64).reshape(-1))


def _exact_bucket(x: float) -> int:
    """The bucket whose edges hold ``x`` (EDGES_S[1] <= x < EDGES_S[-2]), by bisection over the edges."""
    return int(np.searchsorted(EDGES_S, x, side="right")) - 1


# First guesses without a logarithm: a value's binary exponent and the top bits of its mantissa pick a
# cell of a table; each cell spans 1/_CELLS_PER_OCTAVE of an octave, finer than a bucket (about 35 per
# octave), and holds the bucket of its lower end, so the edges move the guess at most one bucket up.
# HdrHistogram finds its buckets from the same bits. For a positive double, its bits shifted right by
# 52 - 7 are the biased exponent followed by the mantissa's top 7 bits: the cell, up to an offset.
_CELLS_PER_OCTAVE = 128
_CELL_SHIFT = 52 - 7
_E_MIN = math.frexp(EDGES_S[1])[1]
_E_MAX = math.frexp(EDGES_S[NBUCKETS - 1])[1]
_FIRST_CELL = (_E_MIN + 1022) * _CELLS_PER_OCTAVE   # frexp's exponent e is the biased exponent - 1022
_GUESS = np.array([_exact_bucket(max(math.ldexp(0.5 + k / (2 * _CELLS_PER_OCTAVE), e), EDGES_S[1]))
                   for e in range(_E_MIN, _E_MAX + 1) for k in range(_CELLS_PER_OCTAVE)], dtype=np.int64)


@njit
def bucket(x: float) -> int:
    """Bucket of one latency: below LO_S bucket 0; too slow or not a number: the last bucket."""
    if not x < EDGES_S[NBUCKETS - 1]:
        return NBUCKETS - 1
    if not x >= EDGES_S[1]:
        return 0
    b = _GUESS[(float_bits(x) >> _CELL_SHIFT) - _FIRST_CELL]
    while x < EDGES_S[b]:
        b -= 1
    while x >= EDGES_S[b + 1]:
        b += 1
    return b


@njit
def _buckets(seconds):
    out = np.empty(seconds.shape[0], dtype=np.int64)
    for i in range(seconds.shape[0]):
        out[i] = bucket(seconds[i])
    return out


@njit
def _add_weighted(counts, seconds, weights, scratch):
    """counts += np.bincount(buckets, weights, minlength=NBUCKETS) with the same sums in the same order:
    each bucket's weights into ``scratch`` (all zeros, left so), then each bucket's total onto its count.
    One weight applies to every latency."""
    buckets = _buckets(seconds)
    for i in range(buckets.shape[0]):
        scratch[buckets[i]] += weights[i] if weights.shape[0] > 1 else weights[0]
    for b in buckets:
        counts[b] += scratch[b]   # a bucket listed again adds 0.0 the second time
        scratch[b] = 0.0


def bucket_bounds_s() -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper edges of every bucket, in seconds."""
    return EDGES_S[:-1].copy(), EDGES_S[1:].copy()


@dataclass
class LatencyHistogram:
    """Weighted counts per log bucket; ``add`` and ``merge`` keep it exact up to bucket resolution."""

    counts: np.ndarray = field(default_factory=lambda: np.zeros(NBUCKETS))
    # Per-bucket sums of one add(), all zeros between calls (its own, so histograms never share state).
    _scratch: np.ndarray = field(default_factory=lambda: np.zeros(NBUCKETS), repr=False, compare=False)

    def add(self, seconds: np.ndarray, weight: float | np.ndarray = 1.0) -> None:
        values = np.asarray(seconds, dtype=np.float64).reshape(-1)
        weights = np.asarray(weight, dtype=np.float64).reshape(-1)
        if len(weights) != 1 and len(weights) != len(values):
            raise ValueError(f"weight: {len(weights)} weights for {len(values)} latencies")
        _add_weighted(self.counts, values, weights, self._scratch)

    def merge(self, other: LatencyHistogram) -> None:
        self.counts += other.counts

    @property
    def total(self) -> float:
        return float(self.counts.sum())

    def quantile_s(self, q: float) -> float:
        """The q-quantile (0..1), reported at its bucket's midpoint (within REL_ERR); NaN when empty."""
        total = self.total
        if total <= 0:
            return float("nan")
        idx = int(np.searchsorted(np.cumsum(self.counts), q * total, side="left"))
        return LO_S * GAMMA ** min(idx, NBUCKETS - 1) * (1 + REL_ERR)   # within REL_ERR of the whole bucket

    def mean_s(self) -> float:
        lo, hi = bucket_bounds_s()
        return float((self.counts * (lo + hi) / 2).sum() / self.total) if self.total else float("nan")
