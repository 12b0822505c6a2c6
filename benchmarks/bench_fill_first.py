"""Fill out while market data waits: how long the OMS's ExecutionReport takes to leave the gateway
when the venue's chunk holds the fill AND market data after it (the simulator sends a step's fill,
then its MarketDataIncrementalRefresh, in one write).

    PYTHONPATH=. python benchmarks/bench_fill_first.py [--orders 300] [--entries 10]

The real gateway (``Gateway``, native engine, DMA, FileStores, journal) on this process's loop,
a fake venue (native acceptor: fills nothing by itself, answers the MarketDataRequest with a
snapshot) and an OMS client (native initiator), all in this process over 127.0.0.1. Per order:
the client's NewOrderSingle goes through the gateway to the venue as usual; then the venue's
fill and a ``--entries``-entry incremental refresh are made by the venue's session and handed to
the gateway's venue session as ONE received chunk (``receive``), timed with ``perf_counter``:

    fill out   receive() called -> the gateway's socket write carrying the OMS's fill report
    chunk      receive() called -> it returned (the fill and the market data handled, all written)

Medians and p90 in microseconds; prints, asserts nothing. Runs unchanged against an older tree
(``PYTHONPATH=<tree>:<tree>/benchmarks``, a copy of this file) for A/B: on a tree without "order
flow first" the fill leaves after the market data is handled.

Measured (issue 12, round 4; 8 pairs alternated with e3426ed, 300-400 orders each, compiled, load
average ~3 on 2 cores): fill out p50 medians 125 -> 78 us (per-pair ratio median 0.66, range
0.55-0.94); the chunk's thread CPU time p50 199/92/211 us base vs 177/99/206 us (3 pairs): the
same work, only in a different order.
"""
from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))

from bench_gateway import gateway_config  # noqa: E402

from gateway.apps.server.app import Gateway  # noqa: E402
from gateway.apps.server.config import GatewayConfig  # noqa: E402
from gateway.common.configfile import load_config  # noqa: E402
from gateway.fix.engine import BaseApplication, create_engine  # noqa: E402
from gateway.fix.settings import SessionSettings  # noqa: E402
from gateway.fix.transport import new_event_loop  # noqa: E402

NOS = "11={id}\x0155=AAPL\x0154=1\x0160=20260101-00:00:00\x0138=100\x0140=2\x0144=190.01\x0159=3\x01"
FILL = ("37=V{i}\x0111={cid}\x0117=X{i}\x01150=F\x0139=2\x0155=AAPL\x0154=1\x0138=100\x0132=100\x01"
        "31=190.01\x01151=0\x0114=100\x016=190.01\x0160=20260101-00:00:00\x01")


class FakeVenue(BaseApplication):
    """Keeps the orders; answers a MarketDataRequest with a two-sided snapshot."""

    def __init__(self) -> None:
        self.orders: list[str] = []
        self.md_req: str | None = None

    def on_message(self, session, msg) -> None:
        if msg.msg_type == "D":
            self.orders.append(msg[11])
        elif msg.msg_type == "V":
            self.md_req = msg[262]
            session.send("W", f"262={self.md_req}\x0155=AAPL\x01268=2\x01269=0\x01270=190.00\x01271=500\x01"
                              "269=1\x01270=190.02\x01271=500\x01")


class Client(BaseApplication):
    def __init__(self) -> None:
        self.fills = 0

    def on_message(self, session, msg) -> None:
        if msg.msg_type == "8" and msg.get(150) == "F":
            self.fills += 1


class Stamped:
    """The OMS connection's transport, noting when each write happens."""

    def __init__(self, inner) -> None:
        self._inner = inner
        self.stamps: list[float] = []

    def write(self, data) -> None:
        self.stamps.append(time.perf_counter())
        self._inner.write(data)

    def __getattr__(self, name):
        return getattr(self._inner, name)


