"""Relay benchmark: the latency and throughput a FIX engine adds to an order round trip.

    client -> relay acceptor -> relay initiator -> echo venue -> relay -> client

The client and the echo venue run in this process on one asyncio loop (native engine);
the relay runs in a child process with the engine under test ("native" or "quickfix"),
its application code on one loop thread (the Engine interface: the same relay code for
both). Figures printed, nothing asserted:
- direct round trip (client -> venue) p50/p99, the floor;
- through each relay: round trip p50/p99 and the added latency (relay minus direct);
- pipelined orders/s through each relay (a window of orders in flight);
- the relay process's CPU time per order, sequential and pipelined (Linux: from /proc).

Usage:
  .venv/bin/python benchmarks/bench_relay.py [--orders 5000] [--pipelined 20000] [--window 100]
                                              [--kinds native,quickfix]
  .venv/bin/python benchmarks/bench_relay.py --stub 20000      # the relay's CPU per order, no sockets
"""
from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gateway.fix.engine import BaseApplication, create_engine  # noqa: E402
from gateway.fix.settings import SessionSettings  # noqa: E402
from gateway.fix.transport import new_event_loop  # noqa: E402

ORDER = "11={id}\x0155=EURUSD\x0154=1\x0160=20240101-00:00:00.000\x0138=100\x0140=2\x0144=1.1\x01"
REPORT = ("37=O{id}\x0111={id}\x0117=E{id}\x01150=F\x0139=2\x0155=EURUSD\x0154=1\x01"
          "151=0\x0114=100\x016=1.1\x0131=1.1\x0132=100\x01")


VALIDATE = os.environ.get("BENCH_RELAY_VALIDATE", "1") == "1"   # the child inherits it


def sessions(sender: str, target: str, role: str) -> list[SessionSettings]:
    # Same work on both engines: memory stores, dictionary validation (unless --no-validate),
    # resets on logon.
    return [SessionSettings(sender_comp_id=sender, target_comp_id=target, role=role, heartbeat_s=30,
                            reset_on_logon=True, check_latency=False, validate=VALIDATE)]


# ---------------------------------------------------------------- the relay (child process)

class Relay(BaseApplication):
    """Forwards NewOrderSingle client -> venue and ExecutionReport venue -> client, unchanged."""

    def __init__(self) -> None:
        self.client = None
        self.venue = None

    def on_logon(self, session) -> None:
        if session.target_comp_id == "CLIENT":
            self.client = session
        else:
            self.venue = session

    def on_message(self, session, msg) -> None:
        if msg.msg_type == "D" and self.venue is not None:
            self.venue.send("D", msg.body_text())
        elif msg.msg_type == "8" and self.client is not None:
            self.client.send("8", msg.body_text())
        else:
            super().on_message(session, msg)


async def run_relay(kind: str, listen: int, venue_port: int) -> None:
    app = Relay()
    upstream = create_engine(kind, "acceptor", sessions("RELAY", "CLIENT", "acceptor"), app,
                             host="127.0.0.1", port=listen)
    downstream = create_engine(kind, "initiator", sessions("RELAY", "VENUE", "initiator"), app,
                               hosts=[("127.0.0.1", venue_port)])
    await downstream.start()
    await downstream.wait_logged_on(timeout=15)   # orders must find the venue session up
    await upstream.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    import signal
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    print("ready", flush=True)
    await stop.wait()
    await downstream.stop()
    await upstream.stop()


# ---------------------------------------------------------------- client and venue (this process)

class Venue(BaseApplication):
    def on_message(self, session, msg) -> None:
        session.send("8", REPORT.format(id=msg[11]))


class Client(BaseApplication):
    """Sends orders and times each report by its ClOrdID."""

    def __init__(self) -> None:
        self.sent: dict[str, float] = {}
        self.rtts: list[float] = []
        self.waiter: asyncio.Future | None = None
        self.done_at = 0

    def on_message(self, session, msg) -> None:
        if msg.msg_type != "8":
            print(f"client got 35={msg.msg_type}: {msg.get(58)}", file=sys.stderr)
            return
        t0 = self.sent.pop(msg[11], None)
        if t0 is not None:
            self.rtts.append(time.perf_counter() - t0)
        if self.waiter is not None and not self.waiter.done() and len(self.rtts) >= self.done_at:
            self.waiter.set_result(None)

    async def sequential(self, handle, n: int) -> list[float]:
        self.rtts = []
        loop = asyncio.get_running_loop()
        for i in range(n):
            self.waiter, self.done_at = loop.create_future(), i + 1
            oid = f"S{i}-{time.perf_counter_ns()}"
            self.sent[oid] = time.perf_counter()
            handle.send("D", ORDER.format(id=oid))
            await asyncio.wait_for(self.waiter, 5)
        return self.rtts

    async def _until(self, loop, count: int) -> None:
        if len(self.rtts) < count:
            self.waiter, self.done_at = loop.create_future(), count
            await asyncio.wait_for(self.waiter, 10)

    async def pipelined(self, handle, n: int, window: int) -> float:
        self.rtts = []
        loop = asyncio.get_running_loop()
        t0 = time.perf_counter()
        sent = 0
        while sent < n:
            burst = min(window - (sent - len(self.rtts)), n - sent)
            for _ in range(max(burst, 0)):
                oid = f"P{sent}-{time.perf_counter_ns()}"
                self.sent[oid] = time.perf_counter()
                handle.send("D", ORDER.format(id=oid))
                sent += 1
            await self._until(loop, sent - window // 2)
        await self._until(loop, n)
        return n / (time.perf_counter() - t0)


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(p / 100 * len(s)))] * 1e6


