"""Where a simulated venue's time goes per order (prints tables, asserts nothing).

    python benchmarks/profile_sim.py [--orders 3000] [--flow 0] [--md] [--latency-us 0] [--top 25]
                                     [--no-profile] [--inproc [--first-write] [--profile]]

One native venue (``SimExchange``, its loop on its own thread) in this process; the load
comes from a raw-bytes client in a child process (one IOC order at a time, waiting for its
terminal report), so the client does not compete for this interpreter. Printed:

1. the venue loop thread's CPU time per order (thread_time / orders, profiler off), with
   the client's NOS -> first ER p50 as it saw it;
2. the same run under cProfile (enabled on the loop thread): the top functions by tottime
   and a per-stage breakdown (us per order): matching engine, publishing (reports, market
   data), background flow and market, FIX engine (parse, validate, session, store, transport),
   delay line.

``--flow R``: background flow at R orders/s per symbol; ``--md``: the client subscribes to
market data (so every order that touches the book publishes an X).

``--no-profile``: only (1). ``--latency-us``: with a delay line; its delivery errors are printed.

``--inproc``: no sockets and no client process: the venue's acceptor gets a fake transport
(bytes written are counted) and the orders' wire bytes are fed to it directly, in this one
thread (``--probes``: TestRequests instead of orders, a probe's venue side; ``--delay-line``:
the venue's delay lines on at zero delay, as ``bench_router.py probes`` runs it). Prints the Python CPU per order only (stable enough for A/B runs and for
``valgrind --tool=callgrind``); ``--profile`` adds the cProfile tables; ``--first-write`` the
wall time inside the venue from an order's bytes arriving (``data_received``) to its first
ExecutionReport's write, and to the end of that callback (p50/p90; no kernel time).
"""
from __future__ import annotations

import argparse
import cProfile
import pstats
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

def _compiled(*words: str):
    """A mypyc-compiled function as cProfile names it (file '~', name "<method 'parse' of
    'Session' objects>" or '<built-in method gateway.fix.codec.parse>')."""
    return lambda f, n: f == "~" and any(w in n for w in words)


STAGES = [
    ("matching engine", lambda f, n: "/core/matching/" in f
        or _compiled("gateway.core.matching.", "'MatchingEngine'", "'Instrument'", "'ExecReport'",
                     "'Order'", "'Subscription'")(f, n)),
    ("publish: reports + md (native.py, fixtext)", lambda f, n: f.endswith(("sim_exchange/native.py", "sim_exchange/fixtext.py", "sim_exchange/status.py", "sim_exchange/publish.py"))
        or _compiled("sim_exchange.fixtext.")(f, n)),
    ("flow + market", lambda f, n: f.endswith(("sim_exchange/flow.py", "sim_exchange/market.py", "sim_exchange/exchange.py"))),
    ("delay line + timer", lambda f, n: f.endswith("sim_exchange/delayline.py")),
    ("fix: codec", lambda f, n: f.endswith("fix/codec.py") or _compiled("gateway.fix.codec.", "'Framer'", "'Message'")(f, n)),
    ("fix: dictionary validate", lambda f, n: f.endswith("fix/dictionary.py") or _compiled("'Dictionary'")(f, n)),
    ("fix: session", lambda f, n: f.endswith("fix/session.py") or _compiled("gateway.fix.session.", "'Session'")(f, n)),
    ("fix: store", lambda f, n: f.endswith("fix/store.py") or _compiled("gateway.fix.store.", "Store'")(f, n)),
    ("fix: transport + engine", lambda f, n: f.endswith(("fix/transport.py", "fix/engine.py"))),
    ("OS: writes (socket, file)", lambda f, n: "write" in n),
    ("other", lambda f, n: True),
]


def client_main(port: int, target: str, n: int, md: bool) -> None:
    """The child: log on, optionally subscribe, send n IOC orders one at a time, print p50."""
    from bench_sim import WireClient, pct, wire_round_trips
    c = WireClient(port, "CLIENT", target).logon()
    if md:
        c.send("V", "262=md1\x01263=1\x01264=5\x01267=2\x01269=0\x01269=1\x01146=1\x0155=EURUSD\x01")
        c.wait_for(b"\x0135=W\x01")
    print("ready", flush=True)
    sys.stdin.readline()
    rt = wire_round_trips(c, n)
    print(f"p50 {pct(rt, 50):.0f}", flush=True)
    c.close()


