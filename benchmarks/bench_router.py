"""Router benchmarks: decision time per order, and probe RTT accuracy against the simulator.

Usage:
  .venv/bin/python benchmarks/bench_router.py decide [--venues 8] [--levels 10] [--orders 20000]
  .venv/bin/python benchmarks/bench_router.py probes [--delays-ms 0,0.5,2,5] [--seconds 6]
  .venv/bin/python benchmarks/bench_router.py floor [--interval-ms 100] [--busy-poll-us 300]
  .venv/bin/python benchmarks/bench_router.py matrix [--setups sleep,pinned,gw-poll,venue-poll,both-poll] [--runs 3]
  .venv/bin/python benchmarks/bench_router.py trace [--seconds 6] [--interval-ms 100] [--runs 1]
  .venv/bin/python benchmarks/bench_router.py all

``trace``: one zero-latency venue through its delay line, as ``probes``, with
``FIXGW_PROBE_TRACE`` set for both processes (``gateway.core.latency.ProbeTrace``): each probe
stamped at every hop, joined by TestReqID, medians per hop printed (``trace_report``).

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
import os
import random
import statistics
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
                 busy_poll_us: int = 0, sim_busy_poll_us: int = 0, gw_cpu: int | None = None,
                 sim_cpu: int | None = None, quiet: bool = False, flow: bool = False, nice: int = 0,
                 warm_every_ms: float = 0.0, primed: bool = True) -> dict:
    """Simulator venues with a fixed injected one-way delay (no jitter) and the gateway; the
    gateway's probe figures (admin /status) against 2 x the injected delay.

    Per venue: ``rtt`` (decided -> answer handled, the whole probe as we see it), ``venue``
    (our bytes in the socket -> the answer's bytes read: what the router ranks by) and the
    process's ``floor`` (our send + receive path per probe) apart. First, in the same run,
    the raw loopback floor (``loopback_floor``) at the same cadence: what two idle Python
    processes take for the same round trip with none of our FIX code on either side, each
    side polling and pinned as the gateway and the simulator are in this run.

    ``busy_poll_us`` / ``gw_cpu``: the gateway's settings of those names; ``sim_busy_poll_us``
    / ``sim_cpu``: the simulator's (a venue's ``busy_poll_us``, the process's ``cpu``); ``flow``:
    the venue's background order flow on (its default rate: market data keeps both ends'
    code busy between probes; ``warm_every_ms``: the gateway's order-path warmer, whose session
    twins run the probe's encode and parse too; off, the default here, every probe runs on idle processes);
    ``primed``: the routing's ``probe_primed`` (the default: a primer TestRequest, the measured
    one sent when its answer is back), and the raw floor measured the same way (its second
    round trip); False: one TestRequest per probe, measured cold, as before. The CPU
    each process used over the measured ``seconds`` is printed beside the figures (``cpu_pct``:
    percent of one core), so a figure bought by polling shows its price. ``nice`` < 0 (root
    only): every thread of a polling process runs at that nice value, which on a machine
    shared with other work stands in for "a core of its own" (the poller is not made to
    share its CPU with whatever else runs there); 0, the default, changes nothing."""
    import tempfile

    raw = (loopback_floor(floor_count, interval_ms, pinger_poll_us=busy_poll_us, echo_poll_us=sim_busy_poll_us,
                          pinger_cpu=gw_cpu, echo_cpu=sim_cpu, nice=nice, primed=primed)
           if floor_count > 0 else None)

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "router"))
    from live_rig import LiveRig  # noqa: PLC0415 - sockets and processes only for this part

    venues = [{"name": f"D{i}", "base_us": d * 1000.0, "jitter_us": 0.0, "proxy": proxy or d > 0,
               "probe_max_per_s": 1000.0, "busy_poll_us": sim_busy_poll_us, "cpu": sim_cpu, "flow": flow}
              for i, d in enumerate(delays_ms)]
    routing = {"probe_interval_ms": interval_ms, "latency_window": 10_000, "probe_primed": primed}
    gw_lines = ((warm_probes, "warm_probes = true"), (busy_poll_us, f"busy_poll_us = {busy_poll_us}"),
                (gw_cpu is not None, f"cpu = {gw_cpu}"), (warm_every_ms, f"warm_every_ms = {warm_every_ms}"))
    with tempfile.TemporaryDirectory(prefix="bench_router_") as tmp:
        with LiveRig(Path(tmp), venues, routing, engine=engine,
                     gateway_extra="\n".join(line for on, line in gw_lines if on)) as rig:
            rig.wait_ready(30.0, samples=1)
            pids = {"gateway": rig.gateway.pid, **{f"sim {n}": p.pid for n, p in rig.sims.items()}}
            if nice:
                for who, on in (("gateway", busy_poll_us), *((k, sim_busy_poll_us) for k in pids if k != "gateway")):
                    if on:
                        renice(pids[who], nice)
            cpu0, t0 = {k: cpu_seconds(p) for k, p in pids.items()}, time.monotonic()
            time.sleep(seconds)
            wall = time.monotonic() - t0
            cpu_pct = {k: round(100.0 * (cpu_seconds(p) - cpu0[k]) / wall, 1) for k, p in pids.items()}
            st = rig.get("/status")
    snap = {row["name"]: row.get("market", {}) for row in st["venues"]}
    floor = st["gateway"].get("probe_floor") or {}
    config = probe_config(busy_poll_us, sim_busy_poll_us, gw_cpu, sim_cpu, warm_probes, flow, nice, warm_every_ms,
                          primed)
    out = {"config": config, "cpu_pct": cpu_pct,
           "floor_p50_us": floor.get("p50_us"), "floor_p99_us": floor.get("p99_us"),
           "send_p50_us": floor.get("send_p50_us"), "receive_p50_us": floor.get("receive_p50_us"),
           "loopback_p50_us": raw and round(raw["p50_us"], 1), "loopback_p99_us": raw and round(raw["p99_us"], 1),
           "venues": {}}
    for v, d_ms in zip(venues, delays_ms):
        lat, rtt = snap[v["name"]]["latency"], snap[v["name"]].get("rtt", {})
        cold = snap[v["name"]].get("rtt_cold") or {}
        out["venues"][v["name"]] = {"one_way_ms": d_ms, "rtt_p50_us": rtt.get("p50_us"),
                                    "primer_rtt_p50_us": cold.get("p50_us"),
                                    "rtt_p99_us": rtt.get("p99_us"), "venue_p50_us": lat["p50_us"],
                                    "venue_p99_us": lat["p99_us"], "samples": lat["samples"],
                                    "jitter_us": lat["jitter_us"]}
    if not quiet:
        _print_probes(out, engine, seconds, interval_ms, proxy, raw)
    return out


def probe_config(gw_poll_us: int, sim_poll_us: int, gw_cpu: int | None, sim_cpu: int | None,
                 warm_probes: bool = False, flow: bool = False, nice: int = 0, warm_every_ms: float = 0.0,
                 primed: bool = True) -> str:
    """The configuration behind a probe figure, in words (printed with every figure)."""
    gw = f"gateway polls {gw_poll_us} us after each read/probe" if gw_poll_us else "gateway sleeps"
    sim = f"venue polls {sim_poll_us} us after each read" if sim_poll_us else "venue sleeps"
    pins = ", ".join(f"{who} on CPU {c}" for who, c in (("gateway", gw_cpu), ("venue", sim_cpu)) if c is not None)
    prio = f"; polling processes at nice {nice}" if nice and (gw_poll_us or sim_poll_us) else ""
    warm = f"; gateway warm_every_ms = {warm_every_ms}" if warm_every_ms else ""
    warm += "; primed probes (each right after its primer's answer)" if primed else "; single probes (cold)"
    return (f"{gw}; {sim}; {pins or 'no pinning'}{prio}{'; warm_probes' if warm_probes else ''}{warm}"
            f"{'; venue flow on (market data)' if flow else '; no flow, no market data between probes'}")


def renice(pid: int, nice: int) -> int | None:
    """Every thread of process ``pid`` at ``nice`` (Linux: the nice value is per thread), and
    its scheduler autogroup too where the kernel groups by session (``/proc/PID/autogroup``:
    otherwise a nice value counts only against the process's own session, and a poller still
    gets half a CPU shared with another session's work). Returns the autogroup's previous nice
    value (None: no autogroup), for ``autogroup_nice`` to put back."""
    for tid in os.listdir(f"/proc/{pid}/task"):
        os.setpriority(os.PRIO_PROCESS, int(tid), nice)
    return autogroup_nice(pid, nice)


def autogroup_nice(pid: int, nice: int) -> int | None:
    """Set the autogroup nice value of ``pid``'s session; the previous one (None: none)."""
    path = Path(f"/proc/{pid}/autogroup")
    try:
        before = int(path.read_text().split("nice")[1])
        path.write_text(str(nice))
    except (OSError, IndexError, ValueError):
        return None
    return before


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc), its threads included."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _print_probes(out: dict, engine: str, seconds: float, interval_ms: float, proxy: bool, raw: dict | None) -> None:
    floor = {k[:-len("_us")] if k.endswith("_us") else k: v for k, v in out.items()}
    print(f"probe figures vs injected latency ({engine} engine, {seconds:.0f}s, probe every {interval_ms:.0f} ms, "
          f"no jitter{', zero-delay venue through its delay line' if proxy else ''})")
    print(f"configuration: {out['config']}; CPU used (% of one core): "
          + ", ".join(f"{k} {v:.0f}%" for k, v in out["cpu_pct"].items()))
    print("rtt = decided -> answer handled; venue = our bytes in the socket -> the answer's bytes read; "
          "expect = 2 x one-way delay")
    if raw is not None:
        print(f"raw loopback floor (two Python processes, an echo, one round trip every {interval_ms:.0f} ms"
              f"{', the second of a pair' if raw.get('primed') else ''}, "
              f"polling and pinned as above): p50 {raw['p50_us']:.0f} us, p99 {raw['p99_us']:.0f} us, "
              f"{raw['samples']} samples")
    print(f"our floor (send + receive path per probe): p50 {_f(floor['floor_p50'])} us, "
          f"p99 {_f(floor['floor_p99'])} us; send path p50 {_f(floor['send_p50'])} us, receive path p50 "
          f"{_f(floor['receive_p50'])} us")
    print(f"{'venue':<6} {'one-way ms':>10} {'expect us':>9} {'samples':>7} {'rtt p50':>8} {'rtt p99':>8} "
          f"{'venue p50':>9} {'venue p99':>9} {'jitter us':>9} {'venue-exp':>9}")
    for name, v in out["venues"].items():
        expect = 2 * v["one_way_ms"] * 1000
        p50 = v["venue_p50_us"]
        err = None if p50 is None else p50 - expect
        print(f"{name:<6} {v['one_way_ms']:10.2f} {expect:9.0f} {v['samples']:7d} {_f(v['rtt_p50_us']):>8} "
              f"{_f(v['rtt_p99_us']):>8} {_f(p50):>9} {_f(v['venue_p99_us']):>9} {_f(v['jitter_us']):>9} "
              f"{_f(err):>9}")
    primers = {n: v["primer_rtt_p50_us"] for n, v in out["venues"].items() if v.get("primer_rtt_p50_us")}
    if primers:
        print("primers' round trip p50 (cold, not samples): "
              + ", ".join(f"{n} {_f(us)} us" for n, us in primers.items()))


