"""clustersim: a simulator of how a fleet of Linux machines manages memory for many tenants.

The experiment entry points are loaded on first use, so that importing a kernel or allocator module (which
imports this package) does not pay for pandas, pydantic and scipy.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "run": "clustersim.experiments.run",
    "sweep": "clustersim.experiments.sweep",
    "load": "clustersim.experiments.results",
    "load_config": "clustersim.experiments.config",
    "ConfigError": "clustersim.experiments.errors",
    "RunResult": "clustersim.experiments.run",
    "RunFailed": "clustersim.experiments.run",
    "plan": "clustersim.whatif.planner",
    "compare": "clustersim.whatif.compare",
    "diff": "clustersim.whatif.configdiff",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    if name == "__version__":
        from clustersim.experiments.results import package_version

        return package_version()
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'clustersim' has no attribute {name!r}")
