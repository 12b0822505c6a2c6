"""Parameter sweeps on Dask: a grid of config overrides x data files, one merged table.

Each task is ``run_one(data_path, overrides)``: it loads the config and the recording in
the worker (only paths and small dicts cross the wire, never event columns) and
returns one summary row. ``distributed.LocalCluster`` by default; ``scheduler`` =
``tcp://HOST:8786`` for a cluster whose workers can read the same paths and import the
strategy. Rows come back in completion order and are sorted by (data, params) at the end.

Grid file (TOML)::

    config = "bt.toml"                         # optional base config
    data = ["day1.rec", "day2.rec"]
    [grid]                                     # dotted config keys -> list of values
    "backtest.queue" = ["risk_averse", "probabilistic"]
    "backtest.params.every" = [50, 100]
    "backtest.default_venue.entry_us" = [100, 400]
"""
from __future__ import annotations

import itertools
import sys
from typing import Any, Callable, Iterable


def grid_points(grid: dict[str, list]) -> list[dict[str, Any]]:
    keys = list(grid)
    return [dict(zip(keys, combo)) for combo in itertools.product(*(grid[k] for k in keys))]


def run_one(data: str, overrides: dict[str, Any], config_path: str | None = None) -> dict:
    from gateway.apps.backtest.data import load_data
    from gateway.apps.backtest.config import load_config
    from gateway.apps.backtest.engine import run_backtest
    from gateway.apps.backtest.report import summarize
    cfg = load_config(config_path, overrides)
    result = run_backtest(load_data(data), cfg)
    return {"data": str(data), **{k: v for k, v in overrides.items()}, **summarize(result)}


def run_sweep(data: Iterable[str], grid: dict[str, list], config_path: str | None = None,
              scheduler: str | None = None, workers: int = 2, processes: bool = True,
              progress: Callable[[int, int], None] | None = None) -> list[dict]:
    from distributed import Client, LocalCluster, as_completed
    points = grid_points(grid)
    jobs = [(str(d), p) for d in data for p in points]
    cluster = None
    if scheduler:
        client = Client(scheduler)
    else:
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=processes,
                               dashboard_address=None)
        client = Client(cluster)
    try:
        futures = [client.submit(run_one, d, p, config_path, pure=False) for d, p in jobs]
        rows = []
        for done, fut in enumerate(as_completed(futures), 1):
            rows.append(fut.result())
            if progress is not None:
                progress(done, len(futures))
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    keys = list(grid)
    rows.sort(key=lambda r: (r["data"], *[str(r.get(k)) for k in keys]))
    return rows


def text_progress(done: int, total: int, width: int = 30) -> None:
    """A one-line progress bar on stderr."""
    filled = int(width * done / total) if total else width
    sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total}")
    if done == total:
        sys.stderr.write("\n")
    sys.stderr.flush()
