"""Bracket-then-bisect on known thresholds, and the SLO rule over seeds (docs/model.md, Capacity planning)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from clustersim.whatif.planfile import Slo
from clustersim.whatif.search import run_search


def probed(low: int, high: int, goal: str, passes) -> tuple[object, list[int]]:
    seen: list[int] = []

    def judge(value: int) -> bool:
        seen.append(value)
        return passes(value)

    return run_search(low, high, goal, judge), seen


@pytest.mark.parametrize("threshold", [1, 2, 10, 33, 63])
def test_goal_max_finds_the_last_passing_value_and_probes_the_next(threshold: int):
    outcome, seen = probed(1, 64, "max", lambda v: v <= threshold)
    assert outcome.best == threshold and outcome.next_value == threshold + 1
    assert outcome.passed[threshold + 1] is False and not outcome.at_limit and outcome.nonmonotone == []
    assert len(seen) == len(set(seen))                 # no value is probed twice
    # Doubling to the crossing, one confirmation past it, then bisection: about 2 log2(64) probes at most.
    assert len(seen) <= 2 * math.ceil(math.log2(64)) + 2


def test_bracket_visits_low_then_doubling_offsets():
    _, seen = probed(1, 64, "max", lambda v: v <= 10)
    assert seen[:6] == [1, 2, 3, 5, 9, 17]             # low + 0, 1, 2, 4, 8, 16: 17 is the first failure
    assert seen[6] == 33                               # the confirmation probe past the first failure
    assert seen[7:] == [13, 11, 10]                    # bisection of (9, 17)


@pytest.mark.parametrize("threshold", [1, 10, 48, 64])
def test_goal_min_finds_the_smallest_passing_value(threshold: int):
    # Fewer nodes is denser: values at or above the threshold pass.
    outcome, seen = probed(1, 64, "min", lambda v: v >= threshold)
    assert outcome.best == threshold and seen[0] == 64
    assert outcome.next_value == (threshold - 1 if threshold > 1 else None)
    assert outcome.at_limit is (threshold == 1)


def test_answer_at_low_and_at_high():
    at_low, _ = probed(5, 20, "max", lambda v: v <= 5)
    assert (at_low.best, at_low.next_value, at_low.at_limit) == (5, 6, False)
    at_high, seen = probed(5, 20, "max", lambda v: True)
    assert (at_high.best, at_high.next_value, at_high.at_limit) == (20, None, True)
    assert seen[-1] == 20                              # the bracket is capped at high


def test_none_passing():
    outcome, seen = probed(5, 20, "max", lambda v: False)
    assert outcome.best is None and outcome.next_value == 5
    assert seen == [5, 6]                              # low, and the confirmation next to it


def test_a_single_value_range():
    assert run_search(7, 7, "max", lambda v: True).best == 7
    assert run_search(7, 7, "min", lambda v: False).best is None


def test_non_monotone_results_are_recorded_not_hidden():
    # Passes up to 10, fails 11..20, passes 21..40 again: the confirmation probe at 33 passes.
    outcome, _ = probed(1, 64, "max", lambda v: v <= 10 or 21 <= v <= 40)
    assert outcome.best == 10                          # the search stays below the first failure
    assert outcome.nonmonotone == [(17, 33)]           # (densest failing value below, passing value)


def test_slo_rule_every_seed_by_default():
    slo = Slo(metric="latency_p99_ms", max=20.0)
    assert slo.holds([5, 19.9, 20])
    assert not slo.holds([5, 5, 5, 5, 21])
    assert not slo.holds([5, float("nan")])            # a missing value never meets a bound
    assert not slo.holds([])


@pytest.mark.parametrize(("quantile", "seeds", "needed"), [(0.9, 10, 9), (0.5, 5, 3), (0.8, 5, 4), (1.0, 3, 3),
                                                          (0.1, 10, 1), (0.7, 10, 7)])
def test_slo_quantile_rule_counts_seeds(quantile: float, seeds: int, needed: int):
    slo = Slo(metric="thp_coverage", min=0.5, quantile=quantile)
    assert slo.needed(seeds) == needed                 # ceil(q n), with 0.7 * 10 not rounded up to 8
    values = [0.6] * needed + [0.4] * (seeds - needed)
    assert slo.holds(values)
    if needed > 1:
        assert not slo.holds([0.6] * (needed - 1) + [0.4] * (seeds - needed + 1))


def test_slo_quantile_matches_the_observed_quantile_of_the_seeds():
    # The q-quantile over seeds as an observed value (numpy inverted_cdf) meets a max bound exactly when
    # ceil(q n) seeds do.
    values = [3.0, 9.0, 12.0, 30.0, 4.0, 7.0, 25.0, 8.0, 11.0, 5.0]
    for q in (0.5, 0.7, 0.8, 0.9):
        for bound in (8.0, 11.0, 12.0, 25.0):
            slo = Slo(metric="latency_p999_ms", max=bound, quantile=q)
            assert slo.holds(values) == (np.quantile(values, q, method="inverted_cdf") <= bound)