def cpu_seconds(pid: int | None) -> float | None:
    """User + system CPU seconds a process has used so far (Linux /proc; None elsewhere)."""
    if pid is None:
        return None
    try:
        stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(stat[11]) + int(stat[12])) / os.sysconf("SC_CLK_TCK")     # utime + stime


def per_order_us(before: float | None, after: float | None, n: int) -> float | None:
    return (after - before) / n * 1e6 if before is not None and after is not None and n else None


async def measure(target_port: int, comp: str, target: str, orders: int, pipelined: int, window: int,
                  pid: int | None = None):
    """Round trips, pipelined orders/s, and the CPU per order of process ``pid`` (the relay)
    in each phase: (rtts, rate, cpu_us_sequential, cpu_us_pipelined)."""
    app = Client()
    client = create_engine("native", "initiator", sessions(comp, target, "initiator"), app,
                           hosts=[("127.0.0.1", target_port)])
    await client.start()
    try:
        handle = await client.wait_logged_on(timeout=15)
        await app.sequential(handle, min(500, orders))          # warm-up
        c0 = cpu_seconds(pid)
        rtts = await app.sequential(handle, orders)
        c1 = cpu_seconds(pid)
        rate = await app.pipelined(handle, pipelined, window) if pipelined else 0.0
        c2 = cpu_seconds(pid)
        return rtts, rate, per_order_us(c0, c1, orders), per_order_us(c1, c2, pipelined)
    finally:
        await client.stop()


def free_port() -> int:
    import socket
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def bench(args) -> None:
    venue_sessions = sessions("VENUE", "DIRECT", "acceptor") + sessions("VENUE", "RELAY", "acceptor")
    venue = create_engine("native", "acceptor", venue_sessions, Venue(), host="127.0.0.1", port=0)
    await venue.start()
    loop_name = type(asyncio.get_running_loop()).__module__.split(".")[0]
    print(f"loop: {loop_name}; validation {'on' if VALIDATE else 'off'}; {args.orders} sequential orders, {args.pipelined} pipelined (window {args.window})")
    try:
        direct, direct_rate, _, _ = await measure(venue.port, "DIRECT", "VENUE", args.orders, args.pipelined,
                                                  args.window)
        base = pct(direct, 50)
        print(f"{'direct (no relay)':<22} p50 {base:7.1f} us  p99 {pct(direct, 99):7.1f} us  "
              f"{direct_rate:8.0f} orders/s")
        for kind in args.kinds.split(","):
            await one_relay(kind, venue.port, args, base)
    finally:
        await venue.stop()


async def one_relay(kind: str, venue_port: int, args, base: float) -> None:
    port = free_port()
    proc = subprocess.Popen([sys.executable, __file__, "--relay", kind, "--listen", str(port),
                             "--venue", str(venue_port)], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])})
    try:
        line = await asyncio.wait_for(asyncio.get_running_loop().run_in_executor(None, proc.stdout.readline), 30)
        if line.strip() != "ready":
            print(f"{kind} relay did not start: {line!r}")
            return
        rtts, rate, cpu_seq, cpu_pipe = await measure(port, "CLIENT", "RELAY", args.orders, args.pipelined,
                                                      args.window, proc.pid)
        p50, p99 = pct(rtts, 50), pct(rtts, 99)
        # The relay process's CPU per order (NOS in + out, ER in + out): the engine's own cost,
        # much steadier than wall-clock latency on a shared machine.
        cpu = "".join(f"  cpu {label} {v:6.1f} us/order" for label, v in (("seq", cpu_seq), ("pipe", cpu_pipe))
                      if v is not None)
        print(f"{'relay ' + kind:<22} p50 {p50:7.1f} us  p99 {p99:7.1f} us  {rate:8.0f} orders/s   "
              f"added p50 {p50 - base:+7.1f} us  p99 {p99 - base:+7.1f} us{cpu}")
    except Exception as exc:  # noqa: BLE001 - report and go on to the next kind
        print(f"relay {kind}: failed: {type(exc).__name__}: {exc}")
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


# ---------------------------------------------------------------- sockets stubbed (--stub)

