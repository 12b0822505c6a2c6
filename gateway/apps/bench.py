"""`fixgw bench NAME [ARGS]`: run one of the benchmark scripts in ``benchmarks/``.

The scripts print numbers and assert nothing; each has its own ``--help``. They live in
the source tree (an editable install, as README's commands make), not in the package.
"""
from __future__ import annotations

import subprocess
import sys

from gateway.common.paths import REPO_ROOT

BENCHMARKS = {
    "gateway": ("bench_gateway.py", "gateway hop latency, round trip vs direct, sustained orders/s"),
    "profile": ("profile_gateway.py", "where a gateway order's time goes (stage timers)"),
    "router": ("bench_router.py", "router decision time, probe RTT accuracy"),
    "risk": ("bench_risk.py", "pre-trade risk check and fill cost per order"),
    "sim": ("bench_sim.py", "matching engine, simulator round trip, injected-latency accuracy"),
    "profile-sim": ("profile_sim.py", "where a simulator venue's time per order goes (CPU, stages, first write)"),
    "codec": ("bench_codec.py", "parse + validate a NewOrderSingle, encode an ExecutionReport (vs quickfix, simplefix)"),
    "relay": ("bench_relay.py", "a one-thread relay through the native engine vs through quickfix"),
    "backtest": ("bench_backtest.py", "backtest replay events/s and memory for 10M events"),
    "fuzz": ("fuzz_acceptor.py", "fuzz a native acceptor over loopback (100,000 messages)"),
    "chaos": ("chaos_recovery.py", "SIGKILL the gateway under load, restart, check every order"),
}


def usage(prog: str) -> str:
    rows = "\n".join(f"  {name:<11} {help_}" for name, (_, help_) in BENCHMARKS.items())
    return f"usage: {prog} NAME [ARGS...]   (NAME --help for its options)\n\nbenchmarks:\n{rows}"


def main(argv: list[str] | None = None, prog: str = "fixgw bench", command: str = "bench") -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(usage(prog))
        return 0 if args else 2
    if args[0] not in BENCHMARKS:
        print(f"{prog}: unknown benchmark {args[0]!r}\n\n{usage(prog)}", file=sys.stderr)
        return 2
    script = REPO_ROOT / "benchmarks" / BENCHMARKS[args[0]][0]
    if not script.exists():
        print(f"{prog}: {script} not found: benchmarks run from a source checkout "
              "(pip install -e .)", file=sys.stderr)
        return 2
    return subprocess.call([sys.executable, str(script), *args[1:]])