async def until(predicate, what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        await asyncio.sleep(0.0005)


def md_body(req: str, entries: int, k: int) -> str:
    one = "".join(f"279=1\x01269={j % 2}\x0155=AAPL\x01270={190.00 - 0.01 * (j // 2) if j % 2 == 0 else 190.02 + 0.01 * (j // 2):.2f}"
                  f"\x01271={100 + (k + j) % 50}\x01" for j in range(entries))
    return f"262={req}\x01268={entries}\x01{one}"


async def measure(orders: int, entries: int, tmp: Path) -> tuple[list[float], list[float]]:
    venue_app, client_app = FakeVenue(), Client()
    venue = create_engine("native", "acceptor", [SessionSettings(sender_comp_id="FAKE", target_comp_id="FIXGW",
                                                                 role="acceptor", heartbeat_s=30)],
                          venue_app, host="127.0.0.1", port=0)
    await venue.start()
    path, cfg = gateway_config(tmp, {"FAKE": venue.port}, engine="native")
    gw = Gateway(load_config(path, GatewayConfig))
    await gw.start()
    client = create_engine("native", "initiator", [SessionSettings(sender_comp_id="OMS1", target_comp_id="FIXGW",
                                                                   role="initiator", heartbeat_s=30)],
                           client_app, hosts=[("127.0.0.1", cfg["oms"]["port"])])
    await client.start()
    fill_out: list[float] = []
    chunk_total: list[float] = []
    try:
        oms = await client.wait_logged_on()
        far = await venue.wait_logged_on()
        await until(lambda: venue_app.md_req is not None, "the MarketDataRequest")
        await asyncio.sleep(0.05)                                   # the snapshot handled
        gw_venue = next(iter(gw._initiators[0].sessions.values()))
        await until(lambda: next(iter(gw._acceptor.sessions.values())).conn is not None, "the OMS connection")
        gw_oms = next(iter(gw._acceptor.sessions.values()))
        stamped = Stamped(gw_oms.conn.transport)
        gw_oms.conn.transport = stamped
        for i in range(orders):
            oms.send("D", NOS.format(id=f"c{i}"))
            await until(lambda: len(venue_app.orders) > i, "the venue order")
            cid = venue_app.orders[i]
            far.session.send("8", FILL.format(i=i, cid=cid))
            far.session.send("X", md_body(venue_app.md_req, entries, i))
            chunk = far.session.data_to_send()
            stamped.stamps.clear()
            t0 = time.perf_counter()
            gw_venue.receive(chunk)
            t2 = time.perf_counter()
            if stamped.stamps and i >= 10:                            # the first ones warm the caches
                fill_out.append((stamped.stamps[0] - t0) * 1e6)
                chunk_total.append((t2 - t0) * 1e6)
            await until(lambda: client_app.fills > i, "the OMS's fill")
        book = gw.market.venues["FAKE"].feed.books.get("AAPL")      # the market data was applied
        print(f"# the gateway's AAPL book at FAKE: bid {book.best_bid()} ask {book.best_ask()} stale {book.stale}")
    finally:
        await client.stop()
        await gw.stop()
        await venue.stop()
    return fill_out, chunk_total


def pct(xs: list[float], q: float) -> float:
    return sorted(xs)[min(len(xs) - 1, int(q * len(xs)))]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--orders", type=int, default=300)
    ap.add_argument("--entries", type=int, default=10)
    args = ap.parse_args()
    loop = new_event_loop()
    with tempfile.TemporaryDirectory(prefix="bench-fill-first-") as d:
        fill_out, chunk_total = loop.run_until_complete(asyncio.wait_for(
            measure(args.orders, args.entries, Path(d)), timeout=300))
    loop.close()
    import gateway
    print(f"# fill + {args.entries}-entry market data in one venue chunk, {len(fill_out)} orders; "
          f"gateway from {Path(gateway.__file__).parent.parent}")
    print(f"fill out   p50 {statistics.median(fill_out):7.1f} us   p90 {pct(fill_out, 0.9):7.1f} us")
    print(f"chunk      p50 {statistics.median(chunk_total):7.1f} us   p90 {pct(chunk_total, 0.9):7.1f} us")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
