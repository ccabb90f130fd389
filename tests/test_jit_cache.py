"""The compiled-code cache is keyed by a module's whole import closure (clustersim/jit.py)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from clustersim import jit

PLACEMENT = "clustersim.allocators.huge_page_placement"


@pytest.fixture
def package_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the package's sources that jit's key functions read instead of the real ones."""
    copy = tmp_path / "clustersim"
    shutil.copytree(jit.PACKAGE_DIR, copy, ignore=shutil.ignore_patterns("__pycache__", "data"))
    monkeypatch.setattr(jit, "PACKAGE_DIR", copy)
    for fn in (jit.source_key, jit.module_file, jit._imports):
        fn.cache_clear()
    yield copy
    for fn in (jit.source_key, jit.module_file, jit._imports):
        fn.cache_clear()


def _edit(path: Path) -> None:
    path.write_text(path.read_text() + "\n# edited\n")


def test_a_change_to_an_imported_helper_gives_its_callers_a_new_key(package_copy: Path) -> None:
    # Temeraire's placement inlines the page tracker's helpers (another file): numba alone would keep the
    # placement's cached machine code after the tracker changed.
    before = {m: jit.source_key(m) for m in (PLACEMENT, "clustersim.allocators.sorted_blocks")}
    _edit(package_copy / "allocators" / "page_tracker.py")
    jit.source_key.cache_clear()
    assert jit.source_key(PLACEMENT) != before[PLACEMENT]
    assert jit.source_key("clustersim.allocators.sorted_blocks") == before["clustersim.allocators.sorted_blocks"]


def test_a_module_outside_the_closure_leaves_the_key_alone(package_copy: Path) -> None:
    key = jit.source_key(PLACEMENT)
    assert "clustersim.figures.plot" not in jit.import_closure(PLACEMENT)
    _edit(package_copy / "figures" / "plot.py")
    jit.source_key.cache_clear()
    assert jit.source_key(PLACEMENT) == key


def test_the_closure_follows_relative_absolute_and_submodule_imports() -> None:
    closure = jit.import_closure(PLACEMENT)
    assert {"clustersim.allocators.page_tracker",      # from .page_tracker import ... (two levels down)
            "clustersim.allocators.huge_page_filler",
            "clustersim.kernel.pagetable",             # from clustersim.kernel.pagetable import ...
            "clustersim.units", "clustersim.jit"} <= closure
    assert "clustersim.fleet.model" not in closure     # nothing below the fleet layer imports it


def test_a_compiled_function_caches_under_its_modules_key() -> None:
    from clustersim.allocators import huge_page_placement
    cache = getattr(huge_page_placement.place_spans, "_cache", None)
    if cache is None:
        pytest.skip("NUMBA_DISABLE_JIT: no compiled code, no cache")
    assert Path(cache._cache_path).is_relative_to(jit.CACHE_ROOT / jit.source_key(PLACEMENT))
