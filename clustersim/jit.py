"""Compiled inner loops for the hot paths: numba's ``njit`` with an on-disk cache.

A fleet tick makes a few dozen kernel and allocator calls per process, each over a few hundred pages. As
chains of numpy operations every call paid numpy's fixed cost of about a microsecond per operation many
times over; one compiled loop over the pages pays one dispatch instead. Functions compiled here are plain
loops over numpy arrays with the same integer arithmetic as the numpy code they replace, so results do not
change. Compiled code is cached on disk, so only the first run on a machine compiles.
``NUMBA_DISABLE_JIT=1`` runs the same functions as Python, for debugging.

Small helpers that a compiled loop calls once per item (a page, a span, a list entry) are marked ``inline``:
numba then compiles their body into each caller. A call between separately compiled functions updates the
reference count of every array it passes, on the way in and out, and for a helper that reads a few words
that bookkeeping costs several times the work itself; inlined, the counts are pruned away. Larger functions
stay separate, since inlining them everywhere multiplies compile time.

The cache of a module's functions lives in a directory named by a hash of the module's source and of every
clustersim module it imports, directly or not (``source_key``). numba checks a cached function only against
its own file, so a caller in one file kept running the old machine code of a helper changed in another (an
inlined helper, or a constant it reads); keyed by the whole import closure, any such change is a new key,
and a fresh compile.
"""

from __future__ import annotations

import ast
import hashlib
import os
from functools import cache
from pathlib import Path

import numba

PACKAGE_DIR = Path(__file__).resolve().parent
CACHE_ROOT = Path(os.environ.get("NUMBA_CACHE_DIR") or PACKAGE_DIR / "__pycache__" / "numba")


def njit(fn):
    """Compile ``fn`` to machine code on first call; cached on disk, no bounds checks, GIL released."""
    return _compiled(fn, inline="never")


def inline(fn):
    """``njit`` for a small per-item helper: compiled into each compiled caller (and on its own for Python)."""
    return _compiled(fn, inline="always")


def _compiled(fn, inline: str):
    """numba's dispatcher for ``fn``, its cache under the key of ``fn``'s module (numba reads the cache
    directory when the dispatcher is made, so it is set for that moment only)."""
    saved = numba.config.CACHE_DIR
    numba.config.CACHE_DIR = str(CACHE_ROOT / source_key(fn.__module__))
    try:
        return numba.njit(cache=True, nogil=True, inline=inline)(fn)
    finally:
        numba.config.CACHE_DIR = saved


@cache
def source_key(module: str) -> str:
    """16 hex digits of the sha256 of the sources of ``module`` and of every clustersim module it imports."""
    digest = hashlib.sha256()
    for name in sorted(import_closure(module)):
        digest.update(name.encode() + b"\0" + module_file(name).read_bytes())
    return digest.hexdigest()[:16]


def import_closure(module: str) -> set[str]:
    """``module`` and the clustersim modules it imports, transitively (``from .x import y``, ``import
    clustersim.x``, and ``from pkg import submodule``)."""
    seen, todo = set(), [module]
    while todo:
        name = todo.pop()
        if name in seen or module_file(name) is None:
            continue
        seen.add(name)
        todo.extend(_imports(name))
    return seen


@cache
def module_file(name: str) -> Path | None:
    """The source file of clustersim module ``name`` (a package's ``__init__.py``); None for others."""
    parts = name.split(".")
    if parts[0] != PACKAGE_DIR.name:
        return None
    base = PACKAGE_DIR.joinpath(*parts[1:])
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


@cache
def _imports(name: str) -> tuple[str, ...]:
    """The modules one module's import statements read (whether or not they are clustersim's)."""
    path = module_file(name)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(package, node.module, node.level)
            subs = [f"{base}.{alias.name}" for alias in node.names]
            modules = [sub for sub in subs if module_file(sub) is not None]
            # ``from pkg import a, b`` of submodules only reads those submodules, not the package's own code
            found += modules if len(modules) == len(subs) else [base, *modules]
    return tuple(found)


def _resolve(package: str, module: str | None, level: int) -> str:
    """The absolute name of ``from <level dots><module> import ...`` written in ``package``."""
    if level == 0:
        return module or ""
    parts = package.split(".")
    base = ".".join(parts[: len(parts) - (level - 1)])
    return f"{base}.{module}" if module else base


__all__ = ["inline", "njit", "source_key"]
