"""Requests on worker threads: Poisson arrivals, one FCFS queue, ``threads`` servers, stalls and freezes.

The one request model of the fleet (docs/model.md, "Requests and latency"). Every request is simulated, in
compiled code, by the multi-server Lindley recursion of Kiefer and Wolfowitz (1955): the state is each
thread's next-free time; an arrival at ``a`` takes the first idle thread (else the earliest-free one),
starts at ``max(a, free)`` and frees it ``service`` later. The free times persist across ticks in ``RequestQueue``.

Two kinds of stall enter the recursion:

- a per-thread stall (direct reclaim or compaction, memory.high throttling, a swap-in, a THP fault, a cache
  refill) happens in the thread serving at that moment: it is added to the service of the first request
  that starts at or after the stall's time, and what queues behind that thread waits for it;
- a whole-process freeze (a collapse holding the mm's lock for write) stops every thread from its start
  for its duration. It is exact through a change of clock: in "process time" the freezes are cut out,
  the recursion runs there, and starts and completions are mapped back by adding the freezes before them.

A request whose wait exceeds ``timeout`` is dropped (it leaves the queue unserved) and counted.
Simplification: a freeze of a later tick does not stretch a request that started before that tick ended.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..jit import inline, njit
from ..pcg64 import State, next_double, poisson, standard_exponential, standard_normal, state_for
from .latency import LatencyHistogram, bucket

_Z99 = 2.3263478740408408   # standard normal quantile at 0.99
_EMPTY = np.empty(0)


def lognormal_sigma(median_s: float, p99_s: float) -> float:
    """Log-space sd of the lognormal through (median, p99); 0 (a fixed time) when p99 <= median."""
    return math.log(p99_s / median_s) / _Z99 if p99_s > median_s else 0.0


@njit
def _merge_freezes(start, length):
    """Sorted freeze starts made non-overlapping: one that begins inside another waits for its end (the
    lock is held by one holder at a time). Returns each freeze's start in process time (freezes cut out)."""
    u = np.empty(start.shape[0])
    end, cut = -np.inf, 0.0
    for k in range(start.shape[0]):
        if start[k] < end:
            start[k] = end
        u[k] = start[k] - cut
        cut += length[k]
        end = start[k] + length[k]
    return u


@njit
def _to_real(tau, u, cum, inclusive):
    """Real time of process time ``tau``: plus every freeze starting before it (at it, if ``inclusive``)."""
    k = np.searchsorted(u, tau, side="right") if inclusive else np.searchsorted(u, tau, side="left")
    return tau + (cum[k - 1] if k > 0 else 0.0)


@inline
def _thread_for(free, a):
    """The thread an arrival at ``a`` takes: the first idle one (free by ``a``), else the earliest to free
    up (the lowest-numbered of equals). Which idle thread serves changes no response time, and looking no
    further than the first saves scanning every thread at each arrival."""
    j, earliest = 0, free[0]
    if earliest <= a:
        return 0
    for m in range(1, free.shape[0]):
        f = free[m]
        if f < earliest:
            j, earliest = m, f
            if f <= a:
                break
    return j


@njit
def serve_queue(free, arrival, service, stall_t, stall_s, freeze_t, freeze_s, timeout, out, stats, counts):
    """Serve ``arrival`` (sorted, real seconds) on the threads whose next-free times are ``free``.

    Args:
        free: next-free time of each thread (real seconds), updated in place.
        arrival, service: each request's arrival time and service time before stalls.
        stall_t, stall_s: per-thread stalls, sorted by time: each is added to the first request starting
            at or after its time.
        freeze_t, freeze_s: whole-process freezes, sorted by start (modified: overlaps are queued).
        timeout: a request whose wait exceeds it is dropped; inf: none is.
        out: filled with the response time (wait + service) of each served request, in arrival order.
        stats: += [busy thread seconds, requests timed out, sum of responses, max response].
        counts: a latency histogram's counts, one added per served request.
    Returns:
        (requests served, per-thread stalls used).
    """
    if freeze_t.shape[0] == 0:
        return _serve_steady(free, arrival, service, stall_t, stall_s, timeout, out, stats, counts)
    return _serve_frozen(free, arrival, service, stall_t, stall_s, freeze_t, freeze_s, timeout, out, stats, counts)


