"""Simulator benchmarks (prints figures, asserts nothing).

    .venv/bin/python benchmarks/bench_sim.py [--quick] [--engine native|quickfix|both]
    .venv/bin/python benchmarks/bench_sim.py --trees /path/base,/path/this [--blocks 60]

1. matching engine orders/s in-process (no FIX),
2. native engine (one asyncio loop per sim process): NOS -> first ER at zero latency, and
   injected-latency accuracy (a raw-bytes client, no parsing on the timed path),
3. quickfix backend: FIX round trip NewOrderSingle -> first ExecutionReport on a zero-latency venue, one order
   at a time, timestamps at the raw client's socket edge (sim in a child process), and a
   pipelined orders/s figure, for the ThreadedSocketAcceptor and the SocketAcceptor,
4. quickfix backend: injected-latency accuracy: one-way 0.1 / 0.5 / 2.5 ms (RTT 0.2 / 1 / 5 ms) vs measured
   TestRequest -> Heartbeat RTT p50/p99, minus the zero-latency baseline.
"""
from __future__ import annotations

import argparse
import random
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gateway.common import procs  # noqa: E402
from gateway.common.clock import MONOTONIC  # noqa: E402
from gateway.core.matching.engine import BUY, DAY, IOC, LIMIT, SELL, Instrument, MatchingEngine  # noqa: E402

LATENCIES_US = (100, 500, 2500)


