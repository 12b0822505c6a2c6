"""Where a gateway order's time goes: the real gateway under load, profiled in-process (prints tables).

    fixgw bench profile [--orders 20000] [--window 50] [--engine native] [--top 30]
                        [--collector loop,python] [--runs 3] [--no-profile] [--json] [--retire-after-s S]
    fixgw bench profile --stub [--orders 20000] [--no-freeze] [--callgrind [--extra 2000] [--keep FILE]]

The gateway (``Gateway`` from gateway/apps/server/app.py, DMA, FileStores on) runs on its
loop in this process under cProfile; the load comes from benchmarks/loadgen.py (a fake venue
that fills every order at once and an OMS client keeping ``--window`` orders in flight), each
in its own process so they do not compete for this process's interpreter.

Printed:
1. per-order CPU time of the gateway process (process_time / orders, profiler off: run once
   without the profiler first), i.e. everything Python and the kernel do for one NewOrderSingle
   in and one ExecutionReport out, both directions, sockets included; then the garbage
   collector's count, total and longest pause (``gc.callbacks``) and the RSS. The start-up heap
   is frozen and the ``[collector]`` policy runs, as in ``app.serve``; ``--collector
   loop,python --runs 3 --no-profile`` alternates the loop's policy with CPython's automatic
   collector (the gateway before the policy) in one invocation;
2. the cProfile table (tottime), to see which functions to cut;
3. a per-stage breakdown (us per order) of the same profile: engine (parse, validate,
   session, send), core (risk, route, orders, journal), edges (decode, format).

``--stub``: our Python work alone (sockets and the FIX engine stubbed out, messages made by
the session's parser outside the timing, 50 orders in flight): thread CPU time per order,
median of 5 runs, then the stage table. The start-up heap is frozen first, as the gateway
process does (``app.serve``); ``--no-freeze`` leaves it to the collector. ``--stub
--callgrind``: instructions per order under valgrind (two runs, the difference divided by
``--extra``; compiled, only the handler calls are counted), repeatable on a loaded machine;
``--keep FILE`` keeps the larger run's file for ``callgrind_annotate --inclusive=yes`` (divide a function's count by
its calls, or by the orders: ``--extra`` + 400).

``--memory``: what each order of the day leaves in memory in the order core (``GatewayCore``
driven directly, a fake clock, tracemalloc; each order one NewOrderSingle, its ack and its
fill): bytes and collector-tracked objects per order with its venue side held (within
``retire_after_s``) and after ``OrderManager.retire``, by the line that allocated them. Run
it with ``FIXGW_PURE=1`` for the allocating lines (compiled, tracemalloc sees the callers).
"""
from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import json
import os
import pstats
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from gateway.common import procs  # noqa: E402
from gateway.common.procs import freeze_startup_heap  # noqa: E402
from gateway.common.configfile import load_config  # noqa: E402

HERE = Path(__file__).resolve().parent

STAGES = [   # (label, predicate on (file, function name)) in order; first match wins per function
    ("engine: framing + parse", lambda f, n: f.endswith("fix/codec.py") and n in ("parse", "_split_fast", "_split_careful", "feed", "next_message", "_compact", "__init__", "_build_index", "get", "__getitem__", "__contains__", "index", "seq_num", "poss_dup", "poss_resend")),
    ("engine: dictionary validate", lambda f, n: f.endswith("fix/dictionary.py")),
    ("engine: encode + timestamps", lambda f, n: f.endswith("fix/codec.py")),
    ("engine: session state machine", lambda f, n: f.endswith("fix/session.py")),
    ("engine: store (seqnums, messages)", lambda f, n: f.endswith("fix/store.py")),
    ("engine: transport + dispatch", lambda f, n: f.endswith("fix/transport.py") or f.endswith("fix/engine.py")),
    ("core: journal", lambda f, n: f.endswith("core/journal.py")),
    ("core: risk", lambda f, n: "/core/risk/" in f),
    ("core: router", lambda f, n: "/core/router/" in f or f.endswith("core/market.py") or f.endswith("core/latency.py") or f.endswith("core/book.py")),
    ("core: orders + hub", lambda f, n: f.endswith("core/orders.py") or f.endswith("core/hub.py") or f.endswith("core/model.py")),
    ("edges: decode + format (apps/server)", lambda f, n: "/apps/server/" in f),
    ("edges: metrics (apps/metrics.py)", lambda f, n: f.endswith("apps/metrics.py") or "prometheus_client" in f),
    ("OS: socket writes", lambda f, n: n in ("<method 'write' of 'uvloop.loop.UVStream' objects>",) or "write" in n and "uvloop" in n),
    ("OS: file writes (os.write)", lambda f, n: n == "<built-in method posix.write>"),
    ("other Python (dataclasses, builtins, loop)", lambda f, n: True),
]