@njit
def _serve_steady(free, arrival, service, stall_t, stall_s, timeout, out, stats, counts):
    """``serve_queue`` in a tick without freezes (most ticks): real time is process time."""
    served, sp = 0, 0
    busy, dropped, total, longest = 0.0, 0.0, 0.0, stats[3]
    for i in range(arrival.shape[0]):
        a = arrival[i]
        j = _thread_for(free, a)
        start = max(a, free[j])
        if start - a > timeout:
            dropped += 1.0
            continue
        x = service[i]
        if sp < stall_t.shape[0] and stall_t[sp] <= start:
            x += stall_s[sp]
            sp += 1
        free[j] = start + x
        response = start + x - a
        out[served] = response
        counts[bucket(response)] += 1.0
        served += 1
        busy += x
        total += response
        longest = max(longest, response)
    stats[0] += busy
    stats[1] += dropped
    stats[2] += total
    stats[3] = longest
    return served, sp


@njit
def _serve_frozen(free, arrival, service, stall_t, stall_s, freeze_t, freeze_s, timeout, out, stats, counts):
    """``serve_queue`` in a tick with freezes: the recursion in process time, mapped back to real time."""
    nf = freeze_t.shape[0]
    u = _merge_freezes(freeze_t, freeze_s)
    cum = np.cumsum(freeze_s)
    # Freezes start at or after the tick's start, where process time equals real time: the work left on
    # each thread is its free time in process time as it stands.
    served, sp, fp, cut = 0, 0, 0, 0.0
    busy, dropped, total, longest = 0.0, 0.0, 0.0, stats[3]
    for i in range(arrival.shape[0]):
        a = arrival[i]
        while fp < nf and freeze_t[fp] + freeze_s[fp] <= a:   # freezes over before a
            cut += freeze_s[fp]
            fp += 1
        a_tau = a - cut
        if fp < nf and freeze_t[fp] <= a:                    # a arrives during a freeze: it waits for its end
            a_tau = u[fp]
        j = _thread_for(free, a_tau)
        start_tau = max(a_tau, free[j])
        start = _to_real(start_tau, u, cum, True)
        if start - a > timeout:
            dropped += 1.0
            continue
        x = service[i]
        if sp < stall_t.shape[0] and stall_t[sp] <= start:
            x += stall_s[sp]
            sp += 1
        done_tau = start_tau + x
        free[j] = done_tau
        response = _to_real(done_tau, u, cum, False) - a
        out[served] = response
        counts[bucket(response)] += 1.0
        served += 1
        busy += x
        total += response
        longest = max(longest, response)
    stats[0] += busy
    stats[1] += dropped
    stats[2] += total
    stats[3] = longest
    for j in range(free.shape[0]):
        free[j] = _to_real(free[j], u, cum, False)
    return served, sp


@njit
def serve_tick(w, free, t0, dt, rate, median, sigma, tlb, spread_s, fresh, carried, freezes, timeout, stats,
               counts):
    """One tick [t0, t0 + dt) of requests, drawn from the PCG64 state words ``w`` and served by ``serve_queue``.

    The draws, in this order (numpy's own algorithms, pcg64.py, so the stream is what numpy's Generator
    would draw): the arrival count (Poisson at ``rate`` x dt); n + 1 standard exponentials, whose normalised
    partial sums are n sorted uniform arrival times over the tick (Poisson arrivals given their count); n
    standard normals for the lognormal base service times median * exp(sigma z) (none when sigma is 0),
    stretched by ``tlb`` plus an even share of ``spread_s``; a uniform time for each ``fresh`` stall, then
    for each freeze. ``carried`` stalls (left over from the last tick) come first, at t0.
    Returns (responses of the served requests, stalls still pending).
    """
    n = poisson(w, rate * dt) if rate > 0.0 else 0
    arrival, service = np.empty(n), np.empty(n)
    acc = 0.0
    for i in range(n):
        acc += standard_exponential(w)
        arrival[i] = acc
    total = acc + standard_exponential(w)
    spread = spread_s / n if n else 0.0
    for i in range(n):
        arrival[i] = t0 + dt * arrival[i] / total
        base = median * math.exp(sigma * standard_normal(w)) if sigma > 0.0 else median
        service[i] = base * tlb + spread
    stall_t, stall_s = _at_uniform_times(w, t0, dt, fresh, carried)
    freeze_t, freeze_s = _at_uniform_times(w, t0, dt, freezes, freezes[:0])
    out = np.empty(n)
    served, used = serve_queue(free, arrival, service, stall_t, stall_s, freeze_t, freeze_s, timeout, out, stats,
                               counts)
    return out[:served], stall_s[used:].copy()


