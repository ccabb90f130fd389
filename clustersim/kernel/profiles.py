"""Kernel profiles: named bundles of madvise and THP semantics, plus the 2015 proposals as flags.

A profile says which advice a kernel accepts and how MADV_FREE behaves. Sources: MADV_FREE merged in 4.5
and needed swap (lazyfree pages sat on the anon LRU); 4.12 ("mm: enable MADV_FREE for swapless system")
moved them to the inactive file LRU; MADV_COLD/PAGEOUT arrived in 5.4, MADV_COLLAPSE in 6.1, the
underused-THP shrinker (shrink_underused, thp_underused_split_page) in 6.12.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .errors import KernelError
from .mman import MADV

PROPOSALS = ("madv_splittable", "madv_free_undo", "lazy_free_split")

_BASE_ADVICE = frozenset({MADV.DONTNEED, MADV.FREE, MADV.HUGEPAGE, MADV.NOHUGEPAGE})
_PROPOSAL_ADVICE = {
    "madv_splittable": frozenset({MADV.SPLITTABLE, MADV.UNSPLITTABLE}),
    "madv_free_undo": frozenset({MADV.FREE_UNDO}),
    "lazy_free_split": frozenset(),
}


@dataclass(frozen=True)
class Profile:
    """What one kernel version can do. ``lazyfree_needs_swap``: 4.5-4.11 lazyfree only with swap."""

    name: str
    advice: frozenset[MADV]
    lazyfree_needs_swap: bool
    shrink_underused: bool
    proposals: frozenset[str] = field(default_factory=frozenset)

    def supports(self, advice: MADV) -> bool:
        """True when madvise(advice) is accepted (not EINVAL) on this kernel."""
        return advice in self.advice

    @property
    def lazy_free_split(self) -> bool:
        """Minchan Kim's proposal: a partial MADV_FREE of a THP splits in reclaim, not at the call."""
        return "lazy_free_split" in self.proposals


_PROFILES = {
    "linux-4.5": Profile("linux-4.5", _BASE_ADVICE, lazyfree_needs_swap=True, shrink_underused=False),
    "linux-4.12": Profile("linux-4.12", _BASE_ADVICE, lazyfree_needs_swap=False, shrink_underused=False),
    "linux-6.1": Profile(
        "linux-6.1", _BASE_ADVICE | {MADV.COLD, MADV.PAGEOUT, MADV.COLLAPSE},
        lazyfree_needs_swap=False, shrink_underused=False),
    "linux-6.12": Profile(
        "linux-6.12", _BASE_ADVICE | {MADV.COLD, MADV.PAGEOUT, MADV.COLLAPSE},
        lazyfree_needs_swap=False, shrink_underused=True),
}


PROFILES = tuple(_PROFILES)   # oldest first: "at least linux-6.1" compares positions
DEFAULT_PROFILE = "linux-6.12"  # the newest: every mechanism the model has


def profile_names() -> tuple[str, ...]:
    """The profile names, oldest first."""
    return PROFILES


def profile_at_least(name: str, oldest: str) -> bool:
    """True when profile ``name`` is ``oldest`` or newer."""
    return PROFILES.index(name) >= PROFILES.index(oldest)


def make_profile(name: str, proposals: list[str] | tuple[str, ...] = ()) -> Profile:
    """The named profile with the given proposals turned on; EINVAL-free errors name what is allowed."""
    if name not in _PROFILES:
        raise KernelError("EINVAL", f"profile {name!r} is unknown; allowed: {', '.join(_PROFILES)}")
    bad = [p for p in proposals if p not in PROPOSALS]
    if bad:
        raise KernelError("EINVAL", f"proposals {bad} unknown; allowed: {', '.join(PROPOSALS)}")
    base = _PROFILES[name]
    extra = frozenset().union(*(_PROPOSAL_ADVICE[p] for p in proposals)) if proposals else frozenset()
    return Profile(base.name, base.advice | extra, base.lazyfree_needs_swap, base.shrink_underused,
                   frozenset(proposals))
