"""The compiled draws are numpy's own stream, bit for bit (clustersim/pcg64.py; docs/model.md, "Random draws
of the queue").

Each draw is checked against numpy's Generator from the same seed, over enough values to take the
ziggurats' rare paths (the tail beyond the base layer, the wedge rejections) hundreds of times, and the
Generator must continue, after the compiled draws, exactly where numpy's own draws would have left it.
"""

from __future__ import annotations

import math
import pickle
import struct

import numba
import numpy as np
import pytest
from numba.np.random._constants import ziggurat_exp_r, ziggurat_nor_r

from clustersim.bits import float_bits, mul_hi
from clustersim.fleet.latency import LatencyHistogram
from clustersim.fleet.queue import RequestQueue
from clustersim.pcg64 import State, next_double, poisson, standard_exponential, standard_normal

N = 1_000_000


@numba.njit
def _fill(w, kind, lam, out):
    for i in range(out.shape[0]):
        if kind == 0:
            out[i] = next_double(w)
        elif kind == 1:
            out[i] = standard_exponential(w)
        elif kind == 2:
            out[i] = standard_normal(w)
        else:
            out[i] = poisson(w, lam)


def _draw(rng, kind: int, n: int, lam: float = 0.0) -> np.ndarray:
    state = State(rng)
    out = np.empty(n)
    _fill(state.load(), kind, lam, out)
    state.sync()
    return out


@pytest.mark.parametrize("kind, reference", [(0, "random"), (1, "standard_exponential"), (2, "standard_normal")])
def test_draws_are_numpys_and_leave_the_generator_where_numpy_would(kind, reference):
    ours, theirs = np.random.default_rng(11), np.random.default_rng(11)
    got, want = _draw(ours, kind, N), getattr(theirs, reference)(N)
    np.testing.assert_array_equal(got, want)
    assert ours.random(8).tolist() == theirs.random(8).tolist()   # the state moved exactly as numpy's


def test_the_ziggurat_tails_are_taken_and_still_match():
    # P(E > r) = exp(-7.697) = 4.5e-4 and P(|Z| > 3.654) = 2.6e-4: about 450 and 260 tail draws per million,
    # each produced by the tail branch, which the equality above then covers.
    e = _draw(np.random.default_rng(3), 1, N)
    z = _draw(np.random.default_rng(4), 2, N)
    assert 300 < (e > ziggurat_exp_r).sum() < 600
    assert 150 < (np.abs(z) > ziggurat_nor_r).sum() < 380


@pytest.mark.parametrize("lam", [0.0, 0.3, 3.7, 9.999, 10.0, 10.5, 13.3, 57.25, 1000.0, 2.5e5])
def test_poisson_matches_numpy_on_both_algorithms(lam):
    # numpy switches from multiplying uniforms to PTRS at lam = 10; 0 returns 0 without a draw. Near 10,
    # PTRS's candidate k falls in (-1, 0) about once in 30,000 to 250,000 draws, where numpy's floor gives
    # -1 (rejected) and a truncation 0 (possibly kept): 2 million draws meet it several times.
    ours, theirs = np.random.default_rng(5), np.random.default_rng(5)
    np.testing.assert_array_equal(_draw(ours, 3, 2_000_000, lam), theirs.poisson(lam, 2_000_000))
    assert ours.random() == theirs.random()


def test_a_private_copy_of_the_state_is_written_back():
    # The layout numpy keeps in memory may differ elsewhere (an emulated 128-bit type): the copy path loads
    # the state through bit_generator.state and writes it back, with the same stream.
    ours, theirs = np.random.default_rng(8), np.random.default_rng(8)
    state = State(ours)
    state.shared, state.words = False, np.empty(4, dtype=np.uint64)
    for _ in range(3):
        out = np.empty(1000)
        _fill(state.load(), 2, 0.0, out)
        state.sync()
        np.testing.assert_array_equal(out, theirs.standard_normal(1000))
    assert ours.random() == theirs.random()


def test_other_bit_generators_are_refused_by_name():
    with pytest.raises(TypeError, match=r"PCG64.*MT19937"):
        State(np.random.Generator(np.random.MT19937(1)))


def test_a_copied_queue_draws_from_its_own_generator():
    # The state words are a view of one Generator's memory: a pickled or copied queue must not keep it.
    q, rng = RequestQueue(threads=2), np.random.default_rng(2)
    q.serve(rng, 0.0, 1.0, 100.0, 1.0, 0.0, np.empty(0), np.empty(0), LatencyHistogram())
    clone, clone_rng = pickle.loads(pickle.dumps((q, rng)))
    a = q.serve(rng, 1.0, 1.0, 100.0, 1.0, 0.0, np.empty(0), np.empty(0), LatencyHistogram())
    b = clone.serve(clone_rng, 1.0, 1.0, 100.0, 1.0, 0.0, np.empty(0), np.empty(0), LatencyHistogram())
    np.testing.assert_array_equal(a, b)
    assert rng.random() == clone_rng.random()


@numba.njit
def _mul_hi_all(a, b, out):
    for i in range(a.shape[0]):
        out[i] = mul_hi(a[i], b[i])


@numba.njit
def _bits_all(x, out):
    for i in range(x.shape[0]):
        out[i] = float_bits(x[i])


def test_mul_hi_is_the_high_word_of_the_full_product():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 2**64, 10_000, dtype=np.uint64, endpoint=False)
    b = rng.integers(0, 2**64, 10_000, dtype=np.uint64, endpoint=False)
    a[:3], b[:3] = [2**64 - 1, 0, 2**32], [2**64 - 1, 5, 2**32]
    out = np.empty(10_000, dtype=np.uint64)
    _mul_hi_all(a, b, out)
    assert [int(o) for o in out] == [(int(x) * int(y)) >> 64 for x, y in zip(a, b, strict=True)]


def test_float_bits_are_the_ieee_754_encoding():
    x = np.concatenate([np.random.default_rng(1).lognormal(-7, 4, 5000),
                        [0.0, -0.0, 5e-324, 1.0, 2.0 ** 1023, math.inf, -1.5]])
    out = np.empty(len(x), dtype=np.int64)
    _bits_all(x, out)
    assert out.tolist() == [struct.unpack("<q", struct.pack("<d", v))[0] for v in x]
