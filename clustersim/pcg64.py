"""numpy's PCG64 generator and its ziggurat draws, in compiled code over the generator's own state.

The request queue draws two or three numbers per request. As numpy calls, each draw cost about a
microsecond per call plus 10 ns a value written to an array and read back; numba's own ``Generator``
support runs numpy's algorithms but re-casts the bit generator's ctypes function pointers on every call,
about 25 µs a call. Here the state is PCG64's four 64-bit words (the 128-bit state and increment), read and
advanced in place, and each draw is numpy's algorithm (numpy/random/src/distributions/distributions.c)
term for term with numpy's ziggurat tables, so the stream is numpy's own, bit for bit: a ``Generator`` that
lends its state here and then draws again in numpy continues exactly as if numpy had made every draw.

``State(rng)`` holds the state: a view of numpy's own memory where its layout is the native one
(``__uint128_t``, low word first), else a private copy that ``sync`` writes back through
``bit_generator.state``. The tables are numpy's, as numba ships them. Where numba's own translation of
numpy's C departs from numpy, this follows numpy: PTRS floors its candidate count (numba truncates it, which
keeps a draw numpy rejects about once in 10^5 near a mean of 10). tests/test_pcg64.py checks every draw
against the installed numpy, over enough values to take the rare branches.
"""

from __future__ import annotations

import ctypes
import math

import numpy as np
from numba.np.random import _constants as ziggurat  # numpy's ziggurat tables, as numba copies them

from .bits import mul_hi
from .jit import inline

_WE, _KE, _FE = ziggurat.we_double, ziggurat.ke_double, ziggurat.fe_double   # exponential: widths, bounds, f
_WI, _KI, _FI = ziggurat.wi_double, ziggurat.ki_double, ziggurat.fi_double   # normal
_EXP_R, _NOR_R, _NOR_INV_R = ziggurat.ziggurat_exp_r, ziggurat.ziggurat_nor_r, ziggurat.ziggurat_nor_inv_r
_S58, _S11 = np.uint64(58), np.uint64(11)
_MUL_HI = np.uint64(2549297995355413924)   # PCG_DEFAULT_MULTIPLIER_128, high and low words
_MUL_LO = np.uint64(4865540595714422341)
_TO_DOUBLE = 1.0 / 9007199254740992.0      # 2**-53: next_double keeps the top 53 bits
_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)
_LOW_WORD = (1 << 64) - 1
_LOGGAM = np.array([8.333333333333333e-02, -2.777777777777778e-03, 7.936507936507937e-04,
                    -5.952380952380952e-04, 8.417508417508418e-04, -1.917526917526918e-03,
                    6.410256410256410e-03, -2.955065359477124e-02, 1.796443723688307e-01,
                    -1.39243221690590e+00])


class State:
    """PCG64 state words [state low, state high, inc low, inc high] of one ``numpy.random.Generator``."""

    def __init__(self, rng: np.random.Generator) -> None:
        bg = rng.bit_generator
        if type(bg).__name__ != "PCG64":
            raise TypeError("compiled draws need a PCG64 generator (numpy.random.default_rng); "
                            f"got {type(bg).__name__}")
        self.bit_generator = bg
        self.words = _native_view(bg)
        self.shared = self.words is not None
        if not self.shared:
            self.words = np.empty(4, dtype=np.uint64)

    def __reduce__(self):
        """A copy (pickle, deepcopy) of a holder holds None here: the words are a view of one Generator's
        memory, and ``state_for`` makes a new State for whatever Generator the copy is given."""
        return _no_state, ()

    def load(self) -> np.ndarray:
        """The words, current with numpy's state (a no-op for a view of numpy's own memory)."""
        if not self.shared:
            self.words[:] = _words_of(self.bit_generator)
        return self.words

    def sync(self) -> None:
        """numpy's state advanced to the words (a no-op for a view)."""
        if not self.shared:
            full = self.bit_generator.state
            lo, hi = int(self.words[0]), int(self.words[1])
            full["state"]["state"] = hi << 64 | lo
            self.bit_generator.state = full


def state_for(rng: np.random.Generator, current: State | None) -> State:
    """``current`` if it is ``rng``'s state, else a new ``State`` of ``rng``: a holder keeps one for the
    Generator it draws from (a copied holder has None, ``State.__reduce__``)."""
    if current is not None and current.bit_generator is rng.bit_generator:
        return current
    return State(rng)


def _native_view(bg) -> np.ndarray | None:
    """numpy's pcg64_random_t as four uint64 words, if its memory holds them in our order (checked against
    ``bg.state``); None otherwise (an emulated 128-bit type, another byte order)."""
    struct = ctypes.c_void_p.from_address(bg.ctypes.state_address).value   # pcg64_state's first member
    view = np.ctypeslib.as_array((ctypes.c_uint64 * 4).from_address(struct))
    return view if [int(w) for w in view] == _words_of(bg) else None


