"""Log-bucketed latency histograms and the request model (docs/model.md, "Requests and latency")."""

from __future__ import annotations

import numpy as np
import pytest

from clustersim.fleet.latency import REL_ERR, LatencyHistogram, serve


@pytest.mark.parametrize("q", [0.5, 0.9, 0.99, 0.999])
def test_quantiles_are_within_one_percent_of_the_exact_ones(q):
    rng = np.random.default_rng(0)
    x = rng.lognormal(np.log(2e-3), 1.0, 200_000)
    h = LatencyHistogram()
    h.add(x)
    assert h.quantile_s(q) == pytest.approx(np.quantile(x, q), rel=REL_ERR * 1.05)


def test_histograms_merge_by_addition_like_the_union_of_samples():
    rng = np.random.default_rng(1)
    a, b = rng.exponential(1e-3, 5000), rng.exponential(5e-2, 500)
    ha, hb, hab = LatencyHistogram(), LatencyHistogram(), LatencyHistogram()
    ha.add(a)
    hb.add(b)
    hab.add(np.concatenate([a, b]))
    ha.merge(hb)
    assert np.array_equal(ha.counts, hab.counts)


def test_each_stall_lands_on_one_request_and_the_rest_are_weighted_samples():
    # 1000 requests of exactly 1 ms, two stalls of 50 ms: the histogram holds 1000 requests, exactly two of
    # them near 51 ms, so p99.9 sits at 51 ms and p99 at 1 ms.
    rng = np.random.default_rng(2)
    h = LatencyHistogram()
    serve(rng, np.full(64, 1e-3), 1000, 1.0, 0.0, np.array([0.05, 0.05]), h)
    assert h.total == pytest.approx(1000)
    assert h.quantile_s(0.99) == pytest.approx(1e-3, rel=0.02)
    assert h.quantile_s(0.999) == pytest.approx(0.051, rel=0.02)


def test_tlb_factor_and_smooth_costs_scale_every_request():
    rng = np.random.default_rng(3)
    h = LatencyHistogram()
    serve(rng, np.full(16, 1e-3), 100, 1.25, 0.01, np.array([]), h)   # 10 ms spread over 100 requests
    assert h.quantile_s(0.5) == pytest.approx(1.25e-3 + 1e-4, rel=0.02)