def pct(xs: list[float], p: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


def bench_engine(n: int) -> None:
    eng = MatchingEngine([Instrument("EURUSD", 0.00001, 1.1)], MONOTONIC, "B")
    rng = random.Random(1)
    ref = 110000
    orders = []
    for i in range(n):
        side = BUY if rng.random() < 0.5 else SELL
        aggressive = rng.random() < 0.3
        off = rng.randint(0, 5)
        ticks = (ref + off if side == BUY else ref - off) if aggressive else (ref - 1 - off if side == BUY else ref + off)
        orders.append((f"o{i}", side, rng.randint(1, 200), round(ticks * 0.00001, 5), IOC if aggressive else DAY))
    t0 = time.perf_counter()
    events = 0
    for cl, side, qty, px, tif in orders:
        events += len(eng.new_order("b", cl, "EURUSD", side, qty, LIMIT, px, tif))
    dt = time.perf_counter() - t0
    print(f"[engine] {n} orders (30% aggressive IOC) in {dt*1e3:.0f} ms: {n/dt:,.0f} orders/s, "
          f"{dt/n*1e6:.1f} us/order, {events/n:.1f} events/order, {eng.trades} trades, "
          f"book {len(eng.levels('EURUSD', BUY))}x{len(eng.levels('EURUSD', SELL))} levels")


class WireClient:
    """A minimal blocking FIX client for timing: prebuilt wire bytes out, raw byte markers in.
    No parsing on the measured path (a simplefix parse alone costs ~70 us)."""

    def __init__(self, port: int, sender: str, target: str) -> None:
        import socket
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sender, self.target, self.seq = sender, target, 1
        self.buf = b""

    def wire(self, msg_type: str, body: str) -> bytes:
        from gateway.fix.codec import encode, utc_timestamp
        header = f"49={self.sender}\x0156={self.target}\x0134={self.seq}\x0152={utc_timestamp(time.time())}\x01"
        self.seq += 1
        return encode("FIX.4.4", msg_type, header, body)

    def send(self, msg_type: str, body: str) -> None:
        self.sock.sendall(self.wire(msg_type, body))

    def wait_for(self, marker: bytes) -> None:
        while marker not in self.buf:
            data = self.sock.recv(1 << 16)
            if not data:
                raise ConnectionError("closed")
            self.buf += data
        self.buf = self.buf[self.buf.index(marker) + len(marker):]

    def logon(self) -> "WireClient":
        self.send("A", "98=0\x01108=30\x01141=Y\x01")
        self.wait_for(b"\x0135=A\x01")
        return self

    def close(self) -> None:
        try:
            self.send("5", "")
        finally:
            self.sock.close()


def wire_round_trips(c: WireClient, n: int) -> list[float]:
    """n IOC misses one at a time: NOS -> first ER (the ack), each order's cancel awaited."""
    return order_reports(c, n)[0]


def wire_probes(c: WireClient, n: int) -> list[float]:
    out = []
    for i in range(n):
        tid = f"p{i}x{time.monotonic_ns()}"
        msg = c.wire("1", f"112={tid}\x01")
        t0 = time.perf_counter()
        c.sock.sendall(msg)
        c.wait_for(f"\x01112={tid}\x01".encode())
        out.append((time.perf_counter() - t0) * 1e6)
        time.sleep(0.0005)
    return out


def bench_wire(n_orders: int, n_probes: int, tmp: Path, engine: str = "native") -> None:
    """The native venue: order -> first ER, and injected latency accuracy (probe RTT minus
    the zero-latency baseline), each venue in its own sim process (one loop each)."""
    names = ["L0", "P0"] + [f"L{us}" for us in LATENCIES_US]
    ports = dict(zip(names, procs.free_ports(len(names))))
    config = sim_config(tmp, ports, True, engine=engine)
    logs = {name: tmp / f"sim-{name}.log" for name in names}
    sims = [procs.start([sys.executable, "-m", "sim_exchange", "--config", str(config), "--venue", name, "--stats"],
                        log_path=logs[name], cwd=ROOT) for name in names]
    try:
        for proc, port in zip(sims, ports.values()):
            procs.wait_for_ports([port], timeout=30, proc=proc)
        clients = {name: WireClient(port, "CLIENT", name).logon() for name, port in ports.items()}
        z = clients["L0"]
        wire_round_trips(z, min(100, n_orders))
        rt = wire_round_trips(z, n_orders)
        print(f"[{engine}] NOS -> first ER, zero latency, one at a time (us): {fmt(rt)}")
        # Interleaved rounds (one probe per venue per round): a loaded moment hits every venue
        # alike, so "minus the baseline" compares like with like. The order rotates each
        # round: a probe right after the 5 ms one (a long idle wait of this client) is slower,
        # and in a fixed order that would always be the baseline's.
        rtts: dict[str, list[float]] = {name: [] for name in names}
        for r in range(n_probes):
            for name in names[r % len(names):] + names[:r % len(names)]:
                rtts[name] += wire_probes(clients[name], 1)
        base = rtts["L0"]
        b50, b99 = pct(base, 50), pct(base, 99)
        print(f"[{engine}] TestRequest RTT baseline, zero latency (us): {fmt(base)}")
        hop = rtts["P0"]
        print(f"[{engine}] TestRequest RTT through the delay (lines or proxy) at zero delay (us): {fmt(hop)}; "
              f"cost p50 {pct(hop, 50) - b50:.0f} us per round trip")
        print(f"[{engine}] injected latency accuracy (TestRequest RTT minus baseline; target: within 5% or 20 us)")
        print(f"  {'one-way':>8} {'RTT cfg':>8} {'p50':>7} {'p50-base':>9} {'error':>8} {'paired':>8} "
              f"{'p99-base':>9}  ok")
        for us in LATENCIES_US:
            xs = rtts[f"L{us}"]
            m50 = pct(xs, 50)
            err = m50 - b50 - 2 * us
            # the same round's baseline subtracted probe by probe: the machine's slow moments cancel
            paired = pct([x - b for x, b in zip(xs, base)], 50) - 2 * us
            ok = abs(err) <= max(0.05 * 2 * us, 20)
            print(f"  {us:>6}us {2*us:>6}us {m50:7.0f} {m50 - b50:9.0f} {err:+7.0f}us {paired:+7.0f}us "
                  f"{pct(xs, 99) - b99:9.0f}  {'yes' if ok else 'NO'}")
        for c in clients.values():
            c.close()
    finally:
        for proc in sims:
            procs.stop(proc)
    if engine == "native":
        print(f"[{engine}] delay lines inside the sim, per delivery (delivered minus due, us; both directions):")
        for name in names[1:]:
            err = _sim_stats(logs[name]).get(name, {}).get("delay_error_us")
            if err:
                print(f"  {name:>6}: " + "  ".join(f"{k} {v}" for k, v in err.items()))


def _sim_stats(log: Path) -> dict:
    """The JSON a sim prints at exit with --stats ({} when it did not)."""
    import json
    text = log.read_text(errors="replace")
    start, end = text.find("\n{"), text.rfind("}")
    try:
        return json.loads(text[start + 1:end + 1]) if start >= 0 else {}
    except ValueError:
        return {}


def sim_config(tmp: Path, ports: dict[str, int], threaded: bool, engine: str = "quickfix") -> Path:
    parts = [f'store_dir = "{tmp / "store"}"', f"threaded_acceptor = {'true' if threaded else 'false'}",
             f'engine = "{engine}"',
             '[[symbols]]\nsymbol = "EURUSD"\ntick_size = 0.00001\nref_price = 1.1']
    for name, port in ports.items():
        base = int(name[1:])
        always = "true" if name.startswith("P") else "false"     # P0: the proxy at zero delay
        parts.append(f'[[venues]]\nname = "{name}"\nport = {port}\n'
                     f'[venues.latency]\nbase_us = {base}\njitter_us = 0\njitter = "none"\n'
                     f'always_proxy = {always}\n'
                     f'[venues.flow]\nenabled = false\ninitial_levels = 5\nlevel_qty = 1000000')
    path = tmp / f"bench_sim_{engine}_{'t' if threaded else 's'}.toml"
    path.write_text("\n".join(parts) + "\n")
    return path


def round_trips(c: "RawFixSession", n: int) -> list[float]:
    """NOS -> first ExecutionReport (us); IOC orders that miss, so the book never changes."""
    out = []
    for i in range(n):
        cl = f"rt{i}-{time.monotonic_ns()}"
        msg = c.build("D", [(11, cl), (55, "EURUSD"), (54, "1"), (38, 100), (40, "2"), (44, "1.09"),
                            (59, "3"), (60, "20260101-00:00:00.000")]).encode()
        t0 = time.perf_counter()
        c.send_raw(msg)
        c.recv_until(lambda m: m.get(35) == b"8" and m.get(11) == cl.encode(), timeout=3)
        out.append((time.perf_counter() - t0) * 1e6)
        c.recv_until(lambda m: m.get(35) == b"8" and m.get(39) == b"4", timeout=3)   # the IOC cancel
    return out


def pipelined(c: "RawFixSession", n: int) -> float:
    """Orders/s: a sender thread streams IOC misses; this thread counts the terminal ERs in the
    raw bytes (no parsing, so the Python client is not the bottleneck)."""
    wires = [c.build("D", [(11, f"pl{i}"), (55, "EURUSD"), (54, "2"), (38, 100), (40, "2"), (44, "1.2"),
                            (59, "3"), (60, "20260101-00:00:00.000")]).encode() for i in range(n)]
    assert c.sock is not None
    sock = c.sock
    sender = threading.Thread(target=lambda: sock.sendall(b"".join(wires)))
    t0 = time.perf_counter()
    sender.start()
    done, tail = 0, b""
    sock.settimeout(10)
    while done < n:
        data = tail + sock.recv(1 << 20)
        done += data.count(b"\x0139=4\x01")
        cut = data.rfind(b"\x01")
        tail = data[cut:] if cut >= 0 else data   # a marker split across reads is counted once
    rate = n / (time.perf_counter() - t0)
    sender.join()
    c.parser = type(c.parser)()                   # the counted bytes were never parsed
    return rate


def probe_rtts(c: "RawFixSession", n: int) -> list[float]:
    out = []
    for i in range(n):
        tid = f"p{i}".encode()
        msg = c.build("1", [(112, tid)]).encode()
        t0 = time.perf_counter()
        c.send_raw(msg)
        c.recv_until(lambda m: m.get(35) == b"0" and m.get(112) == tid, timeout=3)
        out.append((time.perf_counter() - t0) * 1e6)
    return out


def fmt(xs: list[float]) -> str:
    return f"p50 {pct(xs, 50):7.0f}  p90 {pct(xs, 90):7.0f}  p99 {pct(xs, 99):7.0f}  (n={len(xs)})"


def bench_fix(threaded: bool, n_orders: int, n_probes: int, tmp: Path, latency: bool) -> None:
    from gateway.fix.raw import RawFixSession
    names = ["L0"] + (["P0"] + [f"L{us}" for us in LATENCIES_US] if latency else [])
    ports = dict(zip(names, procs.free_ports(len(names))))
    kind = "ThreadedSocketAcceptor" if threaded else "SocketAcceptor"
    proc = procs.start([sys.executable, "-m", "sim_exchange", "--config", str(sim_config(tmp, ports, threaded))],
                       log_path=tmp / "sim.log", cwd=ROOT)
    try:
        procs.wait_for_ports(list(ports.values()), timeout=30, proc=proc)
        sessions = {}
        for name, port in ports.items():
            c = RawFixSession(port=port, sender="CLIENT", target=name, timeout=5).connect()
            c.logon()
            sessions[name] = c
        z = sessions["L0"]
        round_trips(z, min(50, n_orders))                        # warm-up
        rt = round_trips(z, n_orders)
        print(f"[fix {kind}] NOS -> first ER, zero latency, one at a time (us): {fmt(rt)}")
        rate = pipelined(z, n_orders * 5)
        print(f"[fix {kind}] pipelined: {n_orders * 5} orders (ack + cancel each) at {rate:,.0f} orders/s")
        if not latency:
            return
        base = probe_rtts(z, n_probes)
        print(f"[latency {kind}] TestRequest RTT baseline, zero latency (us): {fmt(base)}")
        b50, b99 = pct(base, 50), pct(base, 99)
        hop = probe_rtts(sessions["P0"], n_probes)
        print(f"[latency {kind}] TestRequest RTT through the proxy at zero delay (us): {fmt(hop)}; "
              f"proxy cost p50 {pct(hop, 50) - b50:.0f} us per round trip")
        for us in LATENCIES_US:
            xs = probe_rtts(sessions[f"L{us}"], n_probes)
            m50, m99 = pct(xs, 50), pct(xs, 99)
            print(f"[latency {kind}] one-way {us/1000:.1f} ms, configured RTT {2*us:5d} us: measured p50 {m50:7.0f} "
                  f"p99 {m99:7.0f}; minus baseline p50 {m50-b50:7.0f} ({(m50-b50)/(2*us)*100-100:+5.1f}%) "
                  f"p99 {m99-b99:7.0f}")
        for c in sessions.values():
            c.logout(timeout=1)
            c.close()
    finally:
        procs.stop(proc)


def order_reports(c: WireClient, n: int) -> tuple[list[float], list[float]]:
    """n IOC misses one at a time: NOS -> first ER (the ack) and NOS -> terminal ER (the cancel)."""
    first, last = [], []
    for i in range(n):
        cl = f"ab{i}x{time.monotonic_ns()}"
        msg = c.wire("D", f"11={cl}\x0155=EURUSD\x0154=1\x0138=100\x0140=2\x0144=1.09\x0159=3\x01"
                          f"60=20260101-00:00:00.000\x01")
        t0 = time.perf_counter()
        c.sock.sendall(msg)
        c.wait_for(f"\x0111={cl}\x01".encode())
        first.append((time.perf_counter() - t0) * 1e6)
        c.wait_for(b"\x0139=4\x01")
        last.append((time.perf_counter() - t0) * 1e6)
    return first, last


def bench_trees(trees: list[str], blocks: int, tmp: Path) -> None:
    """A/B of source trees (e.g. a base commit's worktree and this one): one zero-latency native
    sim process per tree (run with that tree first on PYTHONPATH), the client alternating
    blocks of 50 orders between them in a rotating order (first 4 of each block dropped), so
    a loaded moment hits every tree alike. Prints NOS -> first ER and -> terminal ER per tree."""
    import os
    import subprocess
    sims, clients = [], []
    try:
        for k, tree in enumerate(trees):
            d = tmp / f"t{k}"
            d.mkdir()
            port = procs.free_ports(1)[0]
            cfg = sim_config(d, {"L0": port}, True, engine="native")
            env = dict(os.environ, PYTHONPATH=tree)
            with open(d / "sim.log", "w") as log:
                sims.append(subprocess.Popen([sys.executable, "-m", "sim_exchange", "--config", str(cfg),
                                              "--venue", "L0"], cwd=tree, env=env, stdout=log, stderr=subprocess.STDOUT))
            procs.wait_for_ports([port], timeout=30, proc=sims[-1])
            clients.append(WireClient(port, "CLIENT", "L0").logon())
        for c in clients:
            order_reports(c, 100)                           # warm-up
        first: list[list[float]] = [[] for _ in trees]
        last: list[list[float]] = [[] for _ in trees]
        order = list(range(len(trees)))
        for b in range(blocks):
            for k in order[b % len(order):] + order[:b % len(order)]:
                f, t = order_reports(clients[k], 50)
                first[k] += f[4:]
                last[k] += t[4:]
        print("NOS -> first ER / -> terminal ER (IOC miss: ack, cancel), zero latency, trees interleaved (us):")
        for k, tree in enumerate(trees):
            print(f"  {tree}: first {fmt(first[k])}; terminal p50 {pct(last[k], 50):7.0f}  p90 {pct(last[k], 90):7.0f}")
        for c in clients:
            c.close()
    finally:
        for proc in sims:
            proc.terminate()
            proc.wait(10)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="fewer samples (about 15 s)")
    ap.add_argument("--engine", choices=["native", "quickfix", "both"], default="both")
    ap.add_argument("--trees", help="only an A/B of source trees, comma-separated paths (see bench_trees)")
    ap.add_argument("--blocks", type=int, default=60, help="with --trees: blocks of 50 orders per tree")
    args = ap.parse_args(argv)
    if args.trees:
        with tempfile.TemporaryDirectory(prefix="bench_sim_") as tmp:
            bench_trees(args.trees.split(","), args.blocks, Path(tmp))
        return 0
    n_engine = 20_000 if args.quick else 100_000
    n_orders = 200 if args.quick else 600
    n_probes = 100 if args.quick else 400
    bench_engine(n_engine)
    engines = ["native", "quickfix"] if args.engine == "both" else [args.engine]
    for engine in engines:          # the same raw-bytes client against each engine
        with tempfile.TemporaryDirectory(prefix="bench_sim_") as tmp:
            bench_wire(n_orders, n_probes, Path(tmp), engine)
    if args.engine in ("quickfix", "both"):
        with tempfile.TemporaryDirectory(prefix="bench_sim_") as tmp:
            bench_fix(True, n_orders, n_probes, Path(tmp), latency=True)
        with tempfile.TemporaryDirectory(prefix="bench_sim_") as tmp:
            bench_fix(False, n_orders, n_probes, Path(tmp), latency=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
