"""Helpers shared by the experiments tests (a module name no other test folder uses)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

VOLATILE = ["wall_s", "host"]  # columns that legitimately differ between runners and machines


def count_calls(folder: Path) -> dict[str, int]:
    """Completed fake calls per (config hash prefix, seed)."""
    out: dict[str, int] = {}
    for path in folder.glob("*.call"):
        key = path.name.rsplit("-", 1)[0]
        out[key] = out.get(key, 0) + 1
    return out


def stable_runs(folder: Path) -> pd.DataFrame:
    """runs.parquet sorted by run id, without the columns that depend on timing or host."""
    runs = pd.read_parquet(folder / "runs.parquet")
    return runs.drop(columns=VOLATILE).sort_values("run_id").reset_index(drop=True)