# ---------------------------------------------------------------- the raw loopback floor

PING = b"8=FIX.4.4\x019=60\x0135=1\x0134=1\x0149=GW\x0156=V\x0152=20260101-00:00:00.000000\x01112=PRB-D0-1\x0110=000\x01"


def echo_server(port: int, poll_us: int = 0, cpu: int | None = None) -> None:
    """``bench_router.py echo PORT [POLL_US [CPU]]``: an asyncio (uvloop) process that echoes
    what it reads: the simulated venue with no FIX, no matching, no Python of ours in it.
    ``poll_us`` > 0: its loop polls that long after each read, as a venue with
    ``busy_poll_us`` does (transport.BusyPoll); ``cpu``: pinned there."""
    import asyncio  # noqa: PLC0415
    import socket  # noqa: PLC0415

    from gateway.fix.transport import BusyPoll, new_event_loop  # noqa: PLC0415

    if cpu is not None:
        os.sched_setaffinity(0, {cpu})
    loop = new_event_loop()
    busy = BusyPoll.of(loop, poll_us)

    class Echo(asyncio.Protocol):
        def connection_made(self, transport):
            self.t = transport
            transport.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def data_received(self, data):
            if busy is not None:
                busy.touch()
            self.t.write(data)

    server = loop.run_until_complete(loop.create_server(Echo, "127.0.0.1", port))
    loop.call_later(600.0, loop.stop)     # bounded, whatever happens to the parent
    try:
        loop.run_forever()
    finally:
        server.close()


