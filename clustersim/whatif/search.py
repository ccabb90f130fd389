"""Bracket-then-bisect search for the densest integer value that still meets every SLO.

The search assumes the SLOs get worse with density: with ``goal: max`` a larger value is denser (more
replicas per node), with ``goal: min`` a smaller one is (fewer nodes for the fleet). Values are visited in
density order, index ``i`` being ``low + i`` (max) or ``high - i`` (min), and the answer is the last index
of the first passing run of indices: the densest value meeting every SLO with every less dense value probed
passing too.

1. Bracket: probe indices 0, 1, 2, 4, 8, ... (capped at the last) until one fails or the last passes.
   Doubling finds the crossing in about log2 of the range probes, as exponential search does (Bentley and
   Yao 1976; literature.md section 11).
2. Confirm: probe the next bracket index past the first failure. If it passes, the SLOs are not monotone
   in the knob there; that is recorded and reported, and the search stays below the first failure.
3. Bisect between the last pass and the first failure until they are adjacent; the first failing value,
   the one after the answer, is then probed, so the report can show it fails.

The search is a generator: it yields the value to probe next and is sent whether that value passed, so a
caller can advance many searches together (one probe of each alternative per round of runs).
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass, field


@dataclass
class SearchOutcome:
    """Where a search ended: the answer (None when even the least dense value fails) and what it saw."""

    best: int | None
    next_value: int | None               # the value after the answer, probed and failing; None at the limit
    at_limit: bool                       # the densest value of the range passes: the answer may lie beyond
    passed: dict[int, bool] = field(default_factory=dict)   # every probed value -> whether it passed
    nonmonotone: list[tuple[int, int]] = field(default_factory=list)   # (failing value, passing denser value)


Search = Generator[int, bool, SearchOutcome]


def search(low: int, high: int, goal: str = "max") -> Search:
    """Yield values to probe (send back whether each passed); return the SearchOutcome."""
    assert low <= high and goal in ("max", "min"), (low, high, goal)
    last = high - low

    def value(index: int) -> int:
        return low + index if goal == "max" else high - index

    seen: dict[int, bool] = {}

    def probe(index: int) -> Search:
        if index not in seen:
            seen[index] = yield value(index)
        return seen[index]

    good, bad, step = -1, None, 0
    while bad is None:
        if (yield from probe(step)):
            good = step
            if step == last:
                break
            step = min(last, 1 if step == 0 else 2 * step)
        else:
            bad = step
    if bad is not None:
        confirm = min(last, 1 if bad == 0 else 2 * bad)
        if confirm > bad:
            yield from probe(confirm)
        while bad - good > 1:
            middle = (good + bad) // 2
            if (yield from probe(middle)):
                good = middle
            else:
                bad = middle
    passed = {value(i): ok for i, ok in sorted(seen.items())}
    return SearchOutcome(best=value(good) if good >= 0 else None,
                         next_value=value(bad) if bad is not None else None,
                         at_limit=bad is None, passed=passed, nonmonotone=_nonmonotone(seen, value))


def _nonmonotone(seen: dict[int, bool], value: Callable[[int], int]) -> list[tuple[int, int]]:
    """For each passing probe denser than a failing one: (the densest failing value below it, it)."""
    out = []
    for j in sorted(j for j, ok in seen.items() if ok):
        below = [i for i, ok in seen.items() if not ok and i < j]
        if below:
            out.append((value(max(below)), value(j)))
    return out


def run_search(low: int, high: int, goal: str, passes: Callable[[int], bool]) -> SearchOutcome:
    """Drive one search with ``passes(value)`` (tests and single-alternative use)."""
    gen = search(low, high, goal)
    try:
        value = next(gen)
        while True:
            value = gen.send(passes(value))
    except StopIteration as stop:
        return stop.value
