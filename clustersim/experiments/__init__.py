"""Experiments: run-file schema and validation, single runs, sweeps, runners and the results store.

The names below are loaded on first use, so that reading results (``results``, ``metrics``) does not pay
for the config schema (pydantic) or the simulator. The ``run`` and ``sweep`` functions are
``clustersim.run`` and ``clustersim.sweep``: here those names are their modules.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "METRICS": "metrics", "SUMMARY_KEYS": "metrics",
    "ConfigError": "errors",
    "RunConfig": "config", "config_hash": "config", "load_config": "config", "resolved": "config",
    "Results": "results", "load": "results", "read_manifest": "results",
    "RunFailed": "run", "RunResult": "run",
    "SweepReport": "sweep", "plan": "sweep",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
