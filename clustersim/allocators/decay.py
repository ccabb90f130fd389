"""jemalloc's smoothstep decay (src/decay.c, include/jemalloc/internal/smoothstep.h), exactly.

A decay time is cut into SMOOTHSTEP_NSTEPS = 200 epochs. At each epoch advance the backlog shifts by the
epochs elapsed, the newest slot gets the pages that became dirty since the last advance
(``current - nunpurged``), and the allowed number of unpurged pages is ``sum(backlog[i] * h[i]) >> 24``
with ``h`` the "smoother" step 6x^5 - 15x^4 + 10x^3 at x = (i+1)/200, stored in 24-bit fixed point as
``smoothstep.sh smoother 200 24 3 15`` generates it. Pages above the limit are purged.

The backlog shift and the limit's 200-term sum run as one compiled call per epoch advance (``_advance``):
the limit is recomputed at every allocation or free batch of a process without a background thread.

Left out: the random jitter of the epoch deadline (deterministic here: the deadline is the next epoch).
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np

from clustersim.jit import njit

SMOOTHSTEP_NSTEPS = 200
SMOOTHSTEP_BFP = 24
_Y_DECIMALS = 15  # smoothstep.sh computes y with dc at 15 decimals, then truncates 2^24 * y


def smootherstep(x: Fraction) -> Fraction:
    """6x^5 - 15x^4 + 10x^3."""
    return x * x * x * (x * (6 * x - 15) + 10)


def _h_step(step: int) -> int:
    y = smootherstep(Fraction(step, SMOOTHSTEP_NSTEPS))
    y_truncated = Fraction(int(y * 10**_Y_DECIMALS), 10**_Y_DECIMALS)
    return int(y_truncated * (1 << SMOOTHSTEP_BFP))


H_STEPS: tuple[int, ...] = tuple(_h_step(s) for s in range(1, SMOOTHSTEP_NSTEPS + 1))
_H = np.array(H_STEPS, dtype=np.int64)   # sum(backlog x h) < 200 * 2**24 * pages: below 2**63 for pages < 2**31


@njit
def _advance(backlog, h, nadvance, new_pages):
    """decay_backlog_update then decay_npages_limit_get: shift the backlog by ``nadvance`` epochs, put
    ``new_pages`` in the newest slot, and return sum(backlog[i] * h[i]) >> SMOOTHSTEP_BFP."""
    n = backlog.shape[0]
    keep = max(n - nadvance, 0)
    for i in range(keep):
        backlog[i] = backlog[i + nadvance]
    backlog[keep:] = 0
    backlog[n - 1] = new_pages
    total = 0
    for i in range(n):
        total += backlog[i] * h[i]
    return total >> SMOOTHSTEP_BFP


class Decay:
    """decay_t: how many dirty (or muzzy) pages may stay unpurged. ``decay_ms``: 0 purges at once,
    -1 never purges."""

    def __init__(self, decay_ms: int, now_s: float) -> None:
        self.decay_ms = decay_ms
        self.interval_s = decay_ms / 1000.0 / SMOOTHSTEP_NSTEPS if decay_ms > 0 else 0.0
        self.epoch_s = now_s
        self.backlog = np.zeros(SMOOTHSTEP_NSTEPS, dtype=np.int64)
        self.nunpurged = 0
        self.npages_limit = 0

    def maybe_advance_epoch(self, now_s: float, npages_current: int) -> bool:
        """decay_maybe_advance_epoch: True when at least one epoch passed (the limit was recomputed)."""
        if self.decay_ms <= 0 or now_s < self.epoch_s + self.interval_s:
            return False
        nadvance = int((now_s - self.epoch_s) / self.interval_s)
        self.epoch_s += nadvance * self.interval_s
        new_pages = max(0, npages_current - self.nunpurged)
        self.npages_limit = int(_advance(self.backlog, _H, nadvance, new_pages))
        self.nunpurged = max(self.npages_limit, npages_current)
        return True