def _words_of(bg) -> list[int]:
    """PCG64's state and increment as read from ``bg.state``, split into our four words."""
    s = bg.state["state"]
    return [s["state"] & _LOW_WORD, s["state"] >> 64, s["inc"] & _LOW_WORD, s["inc"] >> 64]


def _no_state() -> None:
    return None


@inline
def next_uint64(w):
    """PCG64's next output: state = state x multiplier + inc (mod 2**128), then XSL-RR of the new state."""
    lo, hi = w[0], w[1]
    new_lo = lo * _MUL_LO
    new_hi = mul_hi(lo, _MUL_LO) + lo * _MUL_HI + hi * _MUL_LO
    lo = new_lo + w[2]
    hi = new_hi + w[3] + (np.uint64(1) if lo < new_lo else np.uint64(0))
    w[0], w[1] = lo, hi
    x, rot = hi ^ lo, hi >> _S58
    return (x >> rot) | (x << ((np.uint64(64) - rot) & np.uint64(63)))


@inline
def next_double(w):
    """A uniform in [0, 1): the top 53 bits of the next output (numpy's pcg64_next_double)."""
    return np.float64(next_uint64(w) >> _S11) * _TO_DOUBLE


@inline
def standard_exponential(w):
    """numpy's random_standard_exponential: the 256-layer ziggurat, its tail from ziggurat_exp_r."""
    while True:
        ri = next_uint64(w) >> np.uint64(3)
        idx = np.int64(ri & np.uint64(0xFF))
        ri >>= np.uint64(8)
        x = np.float64(ri) * _WE[idx]
        if ri < _KE[idx]:
            return x
        if idx == 0:
            return _EXP_R - math.log1p(-next_double(w))
        if (_FE[idx - 1] - _FE[idx]) * next_double(w) + _FE[idx] < math.exp(-x):
            return x


@inline
def standard_normal(w):
    """numpy's random_standard_normal: the 256-layer ziggurat, its tail by Marsaglia's method."""
    while True:
        r = next_uint64(w)
        idx = np.int64(r & np.uint64(0xFF))
        r >>= np.uint64(8)
        rabs = (r >> np.uint64(1)) & np.uint64(0x000FFFFFFFFFFFFF)
        x = np.float64(rabs) * _WI[idx]
        if r & np.uint64(1):
            x = -x
        if rabs < _KI[idx]:
            return x
        if idx == 0:
            while True:
                xx = -_NOR_INV_R * math.log1p(-next_double(w))
                yy = -math.log1p(-next_double(w))
                if yy + yy > xx * xx:
                    return -(_NOR_R + xx) if (rabs >> np.uint64(8)) & np.uint64(1) else _NOR_R + xx
        elif (_FI[idx - 1] - _FI[idx]) * next_double(w) + _FI[idx] < math.exp(-0.5 * x * x):
            return x


@inline
def poisson(w, lam):
    """numpy's random_poisson: PTRS (Hörmann 1993) from lam 10, multiplication of uniforms below, 0 at 0."""
    if lam >= 10.0:
        return _poisson_ptrs(w, lam)
    if lam == 0.0:
        return 0
    enlam, k, prod = math.exp(-lam), 0, 1.0
    while True:
        prod *= next_double(w)
        if prod <= enlam:
            return k
        k += 1


@inline
def _poisson_ptrs(w, lam):
    """Transformed rejection with squeeze (numpy's random_poisson_ptrs)."""
    slam, loglam = math.sqrt(lam), math.log(lam)
    b = 0.931 + 2.53 * slam
    a = -0.059 + 0.02483 * b
    invalpha = 1.1239 + 1.1328 / (b - 3.4)
    vr = 0.9277 - 3.6224 / (b - 2)
    while True:
        u = next_double(w) - 0.5
        v = next_double(w)
        us = 0.5 - abs(u)
        k = math.floor((2 * a / us + b) * u + lam + 0.43)   # floor, not truncation: below 0 is rejected
        if us >= 0.07 and v <= vr:
            return k
        if k < 0 or (us < 0.013 and v > us):
            continue
        if math.log(v) + math.log(invalpha) - math.log(a / (us * us) + b) <= -lam + k * loglam - _loggam(k + 1):
            return k


@inline
def _loggam(x):
    """log Gamma(x) by Stirling's series (numpy's random_loggam), exact at 1 and 2, shifted up to 7 below."""
    x = float(x)
    if x == 1.0 or x == 2.0:
        return 0.0
    n = int(7 - x) if x <= 7.0 else 0
    x0 = x + n
    x2 = 1.0 / (x0 * x0)
    gl0 = _LOGGAM[9]
    for k in range(8, -1, -1):
        gl0 *= x2
        gl0 += _LOGGAM[k]
    gl = gl0 / x0 + _HALF_LOG_2PI + (x0 - 0.5) * math.log(x0) - x0
    for _ in range(n):
        gl -= math.log(x0 - 1.0)
        x0 -= 1.0
    return gl


__all__ = ["State", "next_double", "next_uint64", "poisson", "standard_exponential", "standard_normal", "state_for"]
