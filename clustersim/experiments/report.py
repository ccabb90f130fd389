"""What ``clustersim run`` prints of a run's results: the tenant x node-group table, or everything as JSON.

The table shows every summary key as a row, in its display unit (``metrics.METRICS``: coverage in %, memory
in GiB, latency in ms), with one column per (tenant, node group). The JSON document holds the fleet summary
and the ``tenants`` and ``tenant_groups`` tables as lists of records, values in their stored units (bytes,
seconds, ratios), NaN as null, so that it parses with any JSON reader.
"""

from __future__ import annotations

import json
import math
from typing import Any

import pandas as pd

from ..results_contract import SUMMARY_KEYS, TENANT_GROUP_KEYS
from .metrics import metric

KEY_WIDTH = 28     # the summary key column, as the fleet summary prints it
UNIT_WIDTH = 18    # the widest unit, "% of anon heap RSS"
MIN_COLUMN = 12


def tenant_groups_table(frame: pd.DataFrame) -> str:
    """The (tenant, node group) table: a header of two lines (tenant, group), then one line per summary key."""
    pairs = list(frame[list(TENANT_GROUP_KEYS)].itertuples(index=False, name=None))
    widths = [max(MIN_COLUMN, len(t) + 2, len(g) + 2) for t, g in pairs]
    pad = " " * (2 + KEY_WIDTH + 1 + UNIT_WIDTH)
    lines = ["tenant x node group:",
             pad + "".join(f"{t:>{w}}" for (t, _), w in zip(pairs, widths, strict=True)),
             pad + "".join(f"{g:>{w}}" for (_, g), w in zip(pairs, widths, strict=True))]
    keys = [k for k in SUMMARY_KEYS if k in frame.columns]
    keys += [k for k in frame.columns if k not in keys and k not in TENANT_GROUP_KEYS]
    for key in keys:
        shown = metric(key)
        values = "".join(f"{v * shown.scale:>{w}.6g}" for v, w in zip(frame[key], widths, strict=True))
        lines.append(f"  {key:<{KEY_WIDTH}} {shown.unit:<{UNIT_WIDTH}}{values}")
    return "\n".join(lines)


def results_json(summary: dict[str, float], tenants: pd.DataFrame, tenant_groups: pd.DataFrame) -> str:
    """The run's summary, tenants and tenant_groups as one JSON document."""
    doc = {"summary": {k: _plain(v) for k, v in summary.items()},
           "tenants": _records(tenants), "tenant_groups": _records(tenant_groups)}
    return json.dumps(doc, indent=2, allow_nan=False)


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [{k: _plain(v) for k, v in row.items()} for row in frame.to_dict("records")]


def _plain(value: Any) -> Any:
    """A JSON value: numpy scalars as Python numbers, NaN and infinities as null."""
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