def write_config(tmp: Path, port: int, flow: float, latency_us: float, delay_line: bool = False) -> Path:
    path = tmp / "sim.toml"
    path.write_text(
        f'store_dir = "{tmp / "store"}"\nengine = "native"\n'
        '[[symbols]]\nsymbol = "EURUSD"\ntick_size = 0.00001\nref_price = 1.1\n'
        f'[[venues]]\nname = "V"\nport = {port}\n'
        f'[venues.latency]\nbase_us = {latency_us}\njitter_us = 0\njitter = "none"\n'
        f'always_proxy = {"true" if delay_line else "false"}\n'
        f'[venues.flow]\nenabled = {"true" if flow > 0 else "false"}\nrate_per_s = {flow}\n'
        'initial_levels = 5\nlevel_qty = 1000000\n')
    return path


def run(args: argparse.Namespace, profile: bool) -> tuple[float, str, pstats.Stats | None]:
    from gateway.common import procs
    from sim_exchange.config import SimConfig
    from sim_exchange.exchange import SimExchange
    with tempfile.TemporaryDirectory(prefix="profile_sim_") as tmpdir:
        tmp = Path(tmpdir)
        port = procs.free_ports(1)[0]
        ex = SimExchange(SimConfig.load(write_config(tmp, port, args.flow, args.latency_us))).start()
        try:
            client = subprocess.Popen([sys.executable, __file__, "--client", str(port), str(args.orders),
                                       *(["--md"] if args.md else [])],
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT)
            assert client.stdout is not None and client.stdin is not None
            client.stdout.readline()                       # ready (logged on)
            prof = cProfile.Profile() if profile else None
            loop = ex._loop.loop
            venue = ex.venue("V")

            def start() -> float:
                if prof is not None:
                    prof.enable()
                return time.thread_time()

            def stop() -> float:
                if prof is not None:
                    prof.disable()
                return time.thread_time()

            t0 = venue.call(start)
            client.stdin.write("go\n")
            client.stdin.flush()
            line = client.stdout.readline().strip()
            t1 = venue.call(stop)
            client.wait(30)
            if args.latency_us > 0:
                print(f"delay lines, per delivery (us): {venue.snapshot_stats().get('delay_error_us')}")
            cpu_us = (t1 - t0) / args.orders * 1e6
            stats = pstats.Stats(prof) if prof is not None else None
            del loop
            return cpu_us, line, stats
        finally:
            ex.stop()


class _FakeTransport:
    """Just enough of an asyncio transport for ``FixProtocol``: writes are counted."""

    def __init__(self) -> None:
        self.written = 0
        self.frames = 0

    def get_extra_info(self, name: str, default=None):
        return ("127.0.0.1", 1) if name == "peername" else default

    def set_write_buffer_limits(self, high=None, low=None) -> None:
        pass

    def get_write_buffer_size(self) -> int:
        return 0

    def write(self, data: bytes) -> None:
        self.written += len(data)
        self.frames += data.count(b"\x0110=")

    def close(self) -> None:
        pass

    abort = close