def loopback_floor(count: int, interval_ms: float, busy_poll_us: float = 0.0, *, pinger_poll_us: int = 0,
                   echo_poll_us: int = 0, pinger_cpu: int | None = None, echo_cpu: int | None = None,
                   nice: int = 0, primed: bool = False) -> dict:
    """Two idle Python processes over loopback, measured the way the gateway's probe is: a
    loop timer every ``interval_ms`` writes one TestRequest-sized frame to an echo process
    (uvloop, TCP_NODELAY) and the echo's bytes are stamped in ``data_received``. Whatever a
    probe reads above this is ours or the venue's software; this much is the VM's (wake-ups
    of two sleeping processes, the kernel, cold caches). ``busy_poll_us`` > 0: after each
    write the pinger polls its socket for at most that long before going back to the loop
    (busy-polling after a probe, evaluated in docs/operations.md "Latency probes": not adopted).
    ``pinger_poll_us`` / ``echo_poll_us``: each side's loop polls that long after each read (the
    pinger also after each write), as the gateway's and a venue's ``busy_poll_us`` do;
    ``pinger_cpu`` / ``echo_cpu``: each side pinned to that CPU (the pinger for this call only);
    ``nice``: a polling side's threads at that nice value (``bench_probes``); ``primed``: each
    timer writes a primer frame and the measured one goes on the loop's next turn after the
    primer's echo, as ``probe_primed`` does (the primer's round trip is not a sample)."""
    import asyncio  # noqa: PLC0415
    import select  # noqa: PLC0415
    import socket  # noqa: PLC0415

    from gateway.common import procs  # noqa: PLC0415
    from gateway.fix.transport import BusyPoll, new_event_loop  # noqa: PLC0415

    port = procs.free_port()
    echo = procs.start([sys.executable, str(Path(__file__).resolve()), "echo", str(port), str(int(echo_poll_us)),
                        "" if echo_cpu is None else str(echo_cpu)])
    rtts: list[float] = []
    affinity = os.sched_getaffinity(0)
    own_nice = os.getpriority(os.PRIO_PROCESS, 0)
    own_group = None
    try:
        procs.wait_for_ports([port], 10.0, echo)
        if nice and echo_poll_us:
            renice(echo.pid, nice)
        if nice and pinger_poll_us:
            os.setpriority(os.PRIO_PROCESS, 0, nice)       # this thread: the pinger's loop runs on it
            own_group = autogroup_nice(os.getpid(), nice)
        if pinger_cpu is not None:
            os.sched_setaffinity(0, {pinger_cpu})
        loop = new_event_loop()
        busy = BusyPoll.of(loop, int(pinger_poll_us))
        pc = time.perf_counter
        done = loop.create_future()
        state = {"t0": 0.0, "primer": False}

        class Ping(asyncio.Protocol):
            def connection_made(self, transport):
                self.t = transport
                self.sock = transport.get_extra_info("socket")
                self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                self.poller = select.poll()
                self.poller.register(self.sock.fileno(), select.POLLIN)
                loop.call_later(interval_ms / 1000.0, self.ping)

            def ping(self, primer: bool = primed):
                state["primer"] = primer
                state["t0"] = pc()
                self.t.write(PING)
                if busy is not None:
                    busy.touch()
                if busy_poll_us > 0:
                    end = state["t0"] + busy_poll_us * 1e-6
                    poll = self.poller.poll
                    while not poll(0) and pc() < end:
                        pass

            def data_received(self, data):
                if state["primer"]:
                    loop.call_soon(self.ping, False)
                    return
                rtts.append(pc() - state["t0"])
                if busy is not None:
                    busy.touch()
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
        os.sched_setaffinity(0, affinity)
        if nice and pinger_poll_us:
            os.setpriority(os.PRIO_PROCESS, 0, own_nice)
            if own_group is not None:
                autogroup_nice(os.getpid(), own_group)
        procs.stop(echo)
    rtts = rtts[3:]                                  # connection warm-up
    return {"p50_us": pct(rtts, .5) * 1e6, "p99_us": pct(rtts, .99) * 1e6, "samples": len(rtts), "primed": primed}


