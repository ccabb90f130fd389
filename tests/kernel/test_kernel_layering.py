"""The kernel package's import layering: leaves <- state (mm) <- mechanisms <- task <- node.

Each kernel module is parsed with ``ast`` and its imports of sibling modules are checked against its layer, so
a mechanism that reaches back into the ``Node`` facade, or an import hidden inside a function to dodge a
cycle, fails here instead of creeping back.
"""

import ast
from pathlib import Path

import clustersim.kernel

KERNEL = Path(clustersim.kernel.__file__).parent

LEAVES = {"errors", "mman", "pagetable", "page_alloc", "costs", "settings", "profiles"}
STATE = {"mm"}
MECHANISMS = {"vma", "ranges", "memory", "fault", "madvise", "vmscan", "compaction", "khugepaged", "huge_memory",
              "filemap", "swap", "slowpath", "oom_kill", "invariants", "memcg", "psi", "slab"}
LAYER = {**dict.fromkeys(LEAVES, 0), **dict.fromkeys(STATE, 1), **dict.fromkeys(MECHANISMS, 2),
         "task": 3, "node": 4, "__init__": 5}


def _is_type_checking(node: ast.If) -> bool:
    return isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"


def _sibling(node: ast.ImportFrom) -> list[str]:
    """Kernel modules named by a relative import (``from .x import`` or ``from . import x, y``)."""
    if node.level != 1:
        return []
    return [node.module] if node.module else [a.name for a in node.names]


def imports(name: str) -> tuple[set[str], set[str], list[int]]:
    """(kernel modules imported at run time, those imported for type checking only, lines of imports
    made anywhere but at module level)."""
    tree = ast.parse((KERNEL / f"{name}.py").read_text())
    runtime, typing_only, nested = set(), set(), []
    for stmt in tree.body:
        if isinstance(stmt, ast.ImportFrom):
            runtime.update(_sibling(stmt))
        elif isinstance(stmt, ast.If) and _is_type_checking(stmt):
            for sub in stmt.body:
                if isinstance(sub, ast.ImportFrom):
                    typing_only.update(_sibling(sub))
    top = {id(s) for s in tree.body}
    top |= {id(sub) for s in tree.body if isinstance(s, ast.If) and _is_type_checking(s) for sub in s.body}
    nested = [n.lineno for n in ast.walk(tree) if isinstance(n, ast.Import | ast.ImportFrom) and id(n) not in top]
    return runtime, typing_only, nested


MODULES = sorted(p.stem for p in KERNEL.glob("*.py"))


def test_every_kernel_module_has_a_layer():
    assert set(MODULES) == set(LAYER), f"place new modules in a layer: {sorted(set(MODULES) ^ set(LAYER))}"


def test_no_import_is_hidden_inside_a_function():
    hidden = {m: imports(m)[2] for m in MODULES if imports(m)[2]}
    assert not hidden, f"imports inside functions (module: lines): {hidden}"


def test_leaves_import_only_leaves():
    for m in LEAVES:
        runtime, typing_only, _ = imports(m)
        assert (runtime | typing_only) <= LEAVES, f"{m} imports {sorted((runtime | typing_only) - LEAVES)}"


def test_the_state_imports_no_kernel_module_at_run_time():
    # mm.py names its field types for type checkers only, so every mechanism can import it
    for m in STATE:
        assert not imports(m)[0], f"{m} imports {sorted(imports(m)[0])} at run time"


def test_mechanisms_never_reach_the_task_or_the_node_facade():
    for m in MECHANISMS:
        runtime, typing_only, _ = imports(m)
        above = {n for n in runtime | typing_only if LAYER[n] > LAYER[m]}
        assert not above, f"mechanism {m} imports {sorted(above)} (take mm.MM / mm.Task instead)"


def test_run_time_imports_point_down_only():
    # the one upward name is Process.node (the machine a task runs on), for type checkers only
    for m in MODULES:
        runtime, _, _ = imports(m)
        up = {n for n in runtime if LAYER[n] > LAYER[m]}
        assert not up, f"{m} imports {sorted(up)} from a higher layer"


def test_run_time_imports_have_no_cycle():
    graph = {m: imports(m)[0] for m in MODULES}
    done: set[str] = set()

    def visit(m: str, path: tuple[str, ...]) -> None:
        assert m not in path, f"import cycle: {' -> '.join((*path, m))}"
        if m in done:
            return
        for n in graph[m]:
            visit(n, (*path, m))
        done.add(m)

    for m in MODULES:
        visit(m, ())