def run_inproc(args: argparse.Namespace, profile: bool = False) -> tuple[float, pstats.Stats | None]:
    """Python CPU per order of the venue, sockets faked (see the module docstring). One
    thread: the venue starts on a loop in this thread and is driven between loop runs."""
    import asyncio

    from bench_sim import WireClient
    from gateway.common import procs
    from gateway.fix.transport import FixProtocol, new_event_loop
    from sim_exchange.config import SimConfig
    from sim_exchange.delayline import PreciseTimer
    from sim_exchange.native import NativeVenue
    with tempfile.TemporaryDirectory(prefix="profile_sim_") as tmpdir:
        tmp = Path(tmpdir)
        port = procs.free_ports(1)[0]
        config = SimConfig.load(write_config(tmp, port, args.flow, 0.0, args.delay_line))
        loop = new_event_loop()
        asyncio.set_event_loop(loop)
        venue = NativeVenue(config.venues[0], config)
        timer = PreciseTimer(loop)
        loop.run_until_complete(venue.start(timer))
        try:
            wc = WireClient.__new__(WireClient)
            wc.sender, wc.target, wc.seq = "CLIENT", "V", 1
            logon = wc.wire("A", "98=0\x01108=30\x01141=Y\x01")
            if args.probes:      # TestRequests (a latency probe's venue side) instead of orders
                orders = [wc.wire("1", f"112=PRB-{i}\x01") for i in range(args.orders)]
            else:
                orders = [wc.wire("D", f"11=o{i}\x0155=EURUSD\x0154=1\x0138=100\x0140=2\x0144=1.09\x0159=3\x01"
                                       f"60=20260101-00:00:00.000\x01") for i in range(args.orders)]
            fake = _FakeTransport()
            prof = cProfile.Profile() if profile else None
            conn = FixProtocol(venue.fix, None)
            conn.connection_made(fake)
            conn.data_received(logon)
            warm = 200
            for data in orders[:warm]:
                conn.data_received(data)
            loop.run_until_complete(asyncio.sleep(0))
            before = fake.frames
            if prof is not None:
                prof.enable()
            first_write: list[float] = []
            whole: list[float] = []
            t0 = time.thread_time()
            if args.first_write:
                clock = time.perf_counter
                write = fake.write
                mark = [0.0, 0.0]

                def timed_write(data: bytes) -> None:
                    if not mark[1]:
                        mark[1] = clock()
                    write(data)
                fake.write = timed_write                       # type: ignore[method-assign]
                for data in orders[warm:]:
                    mark[0], mark[1] = clock(), 0.0
                    conn.data_received(data)
                    end = clock()
                    first_write.append((mark[1] - mark[0]) * 1e6)
                    whole.append((end - mark[0]) * 1e6)
            else:
                for data in orders[warm:]:
                    conn.data_received(data)
            t1 = time.thread_time()
            if first_write:
                qs = lambda xs: f"p50 {sorted(xs)[len(xs) // 2]:.1f} p90 {sorted(xs)[len(xs) * 9 // 10]:.1f}"  # noqa: E731
                print(f"in the venue, bytes in -> first report written: {qs(first_write)} us; "
                      f"-> callback done: {qs(whole)} us")
            if prof is not None:
                prof.disable()
            frames = fake.frames - before
            per = 1 if args.probes else 2                      # the Heartbeat, or ack + IOC cancel
            assert frames == per * (args.orders - warm), frames
            return (t1 - t0) / (args.orders - warm) * 1e6, (pstats.Stats(prof) if prof is not None else None)
        finally:
            loop.run_until_complete(venue.stop())
            timer.close()
            loop.close()


def stage_table(stats: pstats.Stats, orders: int) -> list[tuple[str, float]]:
    totals = {label: 0.0 for label, _ in STAGES}
    for (f, _line, name), (_cc, _nc, tt, _ct, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        for label, pred in STAGES:
            if pred(f, name):
                totals[label] += tt
                break
    return [(label, totals[label] / orders * 1e6) for label, _ in STAGES]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--orders", type=int, default=3000)
    ap.add_argument("--flow", type=float, default=0.0, help="background flow, orders/s per symbol")
    ap.add_argument("--md", action="store_true", help="the client subscribes to market data")
    ap.add_argument("--latency-us", type=float, default=0.0, help="injected one-way latency")
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--inproc", action="store_true", help="fake transport, Python CPU per order only")
    ap.add_argument("--profile", action="store_true", help="with --inproc: also a cProfile run")
    ap.add_argument("--first-write", action="store_true", help="with --inproc: time to the first write")
    ap.add_argument("--no-profile", action="store_true", help="only the profiler-off figures")
    ap.add_argument("--probes", action="store_true", help="with --inproc: TestRequests instead of orders")
    ap.add_argument("--delay-line", action="store_true",
                    help="with --inproc: the venue's delay lines on at zero delay (always_proxy)")
    ap.add_argument("--client", nargs=2, metavar=("PORT", "N"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.client:
        client_main(int(args.client[0]), "V", int(args.client[1]), args.md)
        return 0
    if args.inproc:
        what = "TestRequest" if args.probes else "order"
        print(f"venue Python CPU per {what}, sockets faked: {run_inproc(args)[0]:.1f} us")
        if args.profile:
            cpu_p, stats = run_inproc(args, profile=True)
            print_profile(stats, cpu_p, args.orders - 200, args.top)
        return 0
    cpu_us, line, _ = run(args, profile=False)
    print(f"venue loop CPU per order (profiler off): {cpu_us:.1f} us; client NOS -> first ER {line} us")
    if args.no_profile:
        return 0
    cpu_p, _, stats = run(args, profile=True)
    print_profile(stats, cpu_p, args.orders, args.top)
    return 0


def print_profile(stats: pstats.Stats | None, cpu_p: float, orders: int, top: int) -> None:
    assert stats is not None
    print(f"\nunder cProfile: {cpu_p:.1f} us per order; by stage (tottime, us per order):")
    for label, us in stage_table(stats, orders):
        print(f"  {label:44s} {us:7.1f}")
    print()
    stats.sort_stats("tottime").print_stats(top)


if __name__ == "__main__":
    threading.current_thread().name = "main"
    sys.exit(main())