class StubTransport:
    """What NativeSession needs of an asyncio transport; writes go to the link's queue."""

    def __init__(self, link: "StubLink", to: int) -> None:
        self.link, self.to = link, to

    def write(self, data: bytes) -> None:
        self.link.pending.append((self.to, data))

    def get_write_buffer_size(self) -> int:
        return 0


class StubConn:
    """What NativeSession needs of a FixProtocol (transport.py)."""

    def __init__(self, transport: StubTransport) -> None:
        self.transport, self.peer = transport, "stub"
        self.paused = self.closing = False

    def close(self, reason: str, *, abort: bool = False, quiet: bool = False) -> None:
        raise RuntimeError(f"stub connection closed: {reason}")


class StubLink:
    """Two sessions joined in memory: bytes written by one are received by the other when
    ``deliver`` runs (never from inside a write, as on a real loop)."""

    def __init__(self, initiator, acceptor, timed: set) -> None:
        self.ends = (initiator, acceptor)
        self.pending: list[tuple[int, bytes]] = []
        self.timed = timed          # the sessions whose receive() is timed (the relay's)
        acceptor.attach(StubConn(StubTransport(self, 0)))     # the acceptor first: it waits for the Logon
        initiator.attach(StubConn(StubTransport(self, 1)))


def stub_bench(orders: int) -> None:
    """The relay's engine work per order with the sockets replaced by in-memory links:
    client -> relay acceptor -> relay initiator -> venue -> back, each chunk delivered in turn.
    Timed: only the relay's two sessions (NOS in and out, ER in and out), by thread CPU time.
    No kernel, no event loop: the Python and compiled work of the engine and a trivial relay."""
    from gateway.fix.transport import NativeEngine
    loop = new_event_loop()
    asyncio.set_event_loop(loop)

    def engine(role, comp, target, app):
        e = NativeEngine(role, sessions(comp, target, role), app, loop=loop,
                         hosts=[("127.0.0.1", 1)] if role == "initiator" else None)
        ns = e._make_session(e._settings[0])
        e.sessions[ns.key] = ns
        return ns

    relay, venue_app, client_app = Relay(), Venue(), StubClient()
    client = engine("initiator", "CLIENT", "RELAY", client_app)
    relay_up = engine("acceptor", "RELAY", "CLIENT", relay)
    relay_down = engine("initiator", "RELAY", "VENUE", relay)
    venue = engine("acceptor", "VENUE", "RELAY", venue_app)
    timed = {relay_up, relay_down}
    links = [StubLink(client, relay_up, timed), StubLink(relay_down, venue, timed)]
    cpu = [0.0]

    def deliver() -> None:
        for _ in range(1000):
            moved = False
            for link in links:
                pending, link.pending = link.pending, []
                for to, data in pending:
                    ns = link.ends[to]
                    if ns in timed:
                        t0 = time.thread_time()
                        ns.receive(data)
                        cpu[0] += time.thread_time() - t0
                    else:
                        ns.receive(data)
                    moved = True
            if not moved:
                return
        raise RuntimeError("stub links did not settle")

    deliver()                                    # logons
    assert client.logged_on and relay_down.logged_on, "stub sessions did not log on"
    for phase, n in (("warm-up", min(1000, orders)), ("measured", orders)):
        cpu[0], client_app.reports = 0.0, 0
        for i in range(n):
            client.send("D", ORDER.format(id=f"S{i}"))
            deliver()
        assert client_app.reports == n, (client_app.reports, n)
    print(f"relay, sockets stubbed: {orders} orders one at a time, relay CPU {cpu[0] / orders * 1e6:.2f} us per order "
          f"(NOS in + out, ER in + out; thread time of the relay's receive calls)")
    loop.close()


class StubClient(BaseApplication):
    def __init__(self) -> None:
        self.reports = 0

    def on_message(self, session, msg) -> None:
        self.reports += 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders", type=int, default=5000)
    parser.add_argument("--pipelined", type=int, default=20000)
    parser.add_argument("--window", type=int, default=100)
    parser.add_argument("--kinds", default="native,quickfix")
    parser.add_argument("--no-validate", action="store_true",
                        help="dictionary validation off on every session (shows the engine without it)")
    parser.add_argument("--stub", type=int, metavar="N",
                        help="only the relay's CPU per order for N orders, sockets replaced by in-memory links")
    parser.add_argument("--relay", help=argparse.SUPPRESS)
    parser.add_argument("--listen", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--venue", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.no_validate:
        global VALIDATE
        VALIDATE = False
        os.environ["BENCH_RELAY_VALIDATE"] = "0"
    if args.stub:
        stub_bench(args.stub)
        return
    loop = new_event_loop()
    try:
        if args.relay:
            loop.run_until_complete(run_relay(args.relay, args.listen, args.venue))
        else:
            loop.run_until_complete(bench(args))
    finally:
        loop.close()


if __name__ == "__main__":
    main()
