"""Router benchmarks: decision time per order, and probe RTT accuracy against the simulator.

Usage:
  .venv/bin/python benchmarks/bench_router.py decide [--venues 8] [--levels 10] [--orders 20000]
  .venv/bin/python benchmarks/bench_router.py probes [--delays-ms 0,0.5,2,5] [--seconds 6]
  .venv/bin/python benchmarks/bench_router.py floor [--interval-ms 100] [--busy-poll-us 300]
  .venv/bin/python benchmarks/bench_router.py all

``decide``: pure CPU. Books of N venues x L levels per side, live-looking latencies and
touch depletion; every policy decides a stream of buy/sell IOC/FOK/market orders. The
time is ``RoutingDecision.decision_us`` (perf_counter around the whole decision, lock
included) plus the outer call time (with the decision-log append).

``probes``: starts one simulator process per injected one-way delay (delay line on, no
jitter) and the gateway (our TestRequest probes every probe_interval_ms on its venue
sessions, ``--engine native|quickfix``); prints per venue the probe RTT p50/p99 as we see
it, the venue's part (socket write -> answer read) against 2 x the injected delay, and our
own floor (send + receive path per probe) apart. ``--delays-ms 0 --no-proxy`` is the
zero-latency venue of issue 12's target. The same run first measures the raw loopback
floor (``floor`` alone: an echo process and a pinger at the probe cadence, no FIX on either
side; ``--floor-count 0`` skips it), so a probe figure can be read against what this
machine gives any two Python processes.
"""
from __future__ import annotations

import argparse
import gc
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gateway.common.clock import FakeClock  # noqa: E402
from gateway.core.market import MarketState  # noqa: E402
from gateway.core.model import BUY, FOK, IOC, LIMIT, MARKET, SELL, OrderIntent  # noqa: E402
from gateway.core.router import build_router  # noqa: E402
from gateway.core.router.config import RoutingConfig  # noqa: E402
from gateway.core.router.decisions import DecisionLog  # noqa: E402

MID = 1.10000
TICK = 0.00001


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(p * len(s)))]


def build_market(n_venues: int, levels: int, seed: int = 1) -> MarketState:
    rng = random.Random(seed)
    cfg = RoutingConfig(md_symbols=["EURUSD"], decision_log_size=10_000)
    # a frozen clock keeps probes and books fresh for the whole run (same cost as the real one)
    m = MarketState(cfg, FakeClock(1000.0), sender=lambda *a: True)
    for i in range(n_venues):
        name = f"V{i}"
        m.register_venue(name)
        m.on_venue_up(name, name)
        v = m.venues[name]
        for _ in range(cfg.latency_window):
            v.lat.add(rng.uniform(150e-6, 900e-6))
        book = v.books["EURUSD"]
        off = rng.randint(0, 3)
        book.apply_snapshot([(MID - (1 + off + k) * TICK, rng.randint(1, 20) * 100) for k in range(levels)],
                            [(MID + (1 + off + k) * TICK, rng.randint(1, 20) * 100) for k in range(levels)])
        for side in ("0", "1"):      # some touch depletion history
            best = book.best_bid() if side == "0" else book.best_ask()
            book.apply_update("1", side, best[0], best[1] * 0.8)
            book.apply_update("1", side, best[0], best[1])
    return m


def orders(n: int, seed: int = 2) -> list[OrderIntent]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        side = BUY if i % 2 else SELL
        kind = i % 5
        qty = float(rng.randint(1, 30) * 100)
        if kind == 4:
            out.append(OrderIntent("OMS1", f"C{i}", "EURUSD", side, qty, MARKET, None, IOC))
            continue
        ticks = rng.randint(1, 6)
        px = MID + ticks * TICK if side == BUY else MID - ticks * TICK
        out.append(OrderIntent("OMS1", f"C{i}", "EURUSD", side, qty, LIMIT, round(px, 5), FOK if kind == 3 else IOC))
    return out


