"""The compiled steady births are numpy's draws of the same recipe, value for value (workloads/demand.py).

The reference is the recipe as numpy calls: Poisson spans per class plus the carry, whole units, uniform
birth times, Exp(lifetime) lives. Same seed, same classes, same results and the same carry, and the
Generator ends where numpy's calls leave it.
"""

from __future__ import annotations

import numpy as np
import pytest

from clustersim.pcg64 import State
from clustersim.workloads.demand import steady_births


def numpy_births(rng, rate, scale, carry, per_unit, lifetime, t_s, dt_s):
    spans = rng.poisson(rate * scale) + carry
    units = spans // per_unit
    carry[:] = spans - units * per_unit
    cls = np.repeat(np.arange(units.size), units)
    birth = t_s + dt_s * rng.random(cls.size)
    return cls, birth, birth + rng.standard_exponential(cls.size) * lifetime[cls]


@pytest.mark.parametrize("scale", [0.0, 0.01, 1.0, 40.0])
def test_steady_births_are_numpys_recipe(scale):
    rng = np.random.default_rng(3)
    k = 76
    rate = rng.lognormal(1.0, 2.0, k)             # spans per second: below and above Poisson's switch at 10
    per_unit = rng.integers(1, 40, k)
    lifetime = rng.lognormal(2.0, 1.5, k)
    ours, theirs = np.random.default_rng(9), np.random.default_rng(9)
    carry_ours = rng.integers(0, 5, k)
    carry_theirs = carry_ours.copy()
    state = State(ours)
    for step in range(20):
        got = steady_births(state.load(), rate, scale, carry_ours, per_unit, lifetime, 100.0 + step, 1.0)
        want = numpy_births(theirs, rate, scale, carry_theirs, per_unit, lifetime, 100.0 + step, 1.0)
        for g, w in zip(got, want, strict=True):
            np.testing.assert_array_equal(g, w)
        np.testing.assert_array_equal(carry_ours, carry_theirs)
    assert scale == 0.0 or len(got[0]) > 0
    assert ours.random() == theirs.random()