def probe_matrix(names: list[str], runs: int, seconds: float, interval_ms: float, proxy: bool,
                 floor_count: int, gw_poll_us: int, venue_poll_us: int, nice: int = 0) -> dict:
    """``matrix``: the probe figures to one zero-latency venue with each side sleeping or
    polling (``names``: the keys of ``setups`` below), the configurations interleaved ``runs``
    times, medians printed with the CPU each process burnt. Every setup but ``sleep`` (the
    default: both sleep, no pinning) pins the gateway to the first CPU this process may use and
    the venue to the last, so a polling side never has the other woken onto its CPU, and
    ``pinned`` (both sleep, pinned) isolates what the polling itself changes."""
    cpus = sorted(os.sched_getaffinity(0))
    pins = {"gw_cpu": cpus[0], "sim_cpu": cpus[-1]}
    setups = {
        "sleep": {},                                                    # the default: both sleep
        "pinned": {**pins},                                             # both sleep, each on its CPU
        "gw-poll": {**pins, "busy_poll_us": gw_poll_us},
        "venue-poll": {**pins, "sim_busy_poll_us": venue_poll_us},
        "both-poll": {**pins, "busy_poll_us": gw_poll_us, "sim_busy_poll_us": venue_poll_us},
    }
    setups["warm"] = {"warm_probes": True}                               # both sleep; our probe path warmed
    setups["flow"] = {"flow": True}                                      # both sleep; the venue trades (md flows)
    setups["both-poll+warm"] = {**setups["both-poll"], "warm_probes": True}
    rows: dict[str, list[dict]] = {n: [] for n in names}
    for r in range(runs):
        for n in names:
            out = bench_probes([0.0], seconds, interval_ms, proxy=proxy, floor_count=floor_count, quiet=True,
                               nice=nice, **setups[n])
            v = out["venues"]["D0"]
            row = {"rtt_p50": v["rtt_p50_us"], "rtt_p99": v["rtt_p99_us"], "venue_p50": v["venue_p50_us"],
                   "venue_p99": v["venue_p99_us"], "floor_p50": out["floor_p50_us"], "send_p50": out["send_p50_us"],
                   "receive_p50": out["receive_p50_us"], "loop_p50": out["loopback_p50_us"],
                   "loop_p99": out["loopback_p99_us"], "cpu_gw": out["cpu_pct"]["gateway"],
                   "cpu_sim": out["cpu_pct"]["sim D0"]}
            rows[n].append(row)
            print(f"run {r + 1}/{runs} {n:<15} " + " ".join(f"{k} {_f(x)}" for k, x in row.items()), flush=True)
    cols = list(next(iter(rows.values()))[0])
    print(f"\nprobe to a zero-latency venue, medians of {runs} interleaved runs, probe every {interval_ms:.0f} ms, "
          f"{seconds:.0f}s each ({'through its delay line' if proxy else 'no delay line'}); us, CPU in % of one core")
    print(f"{'setup':<15} " + " ".join(f"{c:>11}" for c in cols))
    med = {}
    for n, rs in rows.items():
        med[n] = {c: _median([x[c] for x in rs]) for c in cols}
        print(f"{n:<15} " + " ".join(f"{_f(med[n][c]):>11}" for c in cols))
    for n in names:
        kw = setups[n]
        words = probe_config(kw.get("busy_poll_us", 0), kw.get("sim_busy_poll_us", 0), kw.get("gw_cpu"),
                             kw.get("sim_cpu"), kw.get("warm_probes", False), kw.get("flow", False), nice)
        print(f"  {n}: {words}")
    return {"medians": med, "runs": rows}


