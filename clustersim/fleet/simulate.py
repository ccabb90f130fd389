"""simulate(): one fleet run from a resolved config, returning the tables of the results contract."""

from __future__ import annotations

from collections.abc import Callable

from ..results_contract import RunTables
from .model import Fleet


def simulate(config, progress: Callable[[float, float], None] | None = None, seed: int | None = None
             ) -> RunTables:
    """Build the Fleet for ``config``, run it for its duration, and collect its results."""
    fleet = Fleet(config, seed=seed)
    fleet.run(progress)
    return RunTables(fleet.summary(), fleet.tenants_frame(), fleet.tenant_groups_frame(), fleet.timeseries_frame(),
                     fleet.histograms_frame())
