"""Experiments: run-file schema and validation, single runs, sweeps, runners and the results store."""

from .config import RunConfig, config_hash, load_config, resolved
from .errors import ConfigError
from .metrics import METRICS, SUMMARY_KEYS
from .results import Results, load, read_manifest
from .run import RunFailed, RunResult, run
from .sweep import SweepReport, plan, sweep

__all__ = [
    "METRICS", "SUMMARY_KEYS", "ConfigError", "Results", "RunConfig", "RunFailed", "RunResult",
    "SweepReport", "config_hash", "load", "load_config", "plan", "read_manifest", "resolved", "run", "sweep",
]
