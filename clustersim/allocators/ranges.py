"""Page ranges over a heap's page states: move ranges to a new state, find runs of given states, count pages.

A heap keeps one state byte per 4 KiB page in a ``bytearray`` and per-vhp (2 MiB slot) counts of each state
in a flat int64 buffer (``counts[vhp * ncols + state]``); ``HeapAllocator`` shares both with numpy views for
whole-heap statistics. The allocators hand these helpers batches of a few dozen (start, length) ranges in
plain Python lists. Each range is cut at vhp boundaries and every piece is handled by the bytearray's C
methods (slice, ``lstrip``, ``translate``, ``find``, ``count``): a batch costs a few Python steps per range
and per vhp, not per page, and none of numpy's 1-5 us per-call overhead, which dominated batches this small.
"""

from __future__ import annotations

from clustersim.units import HPAGE_PAGES

VHP_SHIFT = HPAGE_PAGES.bit_length() - 1
assert 1 << VHP_SHIFT == HPAGE_PAGES
_BYTE = [bytes([b]) for b in range(256)]
_FILL = [memoryview(bytes([b]) * HPAGE_PAGES) for b in range(256)]   # one vhp of state b, to slice from
_MASKS: dict[tuple[int, ...], bytes] = {}


def transition(buf: bytearray, counts, ncols: int, starts, lengths, new_state: int
               ) -> tuple[list[int], list[tuple[int, int, int]]]:
    """Set the pages of the ranges [starts[i], starts[i] + lengths[i]) to ``new_state``, moving the per-vhp
    counts; returns how many pages left each state and the runs (start, pages, old state) in range order.

    A run is a stretch of one range inside one vhp whose pages shared an old state; a piece of a range in
    one vhp usually holds one run, found with one ``lstrip``.
    """
    fill = _FILL[new_state]
    moved = [0] * ncols
    runs = []
    for s, n in zip(starts, lengths, strict=True):
        end = s + n
        while s < end:
            v = s >> VHP_SHIFT
            stop = min(end, (v + 1) << VHP_SHIFT)
            row = v * ncols
            seg = buf[s:stop]
            buf[s:stop] = fill[:stop - s]
            counts[row + new_state] += stop - s
            while seg:
                old = seg[0]
                rest = seg.lstrip(_BYTE[old])
                k = len(seg) - len(rest)
                counts[row + old] -= k
                moved[old] += k
                runs.append((s, k, old))
                s += k
                seg = rest
    return moved, runs


def move(buf: bytearray, counts, ncols: int, starts, lengths, old_state: int, new_state: int) -> int:
    """``transition`` for ranges known to be all in ``old_state`` (live spans being freed, runs being
    released): no page is read. Returns the pages moved."""
    fill = _FILL[new_state]
    total = 0
    for s, n in zip(starts, lengths, strict=True):
        total += n
        v = s >> VHP_SHIFT
        if (s + n - 1) >> VHP_SHIFT == v:   # the common case: a span inside one vhp
            buf[s:s + n] = fill[:n]
            counts[v * ncols + old_state] -= n
            counts[v * ncols + new_state] += n
            continue
        end = s + n
        while s < end:
            v = s >> VHP_SHIFT
            stop = min(end, (v + 1) << VHP_SHIFT)
            buf[s:stop] = fill[:stop - s]
            counts[v * ncols + old_state] -= stop - s
            counts[v * ncols + new_state] += stop - s
            s = stop
    return total


def runs_in_states(buf: bytearray, counts, ncols: int, starts, lengths, states: tuple[int, ...]
                   ) -> tuple[list[int], list[int]]:
    """Maximal runs of consecutive pages in ``states`` within the ranges, in range order (a run that
    starts where the one before ends is merged into it): (starts, lengths).

    The per-vhp counts skip vhps holding no such page and take whole vhps holding only such pages without
    reading them; only the rest is read, as one ``translate`` to a 0/1 mask and a ``find`` per run edge.
    """
    mask = _MASKS.get(states)
    if mask is None:
        mask = _MASKS[states] = bytes(1 if b in states else 0 for b in range(256))
    first, single = states[0], len(states) == 1
    out_s: list[int] = []
    out_l: list[int] = []
    for s, n in zip(starts, lengths, strict=True):
        end = s + n
        while s < end:
            v = s >> VHP_SHIFT
            stop = min(end, (v + 1) << VHP_SHIFT)
            row = v * ncols
            inside = counts[row + first] if single else sum([counts[row + st] for st in states])
            if inside == HPAGE_PAGES:
                _append_run(out_s, out_l, s, stop - s)
            elif inside:
                bits = buf[s:stop].translate(mask)
                i = bits.find(1)
                while i >= 0:
                    j = bits.find(0, i)
                    j = len(bits) if j < 0 else j
                    _append_run(out_s, out_l, s + i, j - i)
                    i = bits.find(1, j)
            s = stop
    return out_s, out_l


def count_in(buf: bytearray, counts, ncols: int, starts, lengths, state: int) -> list[int]:
    """Pages in ``state`` in each range: whole vhps from the per-vhp counts, ragged ends read bytewise."""
    out = []
    for s, n in zip(starts, lengths, strict=True):
        end = s + n
        full_lo = min(-(-s >> VHP_SHIFT), end >> VHP_SHIFT)
        full_hi = max(end >> VHP_SHIFT, full_lo)
        if full_hi == full_lo:
            out.append(buf.count(state, s, end))
            continue
        whole = sum(counts[full_lo * ncols + state: full_hi * ncols: ncols])
        out.append(buf.count(state, s, full_lo << VHP_SHIFT) + whole + buf.count(state, full_hi << VHP_SHIFT, end))
    return out


def runs_with(runs: list[tuple[int, int, int]], states: tuple[int, ...]) -> tuple[list[int], list[int]]:
    """Of ``transition``'s runs, those whose old state is in ``states``, adjacent ones merged."""
    out_s: list[int] = []
    out_l: list[int] = []
    for s, n, old in runs:
        if old in states:
            _append_run(out_s, out_l, s, n)
    return out_s, out_l


def _append_run(out_s: list[int], out_l: list[int], s: int, n: int) -> None:
    if out_s and out_s[-1] + out_l[-1] == s:
        out_l[-1] += n
    else:
        out_s.append(s)
        out_l.append(n)