def bench_decide(n_venues: int, levels: int, n: int) -> dict:
    m = build_market(n_venues, levels)
    results = {}
    for policy in ("scalp", "best_price", "dma"):
        log = DecisionLog(10_000)
        router = build_router(m.cfg, m, m.clock, policy=policy, log=log)
        batch = orders(n)
        if policy == "dma":
            for o in batch:
                o.ex_destination = f"V{min(3, n_venues - 1)}"
        for o in batch[:500]:
            router.decide(o)          # warm-up
        inner, outer = [], []
        pc = time.perf_counter_ns
        gc.disable()
        try:
            for o in batch:
                t0 = pc()
                d = router.decide(o)
                outer.append((pc() - t0) / 1000.0)
                inner.append(d.decision_us)
        finally:
            gc.enable()
        results[policy] = (inner, outer, log.counts_by_venue())
    pc = time.perf_counter_ns
    overhead = min(-(pc() - pc()) for _ in range(1000)) / 1000.0
    print(f"router decision time, {n_venues} venues x {levels} levels/side, {n} orders per policy "
          f"(timer overhead ~{abs(overhead):.2f} us)")
    print(f"{'policy':<11} {'p50 us':>8} {'p99 us':>8} {'max us':>8} | {'call p50':>9} {'call p99':>9}  venues chosen")
    for policy, (inner, outer, counts) in results.items():
        top = ", ".join(f"{k}:{v}" for k, v in sorted(counts.items(), key=lambda kv: -kv[1])[:4])
        print(f"{policy:<11} {pct(inner, .5):8.2f} {pct(inner, .99):8.2f} {max(inner):8.1f} | "
              f"{pct(outer, .5):9.2f} {pct(outer, .99):9.2f}  {top}")
    return results


def bench_probes(delays_ms: list[float], seconds: float, interval_ms: float, engine: str = "native",
                 proxy: bool = True, floor_count: int = 60, warm_probes: bool = False,
                 busy_poll_us: int = 0) -> dict:
    """Simulator venues with a fixed injected one-way delay (no jitter) and the gateway; the
    gateway's probe figures (admin /status) against 2 x the injected delay.

    Per venue: ``rtt`` (decided -> answer handled, the whole probe as we see it), ``venue``
    (our bytes in the socket -> the answer's bytes read: what the router ranks by) and the
    process's ``floor`` (our send + receive path per probe) apart. First, in the same run,
    the raw loopback floor (``loopback_floor``) at the same cadence: what two idle Python
    processes take for the same round trip with none of our FIX code on either side."""
    import tempfile

    raw = loopback_floor(floor_count, interval_ms) if floor_count > 0 else None

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "router"))
    from live_rig import LiveRig  # noqa: PLC0415 - sockets and processes only for this part

    venues = [{"name": f"D{i}", "base_us": d * 1000.0, "jitter_us": 0.0, "proxy": proxy or d > 0,
               "probe_max_per_s": 1000.0} for i, d in enumerate(delays_ms)]
    routing = {"probe_interval_ms": interval_ms, "latency_window": 10_000}
    with tempfile.TemporaryDirectory(prefix="bench_router_") as tmp:
        with LiveRig(Path(tmp), venues, routing, engine=engine,
                     gateway_extra="\n".join(line for on, line in ((warm_probes, "warm_probes = true"),
                                                                    (busy_poll_us, f"busy_poll_us = {busy_poll_us}"))
                                              if on)) as rig:
            rig.wait_ready(30.0, samples=1)
            time.sleep(seconds)
            st = rig.get("/status")
    snap = {row["name"]: row.get("market", {}) for row in st["venues"]}
    floor = st["gateway"].get("probe_floor") or {}
    print(f"probe figures vs injected latency ({engine} engine, {seconds:.0f}s, probe every {interval_ms:.0f} ms, "
          f"no jitter{', zero-delay venue through its delay line' if proxy else ''})")
    print("rtt = decided -> answer handled; venue = our bytes in the socket -> the answer's bytes read; "
          "expect = 2 x one-way delay")
    if raw is not None:
        print(f"raw loopback floor (two idle Python processes, an echo, one round trip every {interval_ms:.0f} ms): "
              f"p50 {raw['p50_us']:.0f} us, p99 {raw['p99_us']:.0f} us, {raw['samples']} samples")
    print(f"our floor (send + receive path per probe): p50 {_f(floor.get('p50_us'))} us, "
          f"p99 {_f(floor.get('p99_us'))} us, {floor.get('samples', 0)} samples; send path p50/p99 "
          f"{_f(floor.get('send_p50_us'))}/{_f(floor.get('send_p99_us'))} us, receive path "
          f"{_f(floor.get('receive_p50_us'))}/{_f(floor.get('receive_p99_us'))} us")
    print(f"{'venue':<6} {'one-way ms':>10} {'expect us':>9} {'samples':>7} {'rtt p50':>8} {'rtt p99':>8} "
          f"{'venue p50':>9} {'venue p99':>9} {'jitter us':>9} {'venue-exp':>9}")
    out = {"floor_p50_us": floor.get("p50_us"), "floor_p99_us": floor.get("p99_us"),
           "send_p50_us": floor.get("send_p50_us"), "receive_p50_us": floor.get("receive_p50_us"),
           "loopback_p50_us": raw and round(raw["p50_us"], 1), "loopback_p99_us": raw and round(raw["p99_us"], 1), "venues": {}}
    for v, d_ms in zip(venues, delays_ms):
        lat, rtt = snap[v["name"]]["latency"], snap[v["name"]].get("rtt", {})
        expect = 2 * d_ms * 1000
        p50 = lat["p50_us"]
        err = None if p50 is None else p50 - expect
        print(f"{v['name']:<6} {d_ms:10.2f} {expect:9.0f} {lat['samples']:7d} {_f(rtt.get('p50_us')):>8} "
              f"{_f(rtt.get('p99_us')):>8} {_f(p50):>9} {_f(lat['p99_us']):>9} {_f(lat['jitter_us']):>9} "
              f"{_f(err):>9}")
        out["venues"][v["name"]] = {"one_way_ms": d_ms, "rtt_p50_us": rtt.get("p50_us"),
                                    "rtt_p99_us": rtt.get("p99_us"), "venue_p50_us": p50,
                                    "venue_p99_us": lat["p99_us"]}
    return out


