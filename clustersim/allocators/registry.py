"""make_allocator: build an allocator model by kind name; options_from_section: a run file's section as keywords.

A run file names an allocator's options as its own section keys (``madvise``, ``skip_subrelease_short``,
``collapse: true``); the models take constructor keywords (``release_advice``, ``skip_subrelease_short_s``,
``collapse="after_reuse"``). ``SECTION_KEYWORDS`` and ``SECTION_SWITCHES`` declare that correspondence once:
``options_from_section`` translates with them, and the run-file schema reads each key's default, allowed
values and bounds through ``section_options`` from the models' own ``OPTIONS`` tables.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .arenas import JEMALLOC_FRONTEND_OPTIONS, jemalloc_frontend
from .base import HeapAllocator
from .frontend import TCMALLOC_FRONTEND_OPTIONS, Frontend, tcmalloc_frontend
from .glibc import GlibcMalloc, MallocTrim
from .huge_page_aware_allocator import HugePageAwareAllocator
from .jemalloc import JemallocArena
from .options import BASE_OPTIONS, Collapse, HugepageAdvice, Option
from .tcmalloc import LegacyPageHeap

ALLOCATORS: dict[str, type[HeapAllocator]] = {
    "tcmalloc": LegacyPageHeap,
    "temeraire": HugePageAwareAllocator,
    "jemalloc": JemallocArena,
    "glibc": GlibcMalloc,
}

# Section key -> the constructor keyword its value is passed to unchanged, per allocator kind.
SECTION_KEYWORDS: dict[str, dict[str, str]] = {
    "tcmalloc": {"madvise": "release_advice", "release_rate": "release_rate",
                 "prefer_split_hugepages": "prefer_split_hugepages", "prefer_long_spans": "prefer_long_spans",
                 "refault_discount": "refault_discount"},
    "temeraire": {"madvise": "release_advice", "release_rate": "release_rate",
                  "skip_subrelease_short": "skip_subrelease_short_s",
                  "skip_subrelease_long": "skip_subrelease_long_s"},
    "jemalloc": {"dirty_decay_ms": "dirty_decay_ms", "muzzy_decay_ms": "muzzy_decay_ms",
                 "background_thread": "background_thread", "thp": "thp"},
    "glibc": {"madvise": "release_advice", "trim_threshold": "trim_threshold",
              "mmap_threshold": "mmap_threshold"},
}
# The frontend's options (frontend.py, arenas.py) per kind: section key = keyword. At their defaults the kind's
# page-level model is built alone (the dense heap); otherwise a Frontend over it.
FRONTEND_OPTIONS: dict[str, dict[str, Option]] = {
    "tcmalloc": TCMALLOC_FRONTEND_OPTIONS, "temeraire": TCMALLOC_FRONTEND_OPTIONS,
    "jemalloc": JEMALLOC_FRONTEND_OPTIONS,
}
for _kind, _options in FRONTEND_OPTIONS.items():
    SECTION_KEYWORDS[_kind].update({key: key for key in _options})
# jemalloc has no release_advice or hugepage_advice: ``madvise`` is its lazy purge (``none``: no lazy purge)
# and ``hugepage_advice: true`` is opt.thp ``always`` unless thp is set (options_from_section).
_JEMALLOC_KEYS = ("madvise", "hugepage_advice")


@dataclass(frozen=True)
class SectionSwitch:
    """A true/false section key standing for a named constructor option: its keyword and two values."""

    keyword: str
    option: Option
    on: str
    off: str

    @property
    def default(self) -> bool:
        """The section's default: true when the option's default is the ``on`` value."""
        return self.option.default == self.on


SECTION_SWITCHES: dict[str, SectionSwitch] = {
    "hugepage_advice": SectionSwitch("hugepage_advice", BASE_OPTIONS["hugepage_advice"],
                                     HugepageAdvice.HUGEPAGE.value, HugepageAdvice.NONE.value),
    "collapse": SectionSwitch("collapse", BASE_OPTIONS["collapse"], Collapse.AFTER_REUSE.value,
                              Collapse.OFF.value),
    "malloc_trim": SectionSwitch("malloc_trim", GlibcMalloc.OPTIONS["malloc_trim"], MallocTrim.EVERY_TICK.value,
                                 MallocTrim.OFF.value),
}


def section_options(kind: str) -> dict[str, Option]:
    """The declared option behind each section key of ``kind`` that passes unchanged to a keyword."""
    options = {**ALLOCATORS[kind].OPTIONS, **FRONTEND_OPTIONS.get(kind, {})}
    return {key: options[keyword] for key, keyword in SECTION_KEYWORDS[kind].items()}


def options_from_section(section: Mapping[str, Any], clock: Callable[[], float] | None) -> dict[str, Any]:
    """Constructor keywords for a run file's allocator section (a plain mapping with ``kind``), with ``clock``.

    A key that is neither a keyword, a switch of this kind, nor one of jemalloc's own is a ValueError.
    """
    kind = section["kind"]
    keywords, accepted = SECTION_KEYWORDS[kind], ALLOCATORS[kind].OPTIONS
    opts: dict[str, Any] = {"clock": clock}
    for key, value in section.items():
        switch = SECTION_SWITCHES.get(key)
        if key in keywords:
            opts[keywords[key]] = value
        elif switch is not None and switch.keyword in accepted:
            opts[switch.keyword] = switch.on if value else switch.off
        elif key != "kind" and not (kind == "jemalloc" and key in _JEMALLOC_KEYS):
            raise ValueError(f"{kind} allocator section: {key!r} is not an option of this kind")
    if kind == "jemalloc":
        madvise, thp = section["madvise"], opts["thp"]
        opts["muzzy_advice"] = "dontneed" if madvise == "none" else madvise
        opts["thp"] = "always" if section["hugepage_advice"] and thp == "default" else thp
    return opts


def allowed_options(kind: str) -> tuple[str, ...]:
    """The keyword options an allocator kind accepts."""
    params = inspect.signature(ALLOCATORS[kind].__init__).parameters
    return tuple(name for name, p in params.items() if p.kind is inspect.Parameter.KEYWORD_ONLY)


def make_allocator(kind: str, process, **options) -> HeapAllocator | Frontend:
    """The allocator ``kind`` over ``process``; a ValueError names an unknown kind or option.

    With every frontend option at its default this is the page-level model alone; otherwise a ``Frontend``.
    """
    if kind not in ALLOCATORS:
        raise ValueError(f"allocator kind {kind!r} is unknown; allowed: {', '.join(ALLOCATORS)}")
    declared = FRONTEND_OPTIONS.get(kind, {})
    frontend = {key: options.pop(key) for key in list(options) if key in declared}
    allowed = allowed_options(kind) + tuple(declared)
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise ValueError(f"{kind} allocator: unknown option(s) {', '.join(unknown)}; "
                         f"allowed: {', '.join(allowed)}")
    if all(value == declared[key].default for key, value in frontend.items()):
        return ALLOCATORS[kind](process, **options)
    if kind == "jemalloc":
        return jemalloc_frontend(process, **frontend, **options)
    return tcmalloc_frontend(ALLOCATORS[kind](process, **options), **frontend)
