"""Log-bucketed latency histograms (docs/model.md, "Requests and latency")."""

from __future__ import annotations

import numpy as np
import pytest

from clustersim.fleet.latency import EDGES_S, LO_S, NBUCKETS, REL_ERR, LatencyHistogram, bucket_of


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


def test_a_value_lands_in_the_bucket_whose_edges_hold_it():
    # Buckets are decided by the edges, not by a log's rounding: each edge opens its own bucket.
    k = np.arange(1, NBUCKETS - 1)
    assert np.array_equal(bucket_of(EDGES_S[k]), k)
    assert np.array_equal(bucket_of(np.nextafter(EDGES_S[k], 0)), k - 1)
    assert bucket_of(np.array([0.0, LO_S / 2, np.inf, np.nan])).tolist() == [0, 0, NBUCKETS - 1, NBUCKETS - 1]


def test_the_guess_from_the_bits_matches_bisection_over_the_edges():
    # The table's cell (exponent and top 7 mantissa bits) is finer than a bucket, so one step up from the
    # guess is always enough; two million values across the whole range agree with searchsorted.
    values = np.exp(np.random.default_rng(3).uniform(np.log(LO_S / 10), np.log(EDGES_S[-1] * 10), 2_000_000))
    expected = np.clip(np.searchsorted(EDGES_S, values, side="right") - 1, 0, NBUCKETS - 1)
    assert np.array_equal(bucket_of(values), expected)