# ---------------------------------------------------------------- the raw loopback floor

PING = b"8=FIX.4.4\x019=60\x0135=1\x0134=1\x0149=GW\x0156=V\x0152=20260101-00:00:00.000000\x01112=PRB-D0-1\x0110=000\x01"


def echo_server(port: int) -> None:
    """``bench_router.py echo PORT``: an asyncio (uvloop) process that echoes what it reads:
    the simulated venue with no FIX, no matching, no Python of ours in it."""
    import asyncio  # noqa: PLC0415
    import socket  # noqa: PLC0415

    from gateway.fix.transport import new_event_loop  # noqa: PLC0415

    class Echo(asyncio.Protocol):
        def connection_made(self, transport):
            self.t = transport
            transport.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def data_received(self, data):
            self.t.write(data)

    loop = new_event_loop()
    server = loop.run_until_complete(loop.create_server(Echo, "127.0.0.1", port))
    loop.call_later(600.0, loop.stop)     # bounded, whatever happens to the parent
    try:
        loop.run_forever()
    finally:
        server.close()


def loopback_floor(count: int, interval_ms: float, busy_poll_us: float = 0.0) -> dict:
    """Two idle Python processes over loopback, measured the way the gateway's probe is: a
    loop timer every ``interval_ms`` writes one TestRequest-sized frame to an echo process
    (uvloop, TCP_NODELAY) and the echo's bytes are stamped in ``data_received``. Whatever a
    probe reads above this is ours or the venue's software; this much is the VM's (wake-ups
    of two sleeping processes, the kernel, cold caches). ``busy_poll_us`` > 0: after each
    write the pinger polls its socket for at most that long before going back to the loop
    (busy-polling after a probe, evaluated in docs/operations.md "Latency probes": not adopted)."""
    import asyncio  # noqa: PLC0415
    import select  # noqa: PLC0415
    import socket  # noqa: PLC0415

    from gateway.common import procs  # noqa: PLC0415
    from gateway.fix.transport import new_event_loop  # noqa: PLC0415

    port = procs.free_port()
    echo = procs.start([sys.executable, str(Path(__file__).resolve()), "echo", str(port)])
    rtts: list[float] = []
    try:
        procs.wait_for_ports([port], 10.0, echo)
        loop = new_event_loop()
        pc = time.perf_counter
        done = loop.create_future()
        state = {"t0": 0.0}

        class Ping(asyncio.Protocol):
            def connection_made(self, transport):
                self.t = transport
                self.sock = transport.get_extra_info("socket")
                self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                self.poller = select.poll()
                self.poller.register(self.sock.fileno(), select.POLLIN)
                loop.call_later(interval_ms / 1000.0, self.ping)

            def ping(self):
                state["t0"] = pc()
                self.t.write(PING)
                if busy_poll_us > 0:
                    end = state["t0"] + busy_poll_us * 1e-6
                    poll = self.poller.poll
                    while not poll(0) and pc() < end:
                        pass

            def data_received(self, data):
                rtts.append(pc() - state["t0"])
                if len(rtts) >= count:
                    done.set_result(None)
                else:
                    loop.call_later(interval_ms / 1000.0, self.ping)

        async def run():
            t, _ = await loop.create_connection(Ping, "127.0.0.1", port)
            try:
                await asyncio.wait_for(done, count * interval_ms / 1000.0 * 3 + 10)
            finally:
                t.close()

        loop.run_until_complete(run())
        loop.close()
    finally:
        procs.stop(echo)
    rtts = rtts[3:]                                  # connection warm-up
    return {"p50_us": pct(rtts, .5) * 1e6, "p99_us": pct(rtts, .99) * 1e6, "samples": len(rtts)}


