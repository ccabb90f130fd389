"""Allocator options: how each model declares its constructor options, the shared ones, and their parsers.

Every allocator declares its options once, in an ``OPTIONS`` table of ``Option`` (default, allowed values or
bounds, and a one-line source), as tcmalloc names its tuning constants where they are defined
(tcmalloc/huge_cache.h). The constructor takes its defaults from the table and checks its arguments
against it; the run-file schema reads the same table. Behaviour switches are enums or named string options,
not bare booleans (tcmalloc/huge_page_options.h); the parsers here turn a value into the member and name the
option and what is allowed when it is not one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class ReleaseAdvice(StrEnum):
    """How an allocator hands free memory back, and what it must do before reusing it."""

    DONTNEED = "dontneed"      # MADV_DONTNEED; reuse needs nothing (the touch faults)
    FREE = "free"              # MADV_FREE; reuse is a plain write
    SPLITTABLE = "splittable"  # MADV_SPLITTABLE; MADV_UNSPLITTABLE before reuse (proposal madv_splittable)
    FREE_UNDO = "free_undo"    # MADV_FREE; MADV_FREE_UNDO before reuse (proposal madv_free_undo)
    NONE = "none"              # never release


class HugepageAdvice(StrEnum):
    """THP advice put on each heap VMA when it is mapped."""

    NONE = "none"
    HUGEPAGE = "hugepage"
    NOHUGEPAGE = "nohugepage"


class Switch(StrEnum):
    """An on/off behaviour switch, spelled as a named option (booleans are accepted too)."""

    ON = "on"
    OFF = "off"


class Collapse(StrEnum):
    """Whether to MADV_COLLAPSE a hugepage once released memory in it is in use again (Linux 6.1+)."""

    OFF = "off"
    AFTER_REUSE = "after_reuse"


@dataclass(frozen=True)
class Option:
    """One constructor option: its default, what it may be, and where both come from.

    ``choices`` lists the allowed names of a named option; ``lo``/``hi`` bound a number (inclusive),
    ``integer`` asks for a whole number. Switches (on/off) have a bool default and neither.
    """

    default: Any
    source: str
    choices: tuple[str, ...] = ()
    lo: float | None = None
    hi: float | None = None
    integer: bool = False

    def check(self, value: Any, name: str) -> Any:
        """``value`` if it is within the bounds; a ValueError names the option and the bound otherwise."""
        number = isinstance(value, int) if self.integer else isinstance(value, int | float)
        if isinstance(value, bool) or not number or not math.isfinite(value) or not self._within(value):
            raise ValueError(f"{name}={value!r} must be {self.allowed()}")
        return value

    def _within(self, value: float) -> bool:
        return (self.lo is None or value >= self.lo) and (self.hi is None or value <= self.hi)

    def allowed(self) -> str:
        """The bound in words: ``an integer >= -1``, ``a number in [0, 33554432]``."""
        noun = "an integer" if self.integer else "a number"
        if self.lo is not None and self.hi is not None:
            return f"{noun} in [{self.lo:g}, {self.hi:g}]"
        if self.lo is not None:
            return f"{noun} >= {self.lo:g}"
        return noun if self.hi is None else f"{noun} <= {self.hi:g}"


def named(enum: type[StrEnum], default: StrEnum, source: str) -> Option:
    """A named option whose allowed values are the members of ``enum``."""
    return Option(default.value, source, choices=tuple(m.value for m in enum))


# The options every heap allocator has (HeapAllocator's constructor).
BASE_OPTIONS: dict[str, Option] = {
    "release_advice": named(ReleaseAdvice, ReleaseAdvice.DONTNEED,
                            "MADV_DONTNEED: what tcmalloc's SystemRelease and glibc's trims use"),
    "hugepage_advice": named(HugepageAdvice, HugepageAdvice.NONE,
                             "no advice: the heap follows the node's THP policy, as every allocator's default"),
    "collapse": named(Collapse, Collapse.OFF, "off: no production allocator calls MADV_COLLAPSE by default"),
}


def parse_choice(enum: type[StrEnum], value: object, name: str) -> StrEnum:
    """``value`` as a member of ``enum``; a ValueError names the option and what is allowed."""
    try:
        return enum(value)
    except ValueError:
        allowed = ", ".join(repr(m.value) for m in enum)
        raise ValueError(f"{name}={value!r} is not allowed; allowed: {allowed}") from None


def parse_switch(value: object, name: str) -> bool:
    """True for ``"on"``/True, False for ``"off"``/False; a ValueError names the option otherwise."""
    if isinstance(value, bool):
        return value
    return parse_choice(Switch, value, name) is Switch.ON

