"""Session benchmark: the sans-IO session layer alone, two Sessions talking through bytes.

An initiator ("client") and an acceptor ("venue") Session, each with its store, are connected
in memory: log on, then N order round trips, each a NewOrderSingle client -> venue and an
ExecutionReport venue -> client, one message at a time, driven as the transport drives a
session (receive_data, next_event until NEED_DATA, store.commit, data_to_send). Dictionary
validation on, latency checks on, real wall clock: the order path of the gateway's sessions.

Figures, nothing asserted:
- CPU per round trip (time.thread_time; both sessions, 4 messages: 2 sent, 2 received);
- with ``--callgrind``: instructions per round trip (valgrind runs this script twice, with
  ``--orders`` and ``--orders + --extra``, and divides the difference by ``--extra``, so
  start-up, imports and logon cancel out). Repeatable to about 0.1%.

Usage:
  python benchmarks/bench_session.py [--orders 20000] [--store memory|file|file-direct|both] [--runs 5]
  (file: FileStore(defer=True), as the native engine opens its stores; file-direct: one
  os.write per saved message, the FileStore default)
  python benchmarks/bench_session.py --callgrind [--orders 200 --extra 2000]
  FIXGW_PURE=1 python benchmarks/bench_session.py ...     # the pure-Python modules
"""
from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gateway.common import accel  # noqa: E402
from gateway.fix.codec import Message, utc_timestamp  # noqa: E402
from gateway.fix.dictionary import Dictionary  # noqa: E402
from gateway.fix.events import NEED_DATA, AppMessageReceived, LogonReceived  # noqa: E402
from gateway.fix.session import Session  # noqa: E402
from gateway.fix.settings import SessionSettings  # noqa: E402
from gateway.fix.store import FileStore, MemoryStore  # noqa: E402

# TransactTime (60) is "now", as the gateway writes it (a fixed old date would defeat the
# codec's one-second cache of SendingTime parsing, which real traffic hits).
ORDER = "11={id}\x0121=1\x0155=EURUSD\x0154=1\x0160={now}\x0138=100\x0140=2\x0144=1.1\x01"
REPORT = ("37=O{id}\x0111={id}\x0117=E{id}\x01150=F\x0139=2\x0155=EURUSD\x0154=1\x01"
          "151=0\x0114=100\x016=1.1\x0131=1.1\x0132=100\x01")


def pump(session: Session, store) -> list:
    """What the transport does with a session after input: events (an application message
    accepted in sequence as its Message, as the native engine takes it: Session.next_item,
    next_event where there is none), commit."""
    got = []
    next_item = getattr(session, "next_item", session.next_event)
    while (event := next_item()) is not NEED_DATA:
        if event.__class__ is LogonReceived:
            session.accept_logon()
        got.append(event)
    store.commit()
    return got


class Pair:
    def __init__(self, kind: str, directory: str | None) -> None:
        dictionary = Dictionary.load()

        def one(role: str, sender: str, target: str):
            settings = SessionSettings(sender_comp_id=sender, target_comp_id=target, role=role,
                                       heartbeat_s=30, reset_on_logon=True)
            # "file": as the native engine opens its stores (defer: the session's records
            # written when its bytes are taken, data_to_send); "file-direct": one write per save
            store = (FileStore(directory, settings.key, defer=kind == "file")
                     if kind.startswith("file") and directory else MemoryStore())
            return Session(settings, store, dictionary), store

        self.client, self.cstore = one("initiator", "CLIENT", "VENUE")
        self.venue, self.vstore = one("acceptor", "VENUE", "CLIENT")
        self.venue.connection_made()
        self.client.connection_made()
        self.deliver(self.client, self.venue, self.vstore)      # Logon ->
        self.deliver(self.venue, self.client, self.cstore)      # <- Logon
        assert self.client.logged_on and self.venue.logged_on, (self.client.state, self.venue.state)

    @staticmethod
    def deliver(src: Session, dst: Session, dst_store) -> list:
        data = src.data_to_send()
        dst.receive_data(data)
        return pump(dst, dst_store)

    def round_trips(self, n: int, start: int = 0) -> None:
        client, venue = self.client, self.venue
        for i in range(start, start + n):
            client.send("D", ORDER.format(id=i, now=utc_timestamp(time.time())))
            (event,) = self.deliver(client, venue, self.vstore)
            assert event.__class__ is Message or event.__class__ is AppMessageReceived
            venue.send("8", REPORT.format(id=i))
            (event,) = self.deliver(venue, client, self.cstore)
            assert event.__class__ is Message or event.__class__ is AppMessageReceived

    def close(self) -> None:
        self.cstore.close()
        self.vstore.close()


def run(kind: str, orders: int) -> float:
    """CPU us per round trip."""
    with tempfile.TemporaryDirectory() as d:
        pair = Pair(kind, d)
        pair.round_trips(200)             # warm up
        t0 = time.thread_time()
        pair.round_trips(orders, 200)
        elapsed = time.thread_time() - t0
        pair.close()
    return elapsed / orders * 1e6


def callgrind(kind: str, orders: int, extra: int) -> float:
    """Instructions per round trip: (Ir(orders + extra) - Ir(orders)) / extra."""
    counts = []
    for n in (orders, orders + extra):
        with tempfile.TemporaryDirectory() as d:
            out = os.path.join(d, "cg.out")
            cmd = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
                   sys.executable, __file__, "--store", kind, "--orders", str(n), "--runs", "1",
                   "--quiet"]
            res = subprocess.run(cmd, capture_output=True, text=True, check=True)
            m = re.search(r"Collected : (\d+)", res.stderr)
            assert m, res.stderr[-2000:]
            counts.append(int(m.group(1)))
    return (counts[1] - counts[0]) / extra


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--orders", type=int, default=None)
    ap.add_argument("--extra", type=int, default=2000, help="--callgrind: the measured orders")
    ap.add_argument("--store", choices=("memory", "file", "file-direct", "both"), default="both")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--callgrind", action="store_true")
    ap.add_argument("--quiet", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    kinds = ("memory", "file") if args.store == "both" else (args.store,)
    mode, why = accel.mode()
    if args.quiet:                       # a callgrind child: the work, no output
        for kind in kinds:
            with tempfile.TemporaryDirectory() as d:
                pair = Pair(kind, d)
                pair.round_trips(args.orders if args.orders is not None else 200)
                pair.close()
        return
    print(f"# session pair, NOS -> ER round trips; modules: {mode} ({why})")
    for kind in kinds:
        if args.callgrind:
            ir = callgrind(kind, args.orders if args.orders is not None else 200, args.extra)
            print(f"{kind:11} store: {ir:,.0f} instructions per round trip (callgrind)")
        else:
            orders = args.orders if args.orders is not None else 20000
            cpu = [run(kind, orders) for _ in range(args.runs)]
            print(f"{kind:11} store: CPU per round trip median {statistics.median(cpu):.2f} us "
                  f"(runs: {', '.join(f'{c:.2f}' for c in cpu)})")


if __name__ == "__main__":
    main()