HOPS = (("gw send: decided -> bytes in the socket", "decided", "handed_wall"),
        ("to the venue: -> its read returned", "handed_wall", "sim_in"),
        ("venue: read -> the Heartbeat's write begins", "sim_in", "sim_w0"),
        ("venue: the socket write", "sim_w0", "sim_w1"),
        ("back: -> our read returned", "sim_w1", "received"),
        ("gw receive: read -> matched (handled)", "received", "handled"),
        ("(venue after its write: commit, timer)", "sim_w1", "sim_done"))


def trace_report(directory: Path) -> dict:
    """Join the ``ProbeTrace`` files of one run by TestReqID: per probe, the gateway's
    decided/handed/received/handled and the venue's read/write stamps; medians (us) per hop."""
    rows: dict[str, dict[str, float]] = {}
    for f in sorted(Path(directory).glob("*.trace")):
        for line in f.read_text().splitlines():
            kind, rid, *st = line.split()
            t = [float(x) for x in st]
            r = rows.setdefault(rid, {})
            if kind == "gw":
                r.update(decided=t[0], handed=t[1], received=t[2], handled=t[3])
            elif kind == "in":
                r.update(sim_in=t[0], sim_done=t[1])
            elif kind == "out":
                r.update(sim_w0=t[0], sim_w1=t[1])
            elif kind == "send":                # the gateway's wall stamp of the write, off-CPU time
                r.update(handed_wall=t[1], off=t[2])
    keys = ("decided", "handed", "received", "handled", "sim_in", "sim_done", "sim_w0", "sim_w1")
    for r in rows.values():      # a gateway without the "send" row (a base build): handed is the wall stamp
        if "handed" in r:
            r.setdefault("handed_wall", r["handed"])
            r.setdefault("off", 0.0)
    full = [r for r in rows.values() if all(k in r for k in keys)][3:]      # the first few: warm-up
    out: dict = {"probes": len(full), "hops_us": {}}
    out["hops_p90_us"] = {}
    for label, a, b in HOPS:
        xs = [(r[b] - r[a]) * 1e6 for r in full]
        out["hops_us"][label] = _median(xs)
        out["hops_p90_us"][label] = pct(xs, .9) if xs else None
    # The venue read our bytes before our own write had returned: it ran while we were off
    # the CPU inside that write (woken onto our CPU, it can preempt us): its time then counts
    # in our send path (floor), not in the venue's part.
    out["venue_before_handed"] = sum(1 for r in full if r["sim_in"] < r["handed_wall"])
    out["send_us_when_not"] = _median([(r["handed_wall"] - r["decided"]) * 1e6 for r in full
                                       if r["sim_in"] >= r["handed_wall"]])
    out["send_us_when"] = _median([(r["handed_wall"] - r["decided"]) * 1e6 for r in full
                                   if r["sim_in"] < r["handed_wall"]])
    out["off_cpu_us"] = _median([r["off"] * 1e6 for r in full])
    out["off_cpu_when_us"] = _median([r["off"] * 1e6 for r in full if r["sim_in"] < r["handed_wall"]])
    out["off_cpu_p90_us"] = pct([r["off"] * 1e6 for r in full], .9) if full else None
    # the estimator's split as it was (wall send half) beside the one it makes (CPU send half)
    out["venue_wall_us"] = _median([(r["received"] - r["handed_wall"]) * 1e6 for r in full])
    out["floor_wall_us"] = _median([(r["handed_wall"] - r["decided"] + r["handled"] - r["received"]) * 1e6
                                    for r in full])
    out["rtt_us"] = _median([(r["handled"] - r["decided"]) * 1e6 for r in full])
    out["venue_us"] = _median([(r["received"] - r["handed"]) * 1e6 for r in full])
    out["floor_us"] = _median([(r["handed"] - r["decided"] + r["handled"] - r["received"]) * 1e6 for r in full])
    return out


