"""simulate(): one fleet run from a resolved config, returning the tables the results store writes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd

from .model import Fleet


@dataclass
class FleetOutput:
    """What one run produces: the summary (contract keys) and its tables."""

    summary: dict[str, float]
    tenants: pd.DataFrame
    timeseries: pd.DataFrame
    latency_histograms: pd.DataFrame


def simulate(config, progress: Callable[[float, float], None] | None = None, seed: int | None = None
             ) -> FleetOutput:
    """Build the Fleet for ``config``, run it for its duration, and collect its results."""
    fleet = Fleet(config, seed=seed)
    fleet.run(progress)
    return FleetOutput(fleet.summary(), fleet.tenants_frame(), fleet.timeseries_frame(), fleet.histograms_frame())
