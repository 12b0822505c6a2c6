"""Gateway latency and throughput over loopback, BOTH FIX backends (prints numbers; asserts nothing).

    fixgw bench gateway [--orders 2000] [--runs 3] [--quick] [--cpu -1] [--json] [--vs-direct]
                        [--engines native,quickfix[,native-busy,native-warm,native-hot]] [--busy-poll-us 1000]
                        [--warm-ms 1] [--gap-ms 0]

Each run starts the gateway with ``engine = "native"`` then ``engine = "quickfix"`` against
the same kind of fake venue, and measures both the same way (below). Per backend it prints
added p50/p99 (round trip through the gateway minus the same raw endpoints wired straight
together, their orders interleaved with the gateway's), sustained orders/s and lost orders (sent but never terminal at the OMS), and the
native/quickfix ratio within the run. ``--json``: the last line is one JSON object
``{"native": {"added_p50_us", "added_p99_us", "orders_per_s", "lost"}, "quickfix": {...}}``
(medians over the runs).

1. Hop latency at the socket edges. A raw OMS client and a raw fake venue (simplefix, in
   this process, one thread each) sit on either side of a real gateway process (DMA,
   FileStore on). The client stamps each NewOrderSingle just before ``sendall``; the venue
   stamps it right after ``recv`` and answers a fill at once; the client stamps the fill on
   ``recv``. in-hop = OMS order on the wire -> venue order off the wire; out-hop = venue fill
   on the wire -> OMS fill off the wire. The same pair of raw endpoints wired straight to
   each other gives the floor (Python + loopback without a gateway), printed alongside; its
   orders alternate with the gateway's (one each, in turn), so a noisy moment hits both.
   ``--gap-ms G``: the client idles G ms before each order, the gateway's and the floor's
   (sporadic orders, as a scalper sends them: every process's caches go cold in between,
   and the floor with them). ``native-warm`` (``--engines``): the native backend with
   ``warm_every_ms = --warm-ms`` (gateway/apps/server/warm.py), to compare; ``native-hot``:
   with that and ``busy_poll_us = --busy-poll-us`` both.
2. Order round trip (NOS -> terminal ExecutionReport) through the gateway vs straight to
   the simulator (zero-latency venue, no background flow), one order at a time, in the same
   run so the machine's noise hits both.
3. Sustained orders/s through the gateway with a window of orders in flight against a
   fake venue; every order must come back terminal (counted, not assumed) and reach the
   venue exactly once. The load comes from benchmarks/loadgen.py (client and venue each in
   its own process, byte-level framing), whose own ceiling is printed alongside.

What bounds each figure is printed with it. Throughput run, per process (gateway, load client,
fake venue): CPU us per order, busy share (CPU seconds per second of the run: 1.0 is a whole
CPU), read/write system calls and context switches per order (``usage``), and the gateway's
ceiling at a whole CPU, 1e6 / its CPU us per order: on a shared machine orders/s is that
ceiling times the CPU share the gateway got, so the ceiling is the steadier figure. ``--json``
adds per backend ``gateway_cpu_us``, ``gateway_busy``, ``harness_cpu_us`` (client + venue) and
``ceiling_per_s`` (medians). One-at-a-time run: the gateway's CPU, reads, writes and context
switches per order, its loop's collections (count, longest pause) and how many orders had a
latency probe in flight, among all and among the slowest 1%.

``--harness-cpus apart`` (with the gateway pinned, ``--cpu``) runs the harness on the other
CPUs, the gateway's CPU left to it as beside an OMS and a venue on other machines; the default
``any`` lets the OS place the harness. Measured on this 2-core VM shared with other work, apart
was no better: the harness then waits for its one CPU at every wake-up and the throughput run
is a pipeline, so that wait stalls the gateway too.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from gateway.common import procs  # noqa: E402
from gateway.apps.demo.tomlout import dumps  # noqa: E402
from gateway.fix.raw import RawFixSession, utc_now  # noqa: E402

import loadgen  # noqa: E402  (benchmarks/, this script's directory)


def pct(xs, qs=(50, 90, 99)) -> str:
    a = np.asarray(xs, dtype=float)
    return "  ".join(f"p{q} {np.percentile(a, q):7.1f}" for q in qs) + f"  (n={len(a)})"


class FakeVenue(threading.Thread):
    """A raw acceptor that logs the gateway on and fills every order at once.

    Byte-level framing (loadgen.py's ``messages``/``field``/``frame``), not simplefix: its own
    Python per message is a few us, so that the gateway's latency probes it answers (a
    TestRequest, Heartbeat back) hold this process, whose threads share one interpreter lock
    with the raw client and the floor's venue, as briefly as a real venue would. The same class
    serves the floor (``floor_pair``), so the floor and the gateway are measured alike."""

    def __init__(self, name: str, port: int) -> None:
        super().__init__(daemon=True, name=f"fake-{name}")
        self.name_, self.port = name, port
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", port))
        self.listener.listen(4)
        self.recv_at: list[int] = []      # in arrival order (one order at a time: the client's order)
        self.send_at: list[int] = []
        self.orders = 0
        self.probes_at: list[int] = []    # when each TestRequest (the gateway's latency probe) arrived
        self.stop = threading.Event()
        self.logged_on = threading.Event()

    def run(self) -> None:
        self.listener.settimeout(30)
        conn, _ = self.listener.accept()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn.settimeout(0.5)
        buf, seq, peer = bytearray(), 1, "FIXGW"
        with conn:
            while not self.stop.is_set():
                try:
                    data = conn.recv(65536)
                except socket.timeout:
                    continue
                except OSError:           # the gateway went away
                    return
                if not data:
                    return
                t = time.perf_counter_ns()
                buf += data
                for msg in loadgen.messages(buf):
                    reply = self.answer(msg, t)
                    if reply is None:
                        continue
                    if reply[0] == "A":   # a Logon (re)starts both sides at 1
                        peer = (loadgen.field(msg, b"49") or peer.encode()).decode()
                        seq = 1
                    wire = loadgen.frame(reply[0], seq, self.name_, peer, reply[1])
                    if reply[0] == "8":
                        self.send_at.append(time.perf_counter_ns())
                    conn.sendall(wire)
                    seq += 1
                    if reply[0] == "A":
                        self.logged_on.set()
                    elif reply[0] == "5":
                        return

    def answer(self, msg: bytes, t: int) -> tuple[str, str] | None:
        """(MsgType, body) of the answer to ``msg`` read at ``t`` (None: no answer)."""
        field = loadgen.field
        mt = field(msg, b"35")
        if mt == b"D":
            self.recv_at.append(t)
            self.orders += 1
            n = self.orders
            qty = field(msg, b"38").decode()
            px = (field(msg, b"44") or b"1").decode()
            return "8", (f"6={px}\x0111={field(msg, b'11').decode()}\x0114={qty}\x0117=X{n}\x0131={px}\x01"
                         f"32={qty}\x0137=V{n}\x0138={qty}\x0139=2\x0154={field(msg, b'54').decode()}\x01"
                         f"55={field(msg, b'55').decode()}\x0160={loadgen.sending_time()}\x01150=F\x01151=0\x01")
        if mt == b"1":
            self.probes_at.append(t)
            return "0", f"112={field(msg, b'112').decode()}\x01"
        if mt == b"A":
            return "A", "98=0\x01108=30\x01"
        if mt == b"V":
            return "Y", f"262={field(msg, b'262').decode()}\x01281=0\x0158=no market data here\x01"
        if mt == b"5":
            return "5", ""
        return None


CPU: int | None = None      # --cpu: pin the gateway process (GatewayConfig.cpu)


WARM_MS = 1.0               # --warm-ms: the native-warm backend's warm_every_ms
GAP_S = 0.0                 # --gap-ms: idle time before each order of the one-at-a-time run

HARNESS_APART = False       # --harness-cpus apart: the harness runs off the gateway's CPU (harness_cpus)


def harness_cpus() -> set[int] | None:
    """The CPUs the harness may use: every one but the gateway's, when the gateway is pinned
    (--cpu) and another is left; None: no pinning (--cpu none, --harness-cpus any). On 2 cores
    the gateway then has one to itself, as it would beside an OMS and a venue on other machines,
    and the harness (this process's raw endpoints, the load client and the fake venue, the
    simulator) shares the other, instead of waking on the gateway's CPU and taking turns with
    it (the load processes' CPU per order is printed: ``usage``)."""
    if CPU is None or not HARNESS_APART:
        return None
    gw = sorted(ALL_CPUS)[-1] if CPU == -1 else CPU
    others = ALL_CPUS - {gw}
    return others or None


ALL_CPUS = os.sched_getaffinity(0)


@contextlib.contextmanager
def every_cpu():
    """This thread on every CPU for a while: a gateway started from it may pin itself anywhere."""
    mine = os.sched_getaffinity(0)
    os.sched_setaffinity(0, ALL_CPUS)
    try:
        yield
    finally:
        os.sched_setaffinity(0, mine)


def pin_harness(pid: int) -> None:
    """Move a load process off the gateway's CPU (``harness_cpus``)."""
    cpus = harness_cpus()
    if cpus is not None:
        with contextlib.suppress(OSError):
            os.sched_setaffinity(pid, cpus)
BUSY_POLL_US = 1000         # --busy-poll-us: GatewayConfig.busy_poll_us of the "native-busy" backend


ENGINE = "native"           # the backend of the gateways started next (main() sets it per measurement)
MESSAGE_LOGS = True         # FIX message logs on, as the shipped config has them (--no-logs: off)


def gateway_config(tmp: Path, venues: dict[str, int], policy: str = "dma",
                   engine: str | None = None) -> tuple[Path, dict]:
    n = len(list(tmp.iterdir()))
    label = engine or ENGINE                           # "native-busy": native with busy_poll_us
    cfg = {"engine": "native" if label in ("native-busy", "native-warm", "native-hot") else label,
           "store_dir": str(tmp / f"gw-store-{n}"),        # a fresh store: the fake venue starts at seq 1
           "oms": {"port": procs.free_port(), "clients": [{"comp_id": "OMS1"}]},
           "venues": [{"name": n, "port": p, "reconnect_s": 1} for n, p in venues.items()],
           "admin": {"port": procs.free_port()},
           "routing": {"policy": policy, "default_venue": next(iter(venues)), "md_symbols": ["AAPL"]},
           "risk": {}, "cpu": CPU}
    if label in ("native-busy", "native-hot"):
        cfg["busy_poll_us"] = BUSY_POLL_US
    if label in ("native-warm", "native-hot"):
        cfg["warm_every_ms"] = WARM_MS
    if not MESSAGE_LOGS:
        cfg["log_dir"] = ""
    path = tmp / f"gw-{policy}-{n}.toml"
    path.write_text(dumps(cfg))
    return path, cfg


def wait_logged_on(admin_port: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{admin_port}/status", timeout=2) as r:
                if all(v["logged_on"] for v in json.loads(r.read())["venues"]):
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise TimeoutError("gateway venues did not log on")


def client(port: int, target: str, sender: str = "OMS1") -> RawFixSession:
    c = RawFixSession(port=port, sender=sender, target=target, timeout=5).connect()
    c.logon(reset=True)
    return c


def send_order(c: RawFixSession, cid: str, price: str = "190.00", qty: int = 1) -> int:
    wire = c.build("D", [(11, cid), (55, "AAPL"), (54, "1"), (38, qty), (40, "2"), (44, price), (59, "3"),
                         (60, utc_now())]).encode()
    t = time.perf_counter_ns()
    c.send_raw(wire)
    return t


def wait_terminal(c: RawFixSession, cid: str, timeout: float = 5) -> int:
    """When the terminal ExecutionReport of ``cid`` came off the wire: stamped right after the
    recv that completed it, before any parsing (byte-level, loadgen.py's), so that the client's
    own parse is not in the round trip (simplefix took ~50 us, under the interpreter lock the
    fake venues' threads share). Bytes read past it wait on the session for the next call."""
    want = cid.encode()
    buf: bytearray = c.__dict__.setdefault("pending", bytearray())
    deadline = time.monotonic() + timeout
    t = time.perf_counter_ns()            # for a report already read with an earlier chunk
    while True:
        for msg in loadgen.messages(buf):
            if (loadgen.field(msg, b"35") == b"8" and loadgen.field(msg, b"11") == want
                    and loadgen.field(msg, b"39") in loadgen.TERMINAL):
                return t
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"no terminal report for {cid}")
        c.sock.settimeout(remaining)
        try:
            data = c.sock.recv(65536)
        except socket.timeout:
            continue
        t = time.perf_counter_ns()
        if not data:
            raise ConnectionError(f"the session closed before the terminal report for {cid}")
        buf += data


def start_gateway(tmp: Path, venues: dict[str, int], log_name: str):
    """A gateway process (DMA) whose venues are logged on; returns (Popen, config dict)."""
    path, cfg = gateway_config(tmp, venues)
    with every_cpu():
        gw = procs.start(procs.fixgw_command("run", "--config", str(path), "--log-level", "WARNING"), tmp / log_name)
    try:
        procs.wait_for_ports([cfg["oms"]["port"]], 20, gw)
        wait_logged_on(cfg["admin"]["port"])
    except BaseException:
        procs.stop(gw)
        raise
    return gw, cfg


@contextlib.contextmanager
def gateway_on_fake_venue(tmp: Path, log_name: str):
    """A gateway process (DMA) logged on to a fake venue; yields (venue, OMS client, gateway
    Popen, its config)."""
    vport = procs.free_port()
    venue = FakeVenue("FAKE", vport)
    venue.start()
    gw = None
    try:
        gw, cfg = start_gateway(tmp, {"FAKE": vport}, log_name)
        c = client(cfg["oms"]["port"], "FIXGW")
        yield venue, c, gw, cfg
        c.logout()
    finally:
        procs.stop(gw)
        venue.stop.set()


# ------------------------------------------------------------------ 1. hop latency

def bench_hops(tmp: Path, n: int, run: int) -> tuple[dict, dict]:
    """Orders one at a time through the gateway, each followed by one over the floor (the same raw
    endpoints wired straight together), so that both see the same moment's noise. The gateway
    side's dict also holds ``gateway``: what the gateway process did meanwhile (``hop_view``)."""
    with floor_pair() as (floor_venue, fc), gateway_on_fake_venue(tmp, f"gw{run}.log") as (venue, c, gw, cfg):
        sent, got, fsent, fgot = {}, {}, {}, {}
        u0, t0 = proc_usage(gw.pid), time.perf_counter()
        for i in range(n + 100):
            if GAP_S:
                time.sleep(GAP_S)
            cid = f"h{run}-{i}"
            sent[cid] = send_order(c, cid)
            got[cid] = wait_terminal(c, cid)
            if GAP_S:
                time.sleep(GAP_S)
            fid = f"f{run}-{i}"
            fsent[fid] = send_order(fc, fid)
            fgot[fid] = wait_terminal(fc, fid)
        view = hop_view(u0, proc_usage(gw.pid), n + 100, time.perf_counter() - t0, cfg)
    view["probes"] = probe_overlap(list(sent.values())[100:], list(got.values())[100:], venue.probes_at)
    return {**_edges(sent, got, venue), "gateway": view}, _edges(fsent, fgot, floor_venue)


def probe_overlap(sent: list[int], got: list[int], probes_at: list[int]) -> dict:
    """How many orders had one of the gateway's latency probes (a TestRequest reaching the fake
    venue) in flight with them, among all orders and among the slowest 1%: the probes' share of
    the p99 (the probe and its Heartbeat take the gateway's loop and the venue's thread)."""
    probes = np.asarray(sorted(probes_at), dtype=np.int64)
    s, g = np.asarray(sent, dtype=np.int64), np.asarray(got, dtype=np.int64)
    if not len(s):
        return {"probes": len(probes), "all_pct": None, "slowest_pct": None}
    met = np.searchsorted(probes, g) > np.searchsorted(probes, s)        # a probe arrived in [sent, got)
    slow = np.argsort(g - s)[-max(1, len(s) // 100):]
    return {"probes": int(len(probes)), "all_pct": round(100 * float(met.mean()), 1),
            "slowest_pct": round(100 * float(met[slow].mean()), 1)}


def hop_view(u0: dict, u1: dict, n: int, seconds: float, cfg: dict) -> dict:
    """The gateway process over a one-at-a-time run: CPU and context switches per order, and its
    loop's collections (from /status: count, longest pause), the pauses an order may meet."""
    out: dict = {"usage": usage_per_order(u0, u1, n, seconds)}
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{cfg['admin']['port']}/status", timeout=5) as r:
            out["collector"] = json.loads(r.read())["gateway"].get("collector")
    except (OSError, ValueError, KeyError):
        out["collector"] = None
    return out


def hop_line(view: dict) -> str:
    u, col = view["usage"], view.get("collector") or {}
    pauses = ", ".join(f"{k} {v['count']} (longest {v['longest_ms']:.2f} ms)" for k, v in col.items()
                       if isinstance(v, dict) and v.get("count"))
    pr = view.get("probes") or {}
    probes = (f"; {pr['probes']} probes, in flight with {pr['all_pct']}% of the orders and {pr['slowest_pct']}% "
              "of the slowest 1%" if pr.get("all_pct") is not None else "")
    return (f"gateway {u['cpu_us']:.1f} us CPU, {u['reads']:.2f} reads, {u['writes']:.2f} writes (sockets, "
            f"journal, stores) and {u['ctx_switches']:.2f} context switches per order (busy {u['busy']}); "
            f"collections by the loop: {pauses or 'none'}{probes}")


@contextlib.contextmanager
def floor_pair():
    """A raw client logged on straight to a fake venue: Python + loopback, no gateway."""
    port = procs.free_port()
    venue = FakeVenue("FLOOR", port)
    venue.start()
    c = RawFixSession(port=port, sender="FIXGW", target="FLOOR", timeout=5).connect()
    try:
        c.logon(reset=True)
        yield venue, c
    finally:
        venue.stop.set()
        c.close()


def _edges(sent: dict, got: dict, venue: FakeVenue, warmup: int = 100) -> dict:
    """Edge-to-edge latencies in us; the venue's i-th order is the client's i-th (one at a time)."""
    t_sent, t_got = list(sent.values())[warmup:], list(got.values())[warmup:]
    v_in, v_out = venue.recv_at[warmup:], venue.send_at[warmup:]
    assert len(v_in) == len(t_sent), "venue and client order counts differ"
    return {"in": [(v - s) / 1e3 for v, s in zip(v_in, t_sent)],
            "out": [(g - v) / 1e3 for g, v in zip(t_got, v_out)],
            "rtt": [(g - s) / 1e3 for g, s in zip(t_got, t_sent)]}


# ------------------------------------------------------------------ 2. through the gateway vs direct

def bench_vs_direct(tmp: Path, n: int, run: int) -> dict:
    vport = procs.free_port()
    sim_cfg = {"store_dir": str(tmp / f"sim{run}"),
               "symbols": [{"symbol": "AAPL", "tick_size": 0.01, "ref_price": 190.0}],
               "venues": [{"name": "ALPHA", "port": vport, "flow": {"enabled": False}}]}
    sp = tmp / f"sim{run}.toml"
    sp.write_text(dumps(sim_cfg))
    sim = procs.start(procs.fixgw_command("sim", "--config", str(sp)), tmp / f"sim{run}.log")
    gw = None
    try:
        procs.wait_for_ports([vport], 20, sim)
        gw, cfg = start_gateway(tmp, {"ALPHA": vport}, f"gwd{run}.log")
        via = client(cfg["oms"]["port"], "FIXGW")
        direct = client(vport, "ALPHA", sender="CLIENT")
        out = {"gateway": [], "direct": []}
        # alternate so that both see the same noise; a marketable 1-lot IOC fills at the touch
        for i in range(n + 50):
            for name, c in (("gateway", via), ("direct", direct)):
                cid = f"{name[0]}{run}-{i}"
                t0 = send_order(c, cid, price="190.50")
                t1 = wait_terminal(c, cid)
                if i >= 50:
                    out[name].append((t1 - t0) / 1e3)
        via.logout()
        direct.logout()
        return out
    finally:
        procs.stop(gw)
        procs.stop(sim)


# ------------------------------------------------------------------ 3. throughput

def proc_usage(pid: int) -> dict:
    """A process's CPU seconds (every thread's run time, user + system, in ns from each thread's
    schedstat: exact, where the clock-tick figures of /proc/PID/stat are sampled), read and write
    system calls and context switches so far, from Linux /proc (zeros where it cannot be read)."""
    out = {"cpu_s": 0.0, "syscr": 0, "syscw": 0, "vcs": 0, "ivcs": 0}
    try:
        ns = 0
        for task in os.listdir(f"/proc/{pid}/task"):
            with contextlib.suppress(OSError), open(f"/proc/{pid}/task/{task}/schedstat") as f:
                ns += int(f.read().split()[0])
        out["cpu_s"] = ns / 1e9
        with open(f"/proc/{pid}/io") as f:
            io = dict(line.split(":") for line in f.read().splitlines() if ":" in line)
        out["syscr"], out["syscw"] = int(io["syscr"]), int(io["syscw"])
        with open(f"/proc/{pid}/status") as f:
            st = dict(line.split(":", 1) for line in f.read().splitlines() if ":" in line)
        out["vcs"], out["ivcs"] = int(st["voluntary_ctxt_switches"]), int(st["nonvoluntary_ctxt_switches"])
    except (OSError, KeyError, IndexError, ValueError):
        pass
    return out


def usage_per_order(before: dict, after: dict, n: int, seconds: float) -> dict:
    """CPU us, read/write system calls (sockets included for the gateway: its loop reads and
    writes them with read/write) and context switches per order between two ``proc_usage``,
    and ``busy``: the CPU seconds per second of the run (1.0: a whole CPU, the process's ceiling)."""
    d = {k: after[k] - before[k] for k in before}
    return {"cpu_us": round(d["cpu_s"] / n * 1e6, 1), "busy": round(d["cpu_s"] / seconds, 2) if seconds else None,
            "reads": round(d["syscr"] / n, 3),
            "writes": round(d["syscw"] / n, 3), "ctx_switches": round((d["vcs"] + d["ivcs"]) / n, 3),
            "preempted": round(d["ivcs"] / n, 3)}


def bench_throughput(tmp: Path, n: int, window: int, run: int) -> dict:
    """Pipelined orders through the gateway; load from benchmarks/loadgen.py processes (fast framing).
    Also per order, for each process of the run (gateway, load client, fake venue): CPU us, read
    and write system calls, context switches (``usage``): what bounds orders/s."""
    here = Path(__file__).resolve().parent
    vport = procs.free_port()
    venue = procs.start([sys.executable, str(here / "loadgen.py"), "venue", str(vport), "FAKE"], tmp / f"lgv{run}.log")
    pin_harness(venue.pid)
    gw = None
    try:
        procs.wait_for_ports([vport], 10, venue)
        gw, cfg = start_gateway(tmp, {"FAKE": vport}, f"gwt{run}.log")
        g0, v0 = proc_usage(gw.pid), proc_usage(venue.pid)
        cp = subprocess.Popen([sys.executable, str(here / "loadgen.py"), "client", str(cfg["oms"]["port"]), "FIXGW",
                               str(n), str(window)], stdout=subprocess.PIPE, text=True)
        pin_harness(cp.pid)
        try:
            stdout, _ = cp.communicate(timeout=180)
        except subprocess.TimeoutExpired:
            cp.kill()
            raise
        g1, v1 = proc_usage(gw.pid), proc_usage(venue.pid)
        if cp.returncode:
            raise subprocess.CalledProcessError(cp.returncode, cp.args, stdout)
        result = json.loads(stdout.strip().splitlines()[-1])
        result["usage"] = {"gateway": usage_per_order(g0, g1, n, result["seconds"]),
                           "client": result.pop("usage", None),
                           # the fake venue's recv/send calls are not read/write system calls: not counted
                           "venue": {**usage_per_order(v0, v1, n, result["seconds"]), "reads": None, "writes": None}}
        with urllib.request.urlopen(f"http://127.0.0.1:{cfg['admin']['port']}/status", timeout=5) as r:
            st = json.loads(r.read())
        result["venue_orders"] = sum(v["orders_routed"] for v in st["venues"])
        result["gateway_open"] = st["orders"]["open"]
        return result
    finally:
        procs.stop(gw)
        procs.stop(venue)


def throughput_floor(n: int, window: int) -> float:
    """The load generator wired straight to its fake venue: what the harness itself can do."""
    here = Path(__file__).resolve().parent
    port = procs.free_port()
    venue = procs.start([sys.executable, str(here / "loadgen.py"), "venue", str(port), "FLOOR"])
    try:
        procs.wait_for_ports([port], 10, venue)
        out = subprocess.run([sys.executable, str(here / "loadgen.py"), "client", str(port), "FLOOR", str(n),
                              str(window)], capture_output=True, text=True, timeout=120, check=True)
        return json.loads(out.stdout.strip().splitlines()[-1])["per_s"]
    finally:
        procs.stop(venue)


def usage_line(usage: dict) -> str:
    """``bench_throughput``'s per-process usage per order, as one line."""
    def io(u: dict) -> str:
        return "" if u["reads"] is None else f"{u['reads']:.2f} reads, {u['writes']:.2f} writes, "
    return "; ".join(f"{who} {u['cpu_us']:.1f} us CPU (busy {u['busy']}), {io(u)}{u['ctx_switches']:.2f} switches"
                     for who, u in usage.items() if u)


def median(xs):
    return float(np.median(xs)) if xs else None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--orders", type=int, default=2000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--window", type=int, default=200, help="orders in flight for the throughput test")
    ap.add_argument("--quick", action="store_true", help="300 orders, 1 run")
    ap.add_argument("--cpu", type=lambda v: None if v == "none" else int(v), default=-1,
                    help="pin the gateway to this CPU (-1: the last one; none: no pinning; "
                                                        "default %(default)s)")
    ap.add_argument("--engines", default="native,quickfix",
                    help="backends to measure (default %(default)s; also native-busy: native with --busy-poll-us; "
                         "native-warm: native with warm_every_ms = --warm-ms; native-hot: both)")
    ap.add_argument("--busy-poll-us", type=int, default=1000,
                    help="the native-busy backend's busy_poll_us (default %(default)s)")
    ap.add_argument("--json", action="store_true", help="last line: the JSON summary")
    ap.add_argument("--vs-direct", action="store_true", help="also: simulator round trip via gateway vs direct")
    ap.add_argument("--no-logs", action="store_true", help="FIX message logs off (the shipped config logs)")
    ap.add_argument("--harness-cpus", choices=("apart", "any"), default="any",
                    help="apart: the harness (raw endpoints, load generator, simulator) runs on every CPU but the "
                         "pinned gateway's; any: wherever the OS puts it (default %(default)s)")
    ap.add_argument("--warm-ms", type=float, default=1.0,
                    help="the native-warm backend's warm_every_ms (default %(default)s)")
    ap.add_argument("--gap-ms", type=float, default=0.0,
                    help="one-at-a-time run: idle this long before each order, the gateway's and the floor's "
                         "(sporadic orders, as a scalper sends them: every process's caches go cold in between)")
    args = ap.parse_args()
    global CPU, ENGINE, MESSAGE_LOGS, BUSY_POLL_US, HARNESS_APART, GAP_S, WARM_MS
    GAP_S = args.gap_ms / 1e3
    WARM_MS = args.warm_ms
    CPU = args.cpu
    HARNESS_APART = args.harness_cpus == "apart"
    if CPU == -1:                   # the last CPU, named: this process's own affinity changes next
        CPU = sorted(ALL_CPUS)[-1]
    harness = harness_cpus()
    if harness is not None:         # this process's threads and every child inherit it; the gateway pins itself
        os.sched_setaffinity(0, harness)
    BUSY_POLL_US = args.busy_poll_us
    MESSAGE_LOGS = not args.no_logs
    if args.quick:
        args.orders, args.runs = 300, 1
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    results: dict[str, dict[str, list]] = {e: {"added_p50_us": [], "added_p99_us": [], "orders_per_s": [],
                                               "lost": [], "gateway_cpu_us": [], "gateway_busy": [],
                                               "harness_cpu_us": [], "ceiling_per_s": []} for e in engines}
    with tempfile.TemporaryDirectory(prefix="bench-gw-") as d:
        tmp = Path(d)
        print(f"# gateway benchmark: {args.orders} orders x {args.runs} runs, backends {engines}, FileStore on, "
              f"loopback, gateway pinned to CPU {CPU}, harness on CPUs {sorted(harness or os.sched_getaffinity(0))}; "
              f"load average {os.getloadavg()[0]:.2f} "
              f"{os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f} on {os.cpu_count()} CPUs", flush=True)
        for run in range(args.runs):
            print(f"\nrun {run + 1}: load average {os.getloadavg()[0]:.2f}", flush=True)
            for engine in engines:
                ENGINE = engine
                hops, floor = bench_hops(tmp, args.orders, run)
                f50, f99 = np.percentile(floor["rtt"], [50, 99])
                print(f"  [{engine}] edge-to-edge latency in us (raw client and raw venue timestamps)")
                print(f"    floor round trip (raw client <-> raw venue, interleaved) {pct(floor['rtt'])}")
                for k, label in (("in", "OMS order in -> venue order out"),
                                 ("out", "venue fill in -> OMS fill out"), ("rtt", "round trip")):
                    print(f"    gateway {label:34} {pct(hops[k])}")
                print(f"    meanwhile: {hop_line(hops['gateway'])}")
                added = np.percentile(hops["rtt"], [50, 99]) - np.array([f50, f99])
                tp = bench_throughput(tmp, args.orders * 5, args.window, run)
                lost = tp["orders"] - tp["terminal"]
                # every order reached the venue once, came back filled once, and none is left open
                ok = ("every order accounted for" if tp["filled"] == tp["orders"] == tp["venue_orders"]
                      and not tp["duplicates"] and tp["gateway_open"] == 0 else "ORDERS MISSING OR NOT FILLED")
                print(f"    adds to a round trip: p50 {added[0]:.1f} us, p99 {added[1]:.1f} us; throughput "
                      f"{tp['terminal']}/{tp['orders']} terminal ({tp['filled']} filled, {tp['duplicates']} "
                      f"duplicate reports), {tp['venue_orders']} venue orders, {tp['per_s']:.0f} orders/s ({ok})",
                      flush=True)
                ceiling = 1e6 / tp["usage"]["gateway"]["cpu_us"] if tp["usage"]["gateway"]["cpu_us"] else 0.0
                print("    per order in the throughput run: " + usage_line(tp["usage"]) +
                      f"; the gateway's ceiling at a whole CPU {ceiling:.0f} orders/s", flush=True)
                r = results[engine]
                r["added_p50_us"].append(float(added[0]))
                r["added_p99_us"].append(float(added[1]))
                r["orders_per_s"].append(float(tp["per_s"]))
                r["lost"].append(lost)
                u = tp["usage"]
                r["gateway_cpu_us"].append(u["gateway"]["cpu_us"])
                r["gateway_busy"].append(u["gateway"]["busy"])
                r["ceiling_per_s"].append(ceiling)
                r["harness_cpu_us"].append(sum(u[k]["cpu_us"] for k in ("client", "venue") if u.get(k)))
                if args.vs_direct:
                    vs = bench_vs_direct(tmp, args.orders // 2, run)
                    g50, d50 = np.percentile(vs["gateway"], 50), np.percentile(vs["direct"], 50)
                    print(f"    simulator round trip via gateway p50 {g50:.0f} us, direct {d50:.0f} us")
            if "native" in results and "quickfix" in results:
                n, q = results["native"], results["quickfix"]
                print(f"  run {run + 1} native/quickfix: added p50 x{n['added_p50_us'][-1] / q['added_p50_us'][-1]:.2f}, "
                      f"p99 x{n['added_p99_us'][-1] / q['added_p99_us'][-1]:.2f}, "
                      f"orders/s x{n['orders_per_s'][-1] / q['orders_per_s'][-1]:.2f}")
        print(f"\nharness alone (loadgen client <-> venue, on the harness CPUs): {throughput_floor(args.orders * 5, args.window):.0f} "
              f"orders/s; load average {os.getloadavg()[0]:.2f}")
    summary = {e: {"added_p50_us": round(median(r["added_p50_us"]), 1),
                   "added_p99_us": round(median(r["added_p99_us"]), 1),
                   "orders_per_s": round(median(r["orders_per_s"])), "lost": int(sum(r["lost"])),
                   "gateway_cpu_us": round(median(r["gateway_cpu_us"]), 1),
                   "gateway_busy": round(median([b for b in r["gateway_busy"] if b is not None] or [0.0]), 2),
                   "harness_cpu_us": round(median(r["harness_cpu_us"]), 1),
                   "ceiling_per_s": round(median(r["ceiling_per_s"]))}
               for e, r in results.items()}
    print(f"medians over {args.runs} run(s): " + "; ".join(
        f"{e}: +{v['added_p50_us']} us p50, +{v['added_p99_us']} us p99, {v['orders_per_s']} orders/s "
        f"(gateway busy {v['gateway_busy']}, {v['gateway_cpu_us']} us CPU per order: ceiling {v['ceiling_per_s']}), "
        f"{v['lost']} lost" for e, v in summary.items()))
    if args.json:
        print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