@njit
def _at_uniform_times(w, t0, dt, sizes, first):
    """The ``first`` events at t0, then one of each of ``sizes`` at a uniform time over the tick (a draw
    each, in order), sorted by time as numpy's ``argsort(kind="stable")`` sorts: (times, sizes)."""
    c, k = first.shape[0], sizes.shape[0]
    t = np.empty(k)
    for i in range(k):
        t[i] = t0 + dt * next_double(w)
    order = np.argsort(t, kind="mergesort")
    times, out = np.empty(c + k), np.empty(c + k)
    for i in range(c):
        times[i], out[i] = t0, first[i]
    for i in range(k):
        times[c + i], out[c + i] = t[order[i]], sizes[order[i]]
    return times, out


@dataclass
class QueueStats:
    """What a queue did, summed over its ticks."""

    served: float = 0.0
    busy_s: float = 0.0
    timed_out: float = 0.0
    response_sum_s: float = 0.0
    response_max_s: float = 0.0


@dataclass
class RequestQueue:
    """One process's request queue: its threads' next-free times and the stalls not yet landed on a request.

    ``serve`` takes one tick: Poisson arrivals at ``rate``, lognormal base service times x ``tlb`` plus an
    even share of the tick's spread costs, the tick's per-thread stalls and whole-process freezes at times
    uniform over the tick (their order within the tick is not known to the kernel's counters).
    """

    threads: int = 8
    median_s: float = 0.001
    p99_s: float = 0.010
    timeout_s: float = math.inf
    free: np.ndarray = field(init=False)
    carried: np.ndarray = field(init=False)
    totals: np.ndarray = field(init=False)   # busy thread seconds, timed out, sum and max of responses
    served: int = field(init=False, default=0)
    _draws: State | None = field(init=False, default=None, repr=False)

    def __post_init__(self) -> None:
        self.sigma = lognormal_sigma(self.median_s, self.p99_s)
        self.free, self.carried, self.totals = np.zeros(self.threads), _EMPTY, np.zeros(4)

    def reset(self, now: float) -> None:
        """All threads idle from ``now`` (a (re)started process), no stall pending; work not done by then
        is not busy time."""
        self.totals[0] -= self.backlog_s(now)
        self.free, self.carried = np.full(self.threads, float(now)), _EMPTY

    @property
    def stats(self) -> QueueStats:
        """What the queue did so far."""
        busy, timed_out, total, longest = (float(v) for v in self.totals)
        return QueueStats(float(self.served), busy, timed_out, total, longest)

    def backlog_s(self, now: float) -> float:
        """Thread seconds of accepted work still to do at ``now``."""
        return float(np.maximum(self.free - now, 0.0).sum())

    def serve(self, rng: np.random.Generator, t0: float, dt: float, rate: float, tlb: float, spread_s: float,
              stalls_s: np.ndarray, freezes_s: np.ndarray, hist: LatencyHistogram) -> np.ndarray:
        """Serve the tick [t0, t0 + dt); the served requests' responses go into ``hist`` and are returned.

        The tick's draws come from ``rng`` (a PCG64 Generator), in compiled code on its own state, so ``rng``
        is left exactly where numpy's draws of the same numbers would leave it."""
        draws = self._draws = state_for(rng, self._draws)
        out, self.carried = serve_tick(draws.load(), self.free, t0, dt, float(rate), self.median_s, self.sigma, tlb,
                                       float(spread_s), np.asarray(stalls_s, dtype=np.float64), self.carried,
                                       np.asarray(freezes_s, dtype=np.float64), self.timeout_s, self.totals,
                                       hist.counts)
        draws.sync()
        self.served += len(out)
        return out


__all__ = ["QueueStats", "RequestQueue", "lognormal_sigma", "serve_queue"]
