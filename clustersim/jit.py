"""Compiled inner loops for the hot paths: numba's ``njit`` with an on-disk cache.

A fleet tick makes a few dozen kernel and allocator calls per process, each over a few hundred pages. As
chains of numpy operations every call paid numpy's fixed cost of about a microsecond per operation many
times over; one compiled loop over the pages pays one dispatch instead. Functions compiled here are plain
loops over numpy arrays with the same integer arithmetic as the numpy code they replace, so results do not
change. Compiled code is cached next to the sources (``__pycache__``), so only the first run on a machine
compiles. ``NUMBA_DISABLE_JIT=1`` runs the same functions as Python, for debugging.

Small helpers that a compiled loop calls once per item (a page, a span, a list entry) are marked ``inline``:
numba then compiles their body into each caller. A call between separately compiled functions updates the
reference count of every array it passes, on the way in and out, and for a helper that reads a few words
that bookkeeping costs several times the work itself; inlined, the counts are pruned away. Larger functions
stay separate, since inlining them everywhere multiplies compile time.
"""

from __future__ import annotations

import numba


def njit(fn):
    """Compile ``fn`` to machine code on first call; cached on disk, no bounds checks, GIL released."""
    return numba.njit(cache=True, nogil=True)(fn)


def inline(fn):
    """``njit`` for a small per-item helper: compiled into each compiled caller (and on its own for Python)."""
    return numba.njit(cache=True, nogil=True, inline="always")(fn)


__all__ = ["inline", "njit"]
