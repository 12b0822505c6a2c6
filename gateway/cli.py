"""`fixgw`: one command, a subcommand per job.

Each subcommand lives in its own module and parses its own arguments; this file only
dispatches, so that `fixgw sim` does not import the gateway and vice versa.
"""
from __future__ import annotations

import importlib
import sys

from gateway.common.configfile import ConfigError

SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "sim": ("sim_exchange.cli", "run the simulated FIX 4.4 exchange (one or more venues)"),
    "run": ("gateway.apps.server.app", "run the gateway (OMS acceptor + venue initiators)"),
    "status": ("gateway.apps.server.admin", "show the status of a running gateway"),
    "kill": ("gateway.apps.server.admin", "trip the kill switch of a running gateway"),
    "reset": ("gateway.apps.server.admin", "reset a tripped kill switch (a person decides)"),
    "session": ("gateway.apps.ops", "list the running gateway's FIX sessions; log one out or in; set its sequence numbers"),
    "order": ("gateway.apps.ops", "send one order (or cancel/replace) through the running gateway and print its reports"),
    "certify": ("gateway.apps.certify.cli", "run FIX session certification scenarios against a counterparty"),
    "demo": ("gateway.apps.demo.cli", "simulator + gateway + scalping OMS client, live view and report"),
    "trade": ("gateway.apps.trade.cli", "run a scalping tactic live over FIX (its simulator scenario + a gateway by default)"),
    "backtest": ("gateway.apps.backtest.cli", "replay recorded market data through a strategy, the router and risk"),
    "record": ("gateway.apps.backtest.record", "record venues' market data and latency probes to Parquet"),
    "bench": ("gateway.apps.bench", "run a benchmark script (gateway, profile, router, risk, sim)"),
}


def usage() -> str:
    width = max(len(n) for n in SUBCOMMANDS)
    rows = "\n".join(f"  {name:<{width}}  {help_}" for name, (_, help_) in SUBCOMMANDS.items())
    return f"usage: fixgw <command> [options]\n\ncommands:\n{rows}\n\nfixgw <command> --help for its options"


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(usage())
        return 0 if args else 2
    name, rest = args[0], args[1:]
    if name not in SUBCOMMANDS:
        print(f"fixgw: unknown command {name!r}\n\n{usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(SUBCOMMANDS[name][0])
    try:
        return int(module.main(rest, prog=f"fixgw {name}", command=name) or 0)
    except ConfigError as exc:
        print(f"fixgw {name}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