def probe_trace_run(seconds: float, interval_ms: float, runs: int, **kw) -> list[dict]:
    """``trace``: ``runs`` runs of ``bench_probes`` at one zero-latency venue with every hop stamped."""
    import tempfile  # noqa: PLC0415

    from gateway.core.latency import TRACE_ENV  # noqa: PLC0415
    results = []
    for r in range(runs):
        with tempfile.TemporaryDirectory(prefix="probe_trace_") as tmp:
            os.environ[TRACE_ENV] = tmp
            try:
                out = bench_probes([0.0], seconds, interval_ms, proxy=True, floor_count=0, quiet=True, **kw)
            finally:
                del os.environ[TRACE_ENV]
            rep = trace_report(Path(tmp))
        rep["status"] = {"rtt_p50": out["venues"]["D0"]["rtt_p50_us"], "venue_p50": out["venues"]["D0"]["venue_p50_us"],
                         "floor_p50": out["floor_p50_us"], "cpu_pct": out["cpu_pct"]}
        results.append(rep)
        print(f"run {r + 1}/{runs}: {rep['probes']} probes traced; rtt {_f(rep['rtt_us'])} venue {_f(rep['venue_us'])} "
              f"floor {_f(rep['floor_us'])} us (status: rtt {_f(out['venues']['D0']['rtt_p50_us'])} venue "
              f"{_f(out['venues']['D0']['venue_p50_us'])} floor {_f(out['floor_p50_us'])}; CPU % "
              + ", ".join(f"{k} {v:.0f}" for k, v in out["cpu_pct"].items()) + ")", flush=True)
        print(f"    the venue read before our write returned in {rep['venue_before_handed']} of {rep['probes']} "
              f"probes (send p50 {_f(rep['send_us_when'])} us then, of which off our CPU "
              f"{_f(rep['off_cpu_when_us'])}; {_f(rep['send_us_when_not'])} otherwise); "
              f"off-CPU in our send p50 {_f(rep['off_cpu_us'])} p90 {_f(rep['off_cpu_p90_us'])} us; split on wall "
              f"time: venue {_f(rep['venue_wall_us'])} floor {_f(rep['floor_wall_us'])}")
        for label, us in rep["hops_us"].items():
            print(f"    {label:<46} {_f(us):>6} us (p90 {_f(rep['hops_p90_us'][label])})")
    if runs > 1:
        print(f"medians of {runs} runs (us):")
        for label in results[0]["hops_us"]:
            print(f"    {label:<46} {_f(_median([x['hops_us'][label] for x in results])):>6}")
        for k in ("rtt_us", "venue_us", "floor_us", "venue_wall_us", "floor_wall_us", "off_cpu_us"):
            print(f"    {k:<46} {_f(_median([x[k] for x in results])):>6}")
    return results


