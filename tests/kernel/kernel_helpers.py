"""Shared helpers for the kernel model's tests: sizes, the selftests' values_close, steps checked for conservation."""

from __future__ import annotations

PAGE = 4096
MB = 1 << 20
THP = 2 * MB


def values_close(a: float, b: float, err_pct: float) -> bool:
    """tools/testing/selftests/cgroup: |a - b| <= (a + b) * err / 100 (an asymmetric band)."""
    return abs(a - b) <= (a + b) * err_pct / 100


def run_alloc(node, cgroup: str | None, size, **spawn):
    """cg_run(cgroup, alloc_anon, size): a new task writes ``size`` of anonymous memory; node.check() after."""
    p = node.spawn(cgroup=cgroup, **spawn)
    r = p.mmap(size)
    p.touch(r)
    node.check()
    return p, r


def run_pagecache(node, cgroup: str | None, size, name: str):
    """alloc_pagecache(): a new task reads ``size`` of file ``name`` into the page cache."""
    p = node.spawn(cgroup=cgroup)
    p.read_file(size, name)
    node.check()
    return p
