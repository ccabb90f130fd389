"""Request latency: log-bucketed mergeable histograms and the per-request latency model.

Histograms (HdrHistogram's idea, DDSketch's log buckets): bucket i covers [LO_S * GAMMA**i, LO_S *
GAMMA**(i+1)) with GAMMA = (1 + REL_ERR) / (1 - REL_ERR), so reporting a bucket's midpoint is within 1% of
any value in it; counts are float (sampled requests carry weights) and histograms merge by addition across
processes, nodes and runs.

Latency of one request = base service time x TLB factor(heap THP coverage) + the stalls that land on it
(docs/model.md). Stalls are discrete events (a THP fault, a direct-reclaim or compaction stall, memcg
high throttling, swap-in, an inline madvise, a collapse) each assigned to one request drawn at random; small
per-request costs (4 KiB faults) are spread evenly. To bound work per tick, requests without a discrete
stall are represented by at most SAMPLED_REQUESTS draws, each weighted for the requests it stands for.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..jit import njit

REL_ERR = 0.01
GAMMA = (1 + REL_ERR) / (1 - REL_ERR)
LO_S = 1e-6          # 1 us: anything faster lands in bucket 0
HI_S = 1e4           # 10^4 s: the last bucket holds everything slower
NBUCKETS = math.ceil(math.log(HI_S / LO_S) / math.log(GAMMA)) + 1
SAMPLED_REQUESTS = 256
_LOG_GAMMA = math.log(GAMMA)
_LOG_HI = math.log(HI_S / LO_S) + 2 * _LOG_GAMMA   # past the last bucket's lower edge


def bucket_of(seconds: np.ndarray) -> np.ndarray:
    """Bucket index of each latency."""
    return _buckets(_log_lo(seconds))


def _log_lo(seconds) -> np.ndarray:
    """ln(max(seconds, LO_S) / LO_S): numpy's log, so that bucket edges do not depend on the compiler's."""
    return np.log(np.maximum(np.asarray(seconds, dtype=np.float64), LO_S) / LO_S)


@njit
def _bucket(log_lo: float) -> int:
    """Bucket of one latency given ln(latency / LO_S) (>= 0); too slow or not a number: the last bucket."""
    if not log_lo < _LOG_HI:
        return NBUCKETS - 1
    return min(np.int64(log_lo / _LOG_GAMMA), NBUCKETS - 1)


@njit
def _buckets(log_lo):
    out = np.empty(log_lo.shape[0], dtype=np.int64)
    for i in range(log_lo.shape[0]):
        out[i] = _bucket(log_lo[i])
    return out


@njit
def _add_weighted(counts, log_lo, weights, scratch):
    """counts += np.bincount(buckets, weights, minlength=NBUCKETS) with the same sums in the same order:
    each bucket's weights into ``scratch`` (all zeros, left so), then each bucket's total onto its count.
    One weight applies to every latency."""
    buckets = _buckets(log_lo)
    for i in range(buckets.shape[0]):
        scratch[buckets[i]] += weights[i] if weights.shape[0] > 1 else weights[0]
    for b in buckets:
        counts[b] += scratch[b]   # a bucket listed again adds 0.0 the second time
        scratch[b] = 0.0


def bucket_bounds_s() -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper edges of every bucket, in seconds."""
    lo = LO_S * GAMMA ** np.arange(NBUCKETS)
    return lo, lo * GAMMA


@dataclass
class LatencyHistogram:
    """Weighted counts per log bucket; ``add`` and ``merge`` keep it exact up to bucket resolution."""

    counts: np.ndarray = field(default_factory=lambda: np.zeros(NBUCKETS))
    # Per-bucket sums of one add(), all zeros between calls (its own, so histograms never share state).
    _scratch: np.ndarray = field(default_factory=lambda: np.zeros(NBUCKETS), repr=False, compare=False)

    def add(self, seconds: np.ndarray, weight: float | np.ndarray = 1.0) -> None:
        log_lo = _log_lo(seconds).reshape(-1)
        weights = np.asarray(weight, dtype=np.float64).reshape(-1)
        if len(weights) != 1 and len(weights) != len(log_lo):
            raise ValueError(f"weight: {len(weights)} weights for {len(log_lo)} latencies")
        _add_weighted(self.counts, log_lo, weights, self._scratch)

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


def serve(rng: np.random.Generator, base_s: np.ndarray, n_requests: int, tlb: float, smooth_s: float,
          stalls_s: np.ndarray, hist: LatencyHistogram) -> None:
    """Record ``n_requests`` latencies: base x tlb + smooth share, plus each stall on a distinct request.

    ``base_s`` holds sampled base service times (at least one); stalls beyond n_requests pile onto
    requests already stalled, which is what happens when a tick's stalls outnumber its requests.
    """
    if n_requests <= 0:
        return
    smooth = smooth_s / n_requests
    k = min(len(stalls_s), n_requests)
    if k:
        hit = np.zeros(k)
        np.add.at(hit, np.arange(len(stalls_s)) % k, stalls_s)
        base_hit = base_s[rng.integers(0, len(base_s), size=k)]
        hist.add(base_hit * tlb + smooth + hit)
    rest = n_requests - k
    if rest:
        sample = base_s[: min(len(base_s), rest)]
        hist.add(sample * tlb + smooth, rest / len(sample))