def _median(xs: list) -> float | None:
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def _f(x) -> str:
    return "-" if x is None else f"{x:.0f}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    if argv is None:
        argv = sys.argv[1:]
    if argv[:1] == ["echo"]:          # the floor's echo process (loopback_floor starts it)
        echo_server(int(argv[1]), int(argv[2]) if len(argv) > 2 else 0,
                    int(argv[3]) if len(argv) > 3 and argv[3] else None)
        return 0
    ap.add_argument("what", choices=["decide", "probes", "floor", "matrix", "trace", "all"], nargs="?", default="decide")
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
    ap.add_argument("--single", action="store_true",
                    help="probes, trace: probe_primed off (one TestRequest per probe, measured cold; the default "
                         "measures the probe sent when its primer's answer is back); floor: measure both ways")
    ap.add_argument("--warm-every-ms", type=float, default=0.0,
                    help="probes, trace: the gateway's warm_every_ms (its order-path warmer; 0 = off)")
    ap.add_argument("--floor-count", type=int, default=60,
                    help="probes, floor: round trips of the raw loopback floor (0: skip it)")
    ap.add_argument("--busy-poll-us", type=float, default=0.0,
                    help="floor: also measure with the pinger polling its socket this long after each write; "
                         "probes: the gateway's busy_poll_us (0: off)")
    ap.add_argument("--sim-busy-poll-us", type=int, default=0,
                    help="probes: the venue's busy_poll_us (0: it sleeps between messages); floor: the echo's")
    ap.add_argument("--gw-cpu", type=int, default=None, help="probes, floor: pin the gateway (the pinger) to this CPU")
    ap.add_argument("--sim-cpu", type=int, default=None, help="probes, floor: pin the simulator (the echo) to this CPU")
    ap.add_argument("--setups", default="sleep,pinned,gw-poll,venue-poll,both-poll",
                    help="matrix: which of sleep, pinned, gw-poll, venue-poll, both-poll, warm, flow, both-poll+warm")
    ap.add_argument("--runs", type=int, default=3, help="matrix: interleaved runs of every setup")
    ap.add_argument("--gw-poll-us", type=int, default=1000, help="matrix: the gateway's busy_poll_us when it polls")
    ap.add_argument("--venue-poll-us", type=int, default=1_000_000,
                    help="matrix: the venue's busy_poll_us when it polls (longer than the probe interval: "
                         "it never sleeps)")
    ap.add_argument("--nice", type=int, default=0,
                    help="probes, matrix: run the polling processes at this nice value (root; e.g. -20 stands in "
                         "for a core of their own on a machine shared with other work)")
    a = ap.parse_args(argv)
    if a.what in ("decide", "all"):
        bench_decide(a.venues, a.levels, a.orders)
    if a.what in ("probes", "all"):
        out = bench_probes([float(x) for x in a.delays_ms.split(",")], a.seconds, a.interval_ms,
                           a.engine, proxy=not a.no_proxy, floor_count=a.floor_count, warm_probes=a.warm_probes,
                           busy_poll_us=int(a.busy_poll_us), sim_busy_poll_us=a.sim_busy_poll_us,
                           gw_cpu=a.gw_cpu, sim_cpu=a.sim_cpu, nice=a.nice, warm_every_ms=a.warm_every_ms,
                           primed=not a.single)
        if a.json:
            import json  # noqa: PLC0415
            print(json.dumps(out))
    if a.what == "matrix":
        out = probe_matrix(a.setups.split(","), a.runs, a.seconds, a.interval_ms, not a.no_proxy, a.floor_count,
                           a.gw_poll_us, a.venue_poll_us, a.nice)
        if a.json:
            import json  # noqa: PLC0415
            print(json.dumps(out))
    if a.what == "trace":
        out = probe_trace_run(a.seconds, a.interval_ms, a.runs, warm_probes=a.warm_probes,
                              busy_poll_us=int(a.busy_poll_us), sim_busy_poll_us=a.sim_busy_poll_us,
                              gw_cpu=a.gw_cpu, sim_cpu=a.sim_cpu, warm_every_ms=a.warm_every_ms, primed=not a.single)
        if a.json:
            import json  # noqa: PLC0415
            print(json.dumps(out))
    if a.what == "floor":
        if a.sim_busy_poll_us or a.gw_cpu is not None or a.sim_cpu is not None or a.nice:
            f = loopback_floor(a.floor_count, a.interval_ms, pinger_poll_us=int(a.busy_poll_us),
                               echo_poll_us=a.sim_busy_poll_us, pinger_cpu=a.gw_cpu, echo_cpu=a.sim_cpu, nice=a.nice)
            print(f"raw loopback floor, one round trip every {a.interval_ms:.0f} ms, "
                  f"{probe_config(int(a.busy_poll_us), a.sim_busy_poll_us, a.gw_cpu, a.sim_cpu, nice=a.nice, primed=False).split('; single')[0]} "
                  f"(pinger = gateway, "
                  f"echo = venue; loop polling): p50 {f['p50_us']:.0f} us, p99 {f['p99_us']:.0f} us, "
                  f"{f['samples']} samples")
            return 0
        for spin in (0.0, a.busy_poll_us) if a.busy_poll_us > 0 else (0.0,):
            f = loopback_floor(a.floor_count, a.interval_ms, spin)
            print(f"raw loopback floor, one round trip every {a.interval_ms:.0f} ms, busy poll {spin:.0f} us "
                  f"inside the ping callback after each write: p50 {f['p50_us']:.0f} us, p99 {f['p99_us']:.0f} us, "
                  f"{f['samples']} samples")
        f = loopback_floor(a.floor_count, a.interval_ms, primed=True)
        print(f"raw loopback floor, the second round trip of a pair every {a.interval_ms:.0f} ms (as primed probes "
              f"go): p50 {f['p50_us']:.0f} us, p99 {f['p99_us']:.0f} us, {f['samples']} samples")
    return 0


if __name__ == "__main__":
    sys.exit(main())
