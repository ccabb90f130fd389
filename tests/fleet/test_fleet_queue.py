"""The request queue against queueing theory's closed forms (docs/model.md, "Requests and latency").

The compiled recursion is driven directly with generated Poisson arrivals (fixed seeds, 200k requests after
a warm-up); formulas and sources in literature.md section 10.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from clustersim.fleet.latency import LatencyHistogram
from clustersim.fleet.queue import RequestQueue, serve_queue

N = 200_000
WARM = 20_000
NONE = np.empty(0)


def run(lam: float, service: np.ndarray, threads: int = 1, seed: int = 0, timeout: float = math.inf,
        stalls: tuple[np.ndarray, np.ndarray] = (NONE, NONE), freezes: tuple[np.ndarray, np.ndarray] = (NONE, NONE)):
    """Responses, stats and the count served of one queue over Poisson arrivals at ``lam``."""
    arrival = np.cumsum(np.random.default_rng(seed).exponential(1 / lam, len(service)))
    return run_on(arrival, service, threads, timeout, stalls, freezes)


def run_on(arrival: np.ndarray, service: np.ndarray, threads: int, timeout: float = math.inf,
           stalls: tuple[np.ndarray, np.ndarray] = (NONE, NONE),
           freezes: tuple[np.ndarray, np.ndarray] = (NONE, NONE)):
    """Responses, stats and the count served of one queue over the given arrivals."""
    free, out, stats, counts = np.zeros(threads), np.empty(len(service)), np.zeros(4), np.zeros(2000)
    served, _ = serve_queue(free, arrival, service, *stalls, freezes[0].copy(), freezes[1], timeout, out, stats,
                            counts)
    return out[:served], stats, served


def exp_service(mu: float, seed: int = 1, n: int = N + WARM) -> np.ndarray:
    return np.random.default_rng(seed).exponential(1 / mu, n)


@pytest.mark.parametrize("rho", [0.5, 0.8])
def test_mm1_mean_response_is_one_over_mu_minus_lambda(rho):
    mu = 1000.0
    out, _, _ = run(rho * mu, exp_service(mu))
    assert out[WARM:].mean() == pytest.approx(1 / (mu - rho * mu), rel=0.05)


def test_mg1_mean_response_follows_pollaczek_khinchine():
    # Lognormal service (median 1 ms, p99 10 ms): E[R] = E[S] + lambda E[S^2] / (2 (1 - rho)).
    sigma = math.log(10) / 2.3263478740408408
    s = 1e-3 * np.exp(sigma * np.random.default_rng(1).standard_normal(N + WARM))
    es, es2 = 1e-3 * math.exp(sigma**2 / 2), 1e-6 * math.exp(2 * sigma**2)
    lam = 0.6 / es
    out, _, _ = run(lam, s)
    assert out[WARM:].mean() == pytest.approx(es + lam * es2 / (2 * (1 - lam * es)), rel=0.05)


def test_md1_mean_response_is_half_the_mm1_wait():
    d, rho = 1e-3, 0.8
    out, _, _ = run(rho / d, np.full(N + WARM, d))
    assert out[WARM:].mean() == pytest.approx(d + rho * d / (2 * (1 - rho)), rel=0.05)


def erlang_c(c: int, a: float) -> float:
    """P(wait > 0) in M/M/c with offered load a = lambda / mu (Erlang's C formula)."""
    top = a**c / math.factorial(c) * c / (c - a)
    return top / (sum(a**k / math.factorial(k) for k in range(c)) + top)


@pytest.mark.parametrize(("c", "rho"), [(4, 0.7), (8, 0.85)])
def test_mmc_probability_of_waiting_is_erlang_c(c, rho):
    mu = 1000.0
    lam = rho * c * mu
    s = exp_service(mu)
    out, _, _ = run(lam, s, threads=c)
    waited = (out[WARM:] - s[WARM:]) > 1e-12
    assert waited.mean() == pytest.approx(erlang_c(c, lam / mu), rel=0.05)


def test_p99_of_one_thread_at_rho_09_is_far_above_rho_03():
    # M/M/1 response is exponential with rate mu - lambda: p99 = ln(100) / (mu - lambda), so the ratio of
    # rho 0.9 to rho 0.3 is (1 - 0.3) / (1 - 0.9) = 7.
    mu = 1000.0
    p99 = {}
    for rho in (0.3, 0.9):
        out, _, _ = run(rho * mu, exp_service(mu))
        p99[rho] = np.quantile(out[WARM:], 0.99)
        assert p99[rho] == pytest.approx(math.log(100) / (mu - rho * mu), rel=0.05)
    assert p99[0.9] / p99[0.3] == pytest.approx(7.0, rel=0.08)


def test_one_stall_adds_lambda_s_squared_over_two_request_seconds_of_waiting():
    # A 200 ms stall on the only thread at 1000 requests/s of 0.1 ms (rho 0.1): the ~lambda S requests
    # arriving during it wait S / 2 on average, and the backlog drains at rate 1 - rho, so the waiting added
    # is lambda S^2 / (2 (1 - rho)) request-seconds, plus S on the stalled request itself. Ten stalls, far
    # apart, average out the count of arrivals during each.
    lam, d, stall, k = 1000.0, 1e-4, 0.2, 10
    s = np.full(N, d)
    base, _, _ = run(lam, s, seed=3)
    at = 10.0 + 15.0 * np.arange(k)
    hit, _, _ = run(lam, s, seed=3, stalls=(at, np.full(k, stall)))
    per_stall = (hit.sum() - base.sum()) / k
    assert per_stall == pytest.approx(stall + lam * stall**2 / (2 * (1 - lam * d)), rel=0.05)


def test_a_freeze_stops_every_thread():
    # 8 threads at rho 0.1, ten 200 ms freezes: requests arriving during one wait for its end whichever
    # thread is free; fluid backlog lambda S drains at c mu - lambda, so again lambda S^2 / (2 (1 - rho)).
    lam, d, stall, c, k = 4000.0, 2e-4, 0.2, 8, 10
    s = np.full(N, d)
    base, _, _ = run(lam, s, threads=c, seed=4)
    at = 2.0 + 4.0 * np.arange(k)
    frozen, _, _ = run(lam, s, threads=c, seed=4, freezes=(at, np.full(k, stall)))
    per_freeze = (frozen.sum() - base.sum()) / k
    assert per_freeze == pytest.approx(lam * stall**2 / (2 * (1 - lam * d / c)), rel=0.05)
    one, _, _ = run(lam, s, threads=c, seed=4, stalls=(at, np.full(k, stall)))
    assert (one.sum() - base.sum()) / k == pytest.approx(stall, rel=0.05)   # one thread: the others serve


def test_timeouts_drop_the_mm1_plus_d_share():
    # Requests that would wait longer than t leave unserved. Without the timeout P(W > t) = rho e^{-(mu -
    # lambda) t}; with it the queue is shorter and the dropped share is (1 - rho) rho E / (1 - rho^2 E),
    # E = e^{-(mu - lambda) t} (M/M/1+D, level crossing).
    mu, rho, t = 1000.0, 0.8, 0.005
    lam = rho * mu
    s = exp_service(mu)
    out, _, _ = run(lam, s)
    e = math.exp(-(mu - lam) * t)
    assert ((out - s) > t)[WARM:].mean() == pytest.approx(rho * e, rel=0.05)
    _, stats, served = run(lam, s, timeout=t)
    assert stats[1] / len(s) == pytest.approx((1 - rho) * rho * e / (1 - rho**2 * e), rel=0.05)
    assert served + stats[1] == len(s)


def test_utilisation_is_the_offered_load():
    mu, rho, c = 1000.0, 0.6, 4
    _, stats, _ = run(rho * c * mu, exp_service(mu), threads=c)
    span = (N + WARM) / (rho * c * mu)
    assert stats[0] / (c * span) == pytest.approx(rho, rel=0.02)


def test_queue_state_carries_across_ticks_like_one_long_run():
    # M/D/1 at rho 0.9 over 200 one-second ticks: the mean response is the closed form only if the backlog
    # carries from tick to tick.
    q, h, rng = RequestQueue(threads=1, median_s=9e-4, p99_s=9e-4), LatencyHistogram(), np.random.default_rng(5)
    for t in range(200):
        q.serve(rng, float(t), 1.0, 1000.0, 1.0, 0.0, NONE, NONE, h)
    d, rho = 9e-4, 0.9
    assert q.stats.response_sum_s / q.stats.served == pytest.approx(d + rho * d / (2 * (1 - rho)), rel=0.05)
    assert h.total == q.stats.served


def test_lognormal_service_time_has_the_stated_median_and_p99():
    # 200k requests on many idle threads: responses are the base service times, median 2 ms and p99 20 ms
    # (the empirical p99 within about 3%, 4 sd of the order statistic).
    q, h = RequestQueue(threads=4096, median_s=2e-3, p99_s=2e-2), LatencyHistogram()
    q.serve(np.random.default_rng(0), 0.0, 1.0, 200_000.0, 1.0, 0.0, NONE, NONE, h)
    out = h.quantile_s(0.5), h.quantile_s(0.99)
    assert out[0] == pytest.approx(2e-3, rel=0.02) and out[1] == pytest.approx(2e-2, rel=0.04)
    fixed = RequestQueue(threads=4096, median_s=1e-3, p99_s=1e-3)
    served = fixed.serve(np.random.default_rng(0), 0.0, 1.0, 1000.0, 1.25, 0.0, NONE, NONE, LatencyHistogram())
    np.testing.assert_allclose(served, 1.25e-3)   # median == p99: a fixed time, stretched by the TLB factor


def test_stalls_left_at_the_end_of_a_tick_land_on_the_next_ticks_first_requests():
    q, h = RequestQueue(threads=1, median_s=1e-3, p99_s=1e-3), LatencyHistogram()
    rng = np.random.default_rng(1)
    q.serve(rng, 0.0, 1.0, 0.0, 1.0, 0.0, np.array([0.05, 0.07]), NONE, h)   # no request to take them
    served = q.serve(rng, 1.0, 1.0, 5.0, 1.0, 0.0, NONE, NONE, h)
    assert sorted(served[:2]) == pytest.approx([0.051, 0.071]) and len(q.carried) == 0


def _earliest_thread_responses(arrival: np.ndarray, service: np.ndarray, threads: int) -> np.ndarray:
    """Kiefer-Wolfowitz as written in the textbook: every arrival takes the earliest-free thread."""
    free, out = np.zeros(threads), np.empty(len(arrival))
    for i, (a, x) in enumerate(zip(arrival, service, strict=True)):
        j = int(np.argmin(free))
        start = max(a, free[j])
        free[j] = start + x
        out[i] = start + x - a
    return out


@pytest.mark.parametrize("threads, rho", [(2, 0.5), (8, 0.3), (8, 0.95), (32, 0.7)])
def test_taking_the_first_idle_thread_gives_the_earliest_free_threads_responses(threads, rho):
    # The recursion stops at the first idle thread instead of the earliest-free one: an idle thread starts
    # the request at its arrival whichever it is, so every response is the textbook recursion's, exactly.
    rng = np.random.default_rng(threads)
    service = rng.lognormal(math.log(1e-3), 0.9, 20_000)
    arrival = np.cumsum(rng.exponential(service.mean() / (threads * rho), 20_000))
    out, _, served = run_on(arrival, service, threads)
    assert served == len(arrival)
    np.testing.assert_array_equal(out, _earliest_thread_responses(arrival, service, threads))


def test_an_arrival_takes_the_lowest_numbered_idle_thread():
    free = np.array([2.0, 1.0, 4.0])    # threads 0 and 1 idle at t = 3: thread 0 serves, not the earlier 1
    out, stats, counts = np.empty(1), np.zeros(4), np.zeros(2000)
    serve_queue(free, np.array([3.0]), np.array([0.5]), NONE, NONE, NONE.copy(), NONE, math.inf, out, stats, counts)
    assert free.tolist() == [3.5, 1.0, 4.0] and out[0] == 0.5