def run_load(tmp: Path, oms_port: int, orders: int, window: int) -> dict:
    out = subprocess.run([sys.executable, str(HERE / "loadgen.py"), "client", str(oms_port), "FIXGW", str(orders),
                          str(window)], capture_output=True, text=True, timeout=600, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


async def measure(cfg, orders: int, window: int, profiler: cProfile.Profile | None) -> dict:
    from gateway.apps.server.app import Gateway
    from gateway.common.collector import GcStats, LoopCollector
    gw = Gateway(cfg)
    await gw.start()
    deadline = time.monotonic() + 20
    while not all(v.logged_on for v in gw.venues.venues.values()):
        if time.monotonic() > deadline:
            raise TimeoutError("venue not logged on")
        await asyncio.sleep(0.05)
    loop = asyncio.get_running_loop()
    freeze_startup_heap()                          # as app.serve does once the gateway runs ...
    collector = LoopCollector(cfg.collector)       # ... and its collector policy ([collector])
    collector.start(loop)
    gcs = GcStats().install()                      # every collection's pause, ours or CPython's
    rss0 = rss_mb()
    t0, c0, o0 = time.perf_counter(), time.process_time(), os.times()
    if profiler:
        profiler.enable()
    result = await loop.run_in_executor(None, run_load, None, cfg.oms.port, orders, window)
    if profiler:
        profiler.disable()
    wall, cpu, o1 = time.perf_counter() - t0, time.process_time() - c0, os.times()
    gcs.uninstall()
    rss1 = rss_mb()
    t = time.perf_counter()                        # what a deep collection (unfreeze, full, freeze) costs
    deep_freed = collector_deep()                  # now, and the cyclic garbage the run left frozen
    deep_ms = (time.perf_counter() - t) * 1e3
    collector.stop()
    await gw.stop()
    result.update(cpu_us_per_order=cpu / orders * 1e6, wall_s=wall, gateway_cpu_share=cpu / wall,
                  user_us=(o1.user - o0.user) / orders * 1e6, sys_us=(o1.system - o0.system) / orders * 1e6,
                  gc=gcs.summary(), gc_us_per_order=sum(gcs.total_s) / orders * 1e6, collector_line=collector.line(),
                  rss_mb=(rss0, rss1), deep_ms=deep_ms, deep_freed=deep_freed, objects=gc.get_freeze_count())
    return result


def collector_deep() -> int:
    """A deep collection, as the collector's DEEP action runs it; returns what it found unreachable."""
    gc.unfreeze()
    freed = gc.collect(2)
    gc.freeze()
    return freed


def rss_mb() -> float:
    """This process's resident set size now (Linux /proc), in MB."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        return float("nan")


def gateway(tmp: Path, engine: str, run: int, collector: str = "loop", retire_after_s: float | None = None):
    from bench_gateway import gateway_config
    from gateway.apps.server.config import GatewayConfig
    vport = procs.free_port()
    venue = procs.start([sys.executable, str(HERE / "loadgen.py"), "venue", str(vport), "FAKE"], tmp / f"v{run}.log")
    procs.wait_for_ports([vport], 10, venue)
    path, _ = gateway_config(tmp, {"FAKE": vport}, engine=engine)
    cfg = load_config(path, GatewayConfig)
    cfg = cfg.model_copy(update={"admin": cfg.admin.model_copy(update={"port": 0}), "cpu": None,
                                 "collector": cfg.collector.model_copy(update={"mode": collector})})
    if retire_after_s is not None:
        cfg = cfg.model_copy(update={"retire_after_s": retire_after_s})
    return venue, cfg


# ------------------------------------------------------------------ sockets stubbed out

class StubHandle:
    """A logged-on SessionHandle that keeps the bodies sent (no engine, no socket)."""

    def __init__(self, key: str, sender: str, target: str) -> None:
        self.key, self.sender_comp_id, self.target_comp_id = key, sender, target
        self.logged_on = True
        self.next_sender_seq = self.next_target_seq = 1
        self.sent: list[str] = []

    def send(self, msg_type: str, body: str, *, extra_header: str = "") -> bool:
        self.sent.append(body)
        return True

    def send_test_request(self, test_req_id: str) -> bool:
        return True


def stub_gateway(tmp: Path, freeze: bool = True):
    """A Gateway whose OMS and venue sessions are stub handles: only our Python runs. ``freeze``:
    the start-up heap is frozen, as ``gateway.apps.server.app.serve`` does once the gateway runs
    (the collector then scans only what the orders make); ``--no-freeze`` measures without."""
    from bench_gateway import gateway_config
    from gateway.apps.server.app import Gateway
    from gateway.apps.server.config import GatewayConfig
    tmp.mkdir(parents=True, exist_ok=True)
    path, _ = gateway_config(tmp, {"FAKE": 1}, engine="native")
    gw = Gateway(load_config(path, GatewayConfig))
    oms = StubHandle("FIX.4.4:FIXGW->OMS1", "FIXGW", "OMS1")
    venue = StubHandle("FIX.4.4:FIXGW->FAKE", "FIXGW", "FAKE")
    gw.oms.handles = {oms.key: oms}
    gw.venues.attach({venue.key: venue})
    gw.oms.on_logon(oms)
    gw.market.on_venue_up("FAKE", venue)           # (on_logon needs a running loop)
    vs = gw.venues.venues["FAKE"]
    vs.logged_on, vs.state = True, "logged_on"
    if freeze:
        freeze_startup_heap()                      # as the gateway process does after start (app.serve)
    return gw, oms, venue


STUB_BATCH = 50          # orders in flight per batch: the whole-process runs' --window


def _frame(msg_type: str, seq: int, sender: str, fields: str) -> bytes:
    """A wire frame as a peer sends it (the session's parser makes the Message from it)."""
    from gateway.fix.codec import encode
    return encode("FIX.4.4", msg_type, f"34={seq}\x0149={sender}\x0152=20260101-00:00:00.000\x0156=FIXGW\x01", fields)


def stub_orders(gw, oms, venue, n: int, first: int = 0) -> float:
    """n orders, ``STUB_BATCH`` at a time: the batch's NOS decoded by the OMS edge -> core ->
    venue orders formatted; then each venue order's fill decoded -> core -> ER formatted.
    Only these handler calls are timed. The messages are made by the session's parser
    (``codec.parse``: the Message reads its fields by its layout, as a session hands it to the
    application) outside the timing: that is the engine's part, measured apart
    (bench_session.py, the whole-process profile). Until round 8 the ERs were built in the
    timed loop as ``Message(pairs)`` plus their tag index (~15k instructions per order the
    session no longer spends). ``first``: the number of the first order (ClOrdIDs and sequence
    numbers), so a timed run after a warm-up sends new orders, not duplicates. Returns seconds
    of this thread's CPU."""
    from gateway.fix.codec import parse
    on_oms, on_venue = gw.oms.on_message, gw.venues.on_message
    clock = time.thread_time           # CPU time of this thread: other processes' load does not count
    spent = 0.0
    for start in range(first, first + n, STUB_BATCH):
        end = min(start + STUB_BATCH, first + n)
        venue.sent.clear()
        oms.sent.clear()
        # made per batch and handed over one by one (popped): each message is freed once its
        # handler returns, as in the gateway process. Until round 9 every message of the run
        # lived on in a list while the handlers ran: ~20 tracked objects a message, so the
        # collector's young generation grew ~3 times faster than the handlers alone make it
        # grow, and its collections (inside the timed handlers) visited them.
        nos = [parse(_frame("D", i + 2, "OMS1", f"11=c{i}\x0155=AAPL\x0154=1\x0138=100\x0140=2\x0144=190.01\x01"
                                                f"59=3\x0160=20260101-00:00:00\x01")) for i in range(start, end)]
        nos.reverse()
        t0 = clock()
        while nos:
            on_oms(oms, nos.pop())
        spent += clock() - t0
        if len(venue.sent) != end - start:
            raise RuntimeError(f"{end - start} NOS in, {len(venue.sent)} venue orders out: the stub is not routing")
        ers = []
        for i, body in zip(range(start, end), venue.sent):
            cid = body[3:body.index("\x01")]
            ers.append(parse(_frame("8", i + 2, "FAKE", f"37=V{i}\x0111={cid}\x0117=X{i}\x01150=F\x0139=2\x01"
                                    "55=AAPL\x0154=1\x0138=100\x0132=100\x0131=190.01\x01151=0\x0114=100\x01"
                                    "6=190.01\x0160=20260101-00:00:00\x01")))
        ers.reverse()
        t0 = clock()
        while ers:
            on_venue(venue, ers.pop())
        spent += clock() - t0
    return spent


def codec_note() -> str:
    """Compiled (mypyc) codec and dictionary functions are invisible to cProfile: say so."""
    from gateway.common import accel
    mode, _why = accel.mode()
    return "" if mode == "pure" else (f"; {len(accel.MODULES)} modules compiled (mypyc: "
                                      f"{', '.join(m.rsplit('.', 1)[-1] for m in accel.MODULES)}): cProfile "
                                      "does not see them, their time counts in their callers")


def stage_times(stats: pstats.Stats) -> dict[str, float]:
    """Profiled self time (seconds) per stage of ``STAGES``, each function counted once."""
    per: dict[str, float] = {}
    for (file, _line, name), (_cc, _nc, tt, _ct, _callers) in stats.stats.items():
        for label, pred in STAGES:
            if pred(file, name):
                per[label] = per.get(label, 0.0) + tt
                break
    return per


def memory_main(n: int, top: int) -> None:
    """``--memory``: bytes and tracked objects per ended order, held and retired."""
    import tracemalloc

    from gateway.common.clock import FakeClock
    from gateway.core.hub import GatewayCore, OmsNewOrder, SendNewOrder, Tick
    from gateway.core.market import MarketState
    from gateway.core.model import BUY, DAY, LIMIT, OrderIntent
    from gateway.core.orders import VenueExecutionReport
    from gateway.core.risk import RiskConfig
    from gateway.core.router.config import RoutingConfig
    from gateway.common import accel
    print(f"# order core memory per ended order, {n} orders after 2,000 (tracemalloc; "
          f"modules {accel.mode()[0]})")
    for retire in (False, True):
        with tempfile.TemporaryDirectory(prefix="mem-gw-") as d:
            clock = FakeClock(100.0)
            routing = RoutingConfig.model_validate({"policy": "dma", "default_venue": "V",
                                                    "decision_log_size": 1})   # its ring is bounded: left out
            market = MarketState(routing, clock, sender=lambda *a, **k: True)
            market.on_venue_up("V", None)
            core = GatewayCore(routing=routing, risk=RiskConfig.model_validate({}), journal_path=Path(d) / "j",
                               market=market, clock=clock)

            def order(i: int) -> None:
                intent = OrderIntent("FIX.4.4:GW->OMS", f"C{i:09d}", "AAPL", BUY, 100.0, LIMIT, 10.0, DAY)
                cmd = next(c for c in core.handle(OmsNewOrder(intent=intent)) if isinstance(c, SendNewOrder))
                vid = cmd.child.cl_ord_id
                for k, (et, st, cum) in enumerate((("0", "0", 0.0), ("F", "2", 100.0))):
                    core.handle(VenueExecutionReport(venue="V", cl_ord_id=vid, exec_id=f"E{i:09d}-{k}",
                                                     exec_type=et, ord_status=st, cum_qty=cum,
                                                     leaves_qty=100.0 - cum, avg_px=10.0 if cum else 0.0,
                                                     last_qty=cum, last_px=10.0 if cum else 0.0,
                                                     venue_order_id=f"V{i:09d}"))

            def settle() -> None:
                if retire:
                    clock.advance(core.retire_after_s + 1)
                    while core.orders.finished:
                        core.handle(Tick())

            for i in range(2000):
                order(i)
            settle()
            gc.collect()
            tracemalloc.start()
            before, objects = tracemalloc.get_traced_memory()[0], len(gc.get_objects())
            for i in range(2000, 2000 + n):
                order(i)
            settle()
            gc.collect()
            size = tracemalloc.get_traced_memory()[0] - before
            tracked = len(gc.get_objects()) - objects
            snap = tracemalloc.take_snapshot()
            tracemalloc.stop()
            core.close()
            print(f"{'retired' if retire else 'held'}: {size / n:,.0f} bytes and {tracked / n:.1f} tracked objects "
                  f"per order")
            for st in snap.statistics("lineno")[:top]:
                where = st.traceback[0]
                print(f"  {st.size / n:6.0f} B  {Path(where.filename).name}:{where.lineno}")


def stub_main(n: int, top: int, freeze: bool = True) -> None:
    with tempfile.TemporaryDirectory(prefix="prof-stub-") as d:
        runs = []
        for r in range(5):
            gw, oms, venue = stub_gateway(Path(d) / f"r{r}", freeze)
            stub_orders(gw, oms, venue, 500)                         # warm up
            runs.append(stub_orders(gw, oms, venue, n, first=500) / n * 1e6)
            gw.core.close()
        print(f"# gateway Python work per order (NOS in + ER out, sockets and FIX engine stubbed out): "
              f"median {sorted(runs)[2]:.1f} us over 5 runs of {n} ({', '.join(f'{x:.1f}' for x in runs)}); "
              f"load average {os.getloadavg()[0]:.2f}")
        gw, oms, venue = stub_gateway(Path(d) / "prof", freeze)
        prof = cProfile.Profile()
        prof.enable()
        stub_orders(gw, oms, venue, n)
        prof.disable()
        gw.core.close()
        stats = pstats.Stats(prof)
        per = stage_times(stats)
        print(f"# profiled self time per order (us, inflated by the profiler): total {sum(per.values()) / n * 1e6:.1f}"
              f"{codec_note()}")
        for label, _ in STAGES:
            if label in per:
                print(f"  {label:44} {per[label] / n * 1e6:7.2f}")
        if top:
            stats.sort_stats("tottime").print_stats(top)
            stats.sort_stats("cumulative").print_stats(top)


def stub_quiet(n: int, freeze: bool = True) -> None:
    """A callgrind child: warm up, then ``n`` stubbed orders, no output."""
    with tempfile.TemporaryDirectory(prefix="prof-stub-") as d:
        gw, oms, venue = stub_gateway(Path(d) / "cg", freeze)
        stub_orders(gw, oms, venue, 200)
        stub_orders(gw, oms, venue, n, first=200)
        gw.core.close()


def stub_callgrind(orders: int, extra: int, keep: str | None, freeze: bool = True) -> None:
    """Instructions per stubbed order: (Ir(orders + extra) - Ir(orders)) / extra, two valgrind
    runs of this script (``--stub-quiet``). ``keep``: also keep the larger run's callgrind file
    there, for ``callgrind_annotate --inclusive=yes`` (per function; divide by its calls)."""
    import re
    from gateway.common import accel
    compiled = accel.mode()[0] != "pure"
    # Compiled, only the two handler calls count (their C entry points), as the timed part of
    # stub_orders: not the harness making the messages. Pure, the whole run (harness included).
    toggles = (["--collect-atstart=no", "--toggle-collect=CPyPy_oms___OmsApplication___on_message",
                "--toggle-collect=CPyPy_venues___VenueApplication___on_message"] if compiled else [])
    counts = []
    with tempfile.TemporaryDirectory(prefix="prof-cg-") as d:
        for n in (orders, orders + extra):
            out = keep if keep and n == orders + extra else os.path.join(d, f"cg.{n}")
            cmd = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", *toggles, sys.executable,
                   __file__, "--stub-quiet", str(n)] + ([] if freeze else ["--no-freeze"])
            res = subprocess.run(cmd, capture_output=True, text=True, check=True)
            m = re.search(r"Collected : (\d+)", res.stderr)
            assert m, res.stderr[-2000:]
            counts.append(int(m.group(1)))
    what = "the handler calls only" if compiled else "the whole run, message making included"
    print(f"# stubbed order path (NOS in + ER out), callgrind: {(counts[1] - counts[0]) / extra:,.0f} "
          f"instructions per order, {what} (modules: {accel.mode()[0]}{'' if freeze else ', heap not frozen'})"
          + (f"; callgrind file {keep}" if keep else ""))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--orders", type=int, default=20000)
    ap.add_argument("--window", type=int, default=50)
    ap.add_argument("--engine", default="native")
    ap.add_argument("--top", type=int, default=30)
    ap.add_argument("--stub", action="store_true", help="sockets and engine stubbed out: our Python work only")
    ap.add_argument("--callgrind", action="store_true",
                    help="with --stub: instructions per order under valgrind (repeatable on a noisy machine)")
    ap.add_argument("--extra", type=int, default=2000, help="--callgrind: the orders measured")
    ap.add_argument("--keep", default=None, help="--callgrind: keep the callgrind file at this path")
    ap.add_argument("--no-freeze", action="store_true",
                    help="with --stub: leave the start-up heap to the collector (the gateway process freezes it)")
    ap.add_argument("--collector", default="loop",
                    help="whole process: the [collector] mode(s), comma-separated to alternate in one run: "
                         "loop (the gateway's default) or python (CPython's automatic collector, as before)")
    ap.add_argument("--runs", type=int, default=1, help="whole process: plain runs per collector mode")
    ap.add_argument("--retire-after-s", type=float, default=None,
                    help="whole process: the gateway's retire_after_s (default: the config's, 60 s; "
                         "0: ended orders leave memory at the next tick, the day's steady state)")
    ap.add_argument("--no-profile", action="store_true", help="whole process: plain runs only, no cProfile run")
    ap.add_argument("--json", action="store_true", help="whole process: one JSON line per plain run")
    ap.add_argument("--stub-quiet", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--memory", action="store_true", help="bytes per ended order in the order core, held and retired")
    args = ap.parse_args()
    if args.stub_quiet:
        stub_quiet(args.stub_quiet, not args.no_freeze)
        return 0
    if args.memory:
        memory_main(args.orders, min(args.top, 12))
        return 0
    if args.stub and args.callgrind:
        stub_callgrind(200, args.extra, args.keep, not args.no_freeze)
        return 0
    if args.stub:
        stub_main(args.orders, args.top, not args.no_freeze)
        return 0
    from gateway.fix.transport import new_event_loop
    with tempfile.TemporaryDirectory(prefix="prof-gw-") as d:
        tmp = Path(d)
        print(f"# gateway order path, {args.engine} engine, {args.orders} orders, window {args.window}; "
              f"load average {os.getloadavg()[0]:.2f}")
        plain = [(i, None, c) for i, c in enumerate(args.collector.split(","))]
        runs = plain * args.runs + ([] if args.no_profile else [(len(plain), cProfile.Profile(), plain[0][2])])
        for k, (run, prof, collector) in enumerate(runs):
            venue, cfg = gateway(tmp, args.engine, k, collector, args.retire_after_s)
            loop = new_event_loop()
            try:
                res = loop.run_until_complete(measure(cfg, args.orders, args.window, prof))
            finally:
                loop.close()
                procs.stop(venue)
            tag = "profiled" if prof else f"plain, collector {collector}"
            g = res["gc"]
            print(f"[{tag}] {res['terminal']}/{res['orders']} terminal, {res['per_s']:.0f} orders/s, gateway CPU "
                  f"{res['cpu_us_per_order']:.1f} us per order (NOS in + ER out, both sides, sockets included), "
                  f"{res['gateway_cpu_share'] * 100:.0f}% of a core (user {res['user_us']:.1f} us, kernel {res['sys_us']:.1f} us)\n"
                  f"    garbage collector: {g['collections']} collections (gen0/1/2 "
                  f"{'/'.join(map(str, g['per_generation']))}), {g['total_ms']:.1f} ms in all = "
                  f"{res['gc_us_per_order']:.2f} us per order, longest pause {g['longest_ms']:.2f} ms; "
                  f"RSS {res['rss_mb'][0]:.0f} -> {res['rss_mb'][1]:.0f} MB; {res['collector_line']}\n"
                  f"    then a deep collection (unfreeze, full, freeze) of {res['objects']:,} objects: "
                  f"{res['deep_ms']:.1f} ms, {res['deep_freed']} unreachable found")
            if args.json:
                print("JSON " + json.dumps({"collector": collector, **res}))
        if args.no_profile:
            return 0
        stats = pstats.Stats(prof)
        per_stage = stage_times(stats)
        total = sum(per_stage.values())
        print(f"\n# profiled self time per order (us; profiler overhead inflates small calls): total "
              f"{total / args.orders * 1e6:.1f}{codec_note()}")
        for label, _ in STAGES:
            if label in per_stage:
                print(f"  {label:44} {per_stage[label] / args.orders * 1e6:7.2f}")
        print()
        stats.sort_stats("tottime").print_stats(args.top)
        stats.sort_stats("cumulative").print_stats(args.top)
    return 0


if __name__ == "__main__":
    sys.exit(main())
