"""``fixgw backtest``: replay a recording through a strategy, the router and the risk engine.

    fixgw backtest --data run.rec --config bt.toml [--strategy mod:Class] [--set key=value ...] [--out DIR]
    fixgw backtest sweep --grid grid.toml [--data a.rec b.rec] [--scheduler tcp://HOST:8786] [--workers 2]
    fixgw backtest synth --events 1000000 --out synth.rec          # synthetic 3-venue data
    fixgw backtest import-lobster MSG.csv BOOK.csv --out lob.rec [--venue V --symbol S]
    fixgw backtest import-csv events.csv [--probes probes.csv] --out x.rec
    fixgw backtest fidelity --duration 30 --out var/fidelity   # live demo run, recorded, replayed, compared

``--data`` takes a recording directory (events.parquet + probes.parquet), a CSV in the
documented layout (gateway/core/recording.py) or ``synth:N`` (N synthetic events).
``--set`` overrides any config key, dotted: ``--set backtest.queue=probabilistic``.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


def _value(text: str):
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def _overrides(pairs: list[str]) -> dict:
    out = {}
    for pair in pairs or ():
        key, sep, val = pair.partition("=")
        if not sep:
            raise SystemExit(f"--set {pair!r}: expected key=value")
        out[key.strip()] = _value(val.strip())
    return out


def main(argv: list[str] | None = None, prog: str = "fixgw backtest", command: str = "backtest") -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in ("sweep", "synth", "import-lobster", "import-csv", "fidelity"):
        return {"sweep": _sweep, "synth": _synth, "import-lobster": _lobster,
                "import-csv": _csv, "fidelity": _fidelity}[argv[0]](argv[1:], f"{prog} {argv[0]}")
    ap = argparse.ArgumentParser(prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True)
    ap.add_argument("--config")
    ap.add_argument("--strategy", help="module:Class (overrides backtest.strategy)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--out", default="backtest-report")
    args = ap.parse_args(argv)
    from gateway.apps.backtest.config import load_config
    from gateway.apps.backtest.data import load_data
    from gateway.apps.backtest.engine import run_backtest
    from gateway.apps.backtest.report import summarize, write_report
    over = _overrides(args.set)
    if args.strategy:
        over["backtest.strategy"] = args.strategy
    cfg = load_config(args.config, over)
    if not cfg.backtest.strategy:
        raise SystemExit("no strategy: set backtest.strategy in the config or pass --strategy module:Class")
    try:
        data = load_data(args.data)
    except ValueError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 2
    result = run_backtest(data, cfg)
    paths = write_report(result, args.out)
    print(json.dumps(summarize(result), indent=2))
    print(f"report: {paths['markdown']}")
    return 0


def _sweep(argv: list[str], prog: str) -> int:
    ap = argparse.ArgumentParser(prog=prog)
    ap.add_argument("--grid", required=True, help="TOML: config, data, [grid] (see sweep.py)")
    ap.add_argument("--data", nargs="*", help="overrides the grid file's data list")
    ap.add_argument("--config")
    ap.add_argument("--scheduler", help="tcp://HOST:8786 (default: a LocalCluster here)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--out", help="write the merged table here (.md and .json)")
    args = ap.parse_args(argv)
    from gateway.apps.backtest.report import table
    from gateway.apps.backtest.sweep import run_sweep, text_progress
    with open(args.grid, "rb") as fh:
        spec = tomllib.load(fh)
    data = args.data or spec.get("data") or []
    if not data:
        raise SystemExit("no data: list it in the grid file (data = [...]) or pass --data")
    rows = run_sweep(data, spec.get("grid", {}), args.config or spec.get("config"), args.scheduler,
                     args.workers, progress=text_progress)
    md = table(rows)
    print(md)
    if args.out:
        Path(args.out).with_suffix(".md").write_text(md)
        Path(args.out).with_suffix(".json").write_text(json.dumps(rows, indent=2, default=str))
    return 0


def _synth(argv: list[str], prog: str) -> int:
    ap = argparse.ArgumentParser(prog=prog)
    ap.add_argument("--events", type=float, default=1e6)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    from gateway.apps.backtest.synth import synthetic
    from gateway.core.recording import write_recording
    rec = synthetic(int(args.events), seed=args.seed)
    print(write_recording(rec, args.out), len(rec), "events")
    return 0


def _lobster(argv: list[str], prog: str) -> int:
    ap = argparse.ArgumentParser(prog=prog)
    ap.add_argument("messages")
    ap.add_argument("orderbook")
    ap.add_argument("--venue", default="LOBSTER")
    ap.add_argument("--symbol", default="LOB")
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    from gateway.core.recording import read_lobster, write_recording
    rec = read_lobster(args.messages, args.orderbook, args.venue, args.symbol)
    print(write_recording(rec, args.out), len(rec), "events")
    return 0


def _csv(argv: list[str], prog: str) -> int:
    ap = argparse.ArgumentParser(prog=prog)
    ap.add_argument("events")
    ap.add_argument("--probes")
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    from gateway.core.recording import read_csv, write_recording
    rec = read_csv(args.events, args.probes)
    print(write_recording(rec, args.out), len(rec), "events")
    return 0


def _fidelity(argv: list[str], prog: str) -> int:
    from gateway.apps.backtest.fidelity import main as fidelity_main
    return fidelity_main(argv, prog)


if __name__ == "__main__":
    sys.exit(main())
