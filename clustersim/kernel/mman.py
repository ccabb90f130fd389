"""madvise advice values (include/uapi/asm-generic/mman-common.h) plus the 2015 linux-mm proposals.

SPLITTABLE/UNSPLITTABLE (David Rientjes) and FREE_UNDO (Daniel Micay) were never merged; their numbers
here are placeholders outside the kernel's range so they cannot be mistaken for real ones.
"""

from __future__ import annotations

from enum import IntEnum


class MADV(IntEnum):
    """The advice a process can pass to madvise()."""

    DONTNEED = 4
    FREE = 8
    HUGEPAGE = 14
    NOHUGEPAGE = 15
    COLD = 20
    PAGEOUT = 21
    COLLAPSE = 25
    SPLITTABLE = 1001
    UNSPLITTABLE = 1002
    FREE_UNDO = 1003
