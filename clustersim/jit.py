"""Compiled inner loops for the hot paths: numba's ``njit`` with an on-disk cache.

A fleet tick makes a few dozen kernel and allocator calls per process, each over a few hundred pages. As
chains of numpy operations every call paid numpy's fixed cost of about a microsecond per operation many
times over; one compiled loop over the pages pays one dispatch instead. Functions compiled here are plain
loops over numpy arrays with the same integer arithmetic as the numpy code they replace, so results do not
change. Compiled code is cached next to the sources (``__pycache__``), so only the first run on a machine
compiles. ``NUMBA_DISABLE_JIT=1`` runs the same functions as Python, for debugging.
"""

from __future__ import annotations

import numba


def njit(fn):
    """Compile ``fn`` to machine code on first call; cached on disk, no bounds checks, GIL released."""
    return numba.njit(cache=True, nogil=True)(fn)


__all__ = ["njit"]
