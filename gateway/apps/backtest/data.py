"""Where a backtest's market data comes from: ``--data SPEC`` (the CLI and sweep workers)."""
from __future__ import annotations

from pathlib import Path

from gateway.core.recording import Recording, read_csv, read_recording


def load_data(spec: str) -> Recording:
    """A recording directory, an events .csv, or ``synth:N[:SEED]`` (synthetic 3-venue data).

    Raises ValueError naming the spec when it is none of those."""
    s = str(spec)
    if s.startswith("synth:"):
        from gateway.apps.backtest.synth import synthetic
        n, _, seed = s[6:].partition(":")
        return synthetic(int(float(n)), seed=int(seed or 1))
    p = Path(s)
    if p.is_dir():
        return read_recording(p)
    if p.suffix == ".csv":
        return read_csv(p)
    raise ValueError(f"--data {s}: not a recording directory, a .csv or synth:N")
