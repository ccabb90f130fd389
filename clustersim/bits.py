"""Two machine operations numba has no spelling for, as LLVM intrinsics with Python twins.

``mul_hi`` (the high word of a 64 x 64-bit product) is one instruction on 64-bit machines; built from 32-bit
halves it took four multiplies and doubled the cost of a PCG64 draw (pcg64.py). ``float_bits`` reads a
double's IEEE 754 bits, which give its binary exponent and leading mantissa bits with a shift where
``math.frexp`` is a library call (the latency histogram's bucket guess, fleet/latency.py). An intrinsic has
no Python body, so under ``NUMBA_DISABLE_JIT=1`` the twins, with the same results, take their place.
"""

from __future__ import annotations

import struct

import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import intrinsic


@intrinsic
def _mul_hi(typingctx, a, b):
    def codegen(context, builder, signature, args):
        wide = ir.IntType(128)
        product = builder.mul(builder.zext(args[0], wide), builder.zext(args[1], wide))
        return builder.trunc(builder.lshr(product, ir.Constant(wide, 64)), ir.IntType(64))
    return types.uint64(types.uint64, types.uint64), codegen


@intrinsic
def _float_bits(typingctx, x):
    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.IntType(64))
    return types.int64(types.float64), codegen


def _mul_hi_python(a, b):
    """High 64 bits of the 128-bit product of two uint64."""
    return np.uint64((int(a) * int(b)) >> 64)


def _float_bits_python(x):
    """The IEEE 754 bits of a double, as a signed 64-bit integer."""
    return struct.unpack("<q", struct.pack("<d", float(x)))[0]


mul_hi = _mul_hi_python if numba.config.DISABLE_JIT else _mul_hi
float_bits = _float_bits_python if numba.config.DISABLE_JIT else _float_bits

__all__ = ["float_bits", "mul_hi"]