def _f(x) -> str:
    return "-" if x is None else f"{x:.0f}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    if argv is None:
        argv = sys.argv[1:]
    if argv[:1] == ["echo"]:          # the floor's echo process (loopback_floor starts it)
        echo_server(int(argv[1]))
        return 0
    ap.add_argument("what", choices=["decide", "probes", "floor", "all"], nargs="?", default="decide")
    ap.add_argument("--venues", type=int, default=8)
    ap.add_argument("--levels", type=int, default=10)
    ap.add_argument("--orders", type=int, default=20_000)
    ap.add_argument("--delays-ms", default="0,0.5,2,5", help="one-way delay per simulated venue")
    ap.add_argument("--seconds", type=float, default=6.0)
    ap.add_argument("--interval-ms", type=float, default=100.0)
    ap.add_argument("--engine", choices=("native", "quickfix"), default="native")
    ap.add_argument("--no-proxy", action="store_true", help="the zero-delay venue without its delay line")
    ap.add_argument("--json", action="store_true", help="probes: one JSON line of the figures last")
    ap.add_argument("--warm-probes", action="store_true", help="probes: the gateway's warm_probes on")
    ap.add_argument("--floor-count", type=int, default=60,
                    help="probes, floor: round trips of the raw loopback floor (0: skip it)")
    ap.add_argument("--busy-poll-us", type=float, default=0.0,
                    help="floor: also measure with the pinger polling its socket this long after each write; "
                         "probes: the gateway's busy_poll_us (0: off)")
    a = ap.parse_args(argv)
    if a.what in ("decide", "all"):
        bench_decide(a.venues, a.levels, a.orders)
    if a.what in ("probes", "all"):
        out = bench_probes([float(x) for x in a.delays_ms.split(",")], a.seconds, a.interval_ms,
                           a.engine, proxy=not a.no_proxy, floor_count=a.floor_count, warm_probes=a.warm_probes,
                           busy_poll_us=int(a.busy_poll_us))
        if a.json:
            import json  # noqa: PLC0415
            print(json.dumps(out))
    if a.what == "floor":
        for spin in (0.0, a.busy_poll_us) if a.busy_poll_us > 0 else (0.0,):
            f = loopback_floor(a.floor_count, a.interval_ms, spin)
            print(f"raw loopback floor, one round trip every {a.interval_ms:.0f} ms, busy poll {spin:.0f} us "
                  f"after each write: p50 {f['p50_us']:.0f} us, p99 {f['p99_us']:.0f} us, {f['samples']} samples")
    return 0


if __name__ == "__main__":
    sys.exit(main())
