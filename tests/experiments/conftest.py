"""Fixtures for the experiments tests: a small run config and sweep, and a call-counting fake simulation."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

BASE: dict[str, Any] = {
    "name": "tiny",
    "duration": "1m",
    "kernel": {"proposals": ["madv_splittable"]},
    "nodes": [{"name": "a", "count": 2, "memory": "16G"}],
    "tenants": [{"name": "web", "replicas": 2, "workload": {"heap": "2G"}}],
}


@pytest.fixture
def base() -> dict[str, Any]:
    return copy.deepcopy(BASE)


@pytest.fixture
def small_sweep(base: dict[str, Any]) -> dict[str, Any]:
    """3 advice x 2 heaps x 2 seeds = 12 runs."""
    return {"name": "small", "base": base, "seeds": 2,
            "grid": {"tenants.0.allocator.madvise": ["dontneed", "free", "splittable"],
                     "tenants.0.workload.heap": ["1G", "2G"]}}


@pytest.fixture
def calls(tmp_path: Path) -> Path:
    folder = tmp_path / "calls"
    folder.mkdir()
    return folder
