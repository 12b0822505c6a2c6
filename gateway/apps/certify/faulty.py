"""Deliberately faulty FIX 4.4 counterparties, to prove the certifier catches faults.

- FaultyAcceptor: the reference quickfix acceptor, broken in chosen ways: some faults are
  quickfix settings a real counterparty could get wrong, the others are done on the wire
  by a small proxy in front of it (the acceptor's own messages are dropped, or our bad
  CheckSums are repaired before it sees them).
- FaultyInitiator: the reference quickfix initiator behind a proxy that hides the
  certifier's ResendRequests from it (``ignore-resend-request``).
- FaultyVenue: a proxy in front of any order-handling acceptor (a simulator venue) that
  drops its application messages in chosen ways (``no-ioc-cancel``).

    python -m gateway.apps.certify.faulty --port 9200 --comp-id ISLD --fault accept-bad-checksum
    python -m gateway.apps.certify.faulty --port 9300 --upstream 9101 --fault no-ioc-cancel

Without any --fault it is the plain reference acceptor.
"""
from __future__ import annotations

import argparse
import re
import socket
import sys
import threading
from dataclasses import dataclass, field

from gateway.fix import quickfix_backend as fixedge
from gateway.apps.certify.acceptor import ReferenceAcceptor
from gateway.apps.certify.wire import Framer, FramingError
from gateway.common.procs import free_port

FAULTS = {
    "no-test-request-reply": "never answers a TestRequest (its Heartbeat with TestReqID is dropped)",
    "ignore-seq-gaps": "never asks for missing messages (its ResendRequests are dropped)",
    "accept-bad-checksum": "accepts messages with a wrong CheckSum (repaired before it parses them)",
    "no-sendingtime-check": "does not check SendingTime accuracy (CheckLatency=N)",
    "no-compid-check": "does not check CompIDs after logon (CheckCompID=N)",
    "no-reset-on-logon": "keeps sequence numbers across logons (ResetOnLogon=N)",
}
SETTING_FAULTS = {
    "no-sendingtime-check": {"CheckLatency": False},
    "no-compid-check": {"CheckCompID": False},
    "no-reset-on-logon": {"ResetOnLogon": False, "ResetOnDisconnect": False},
}
WIRE_FAULTS = {"no-test-request-reply", "ignore-seq-gaps", "accept-bad-checksum"}
INITIATOR_FAULTS = {
    "ignore-resend-request": "never answers a ResendRequest (the certifier's ResendRequests are dropped before it)",
}
APP_FAULTS = {
    "no-ioc-cancel": "never cancels an IOC remainder (its ExecType=4 reports without OrigClOrdID are dropped)",
}

HEAD_RE = re.compile(rb"8=FIX[^\x01]*\x019=(\d+)\x01")
TRAILER_RE = re.compile(rb"10=[^\x01]*\x01")


def repair_checksums(chunk: bytes) -> bytes:
    """Rewrite the CheckSum of every whole, well-framed message in ``chunk``; leave the rest as is."""
    out = bytearray()
    i = 0
    while i < len(chunk):
        m = HEAD_RE.match(chunk, i)
        if m:
            end_body = m.end() + int(m.group(1))
            t = TRAILER_RE.match(chunk, end_body)
            if t:
                msg = chunk[i:end_body]
                out += msg + b"10=%03d\x01" % (sum(msg) % 256)
                i = t.end()
                continue
        nxt = chunk.find(b"8=FIX", i + 1)
        if nxt < 0:
            out += chunk[i:]
            break
        out += chunk[i:nxt]
        i = nxt
    return bytes(out)


def drop_outbound(msg: bytes, faults: set[str]) -> bool:
    """True when the acceptor's message ``msg`` must not reach the certifier."""
    if "no-test-request-reply" in faults and b"\x0135=0\x01" in msg and b"\x01112=" in msg:
        return True
    if faults & {"ignore-seq-gaps", "ignore-resend-request"} and b"\x0135=2\x01" in msg:
        return True
    if "no-ioc-cancel" in faults and _is_unsolicited_cancel(msg):
        return True
    return False


def _is_unsolicited_cancel(msg: bytes) -> bool:
    """An ExecutionReport Canceled that answers no cancel request (no OrigClOrdID): an
    IOC/FOK remainder expiring. A requested cancel carries 41=the canceled ClOrdID."""
    return b"\x0135=8\x01" in msg and b"\x01150=4\x01" in msg and b"\x0141=" not in msg


class FaultProxy:
    """TCP proxy 127.0.0.1:listen_port -> 127.0.0.1:upstream_port applying wire faults."""

    def __init__(self, listen_port: int, upstream_port: int, faults: set[str]) -> None:
        self.upstream_port, self.faults = upstream_port, faults
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", listen_port))
        self.listener.listen(16)
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._accept_loop, name="fault-proxy", daemon=True)

    def start(self) -> "FaultProxy":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.stopped.set()
        try:
            self.listener.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.listener.close()
        self.thread.join(2)

    def _accept_loop(self) -> None:
        while not self.stopped.is_set():
            try:
                client, _ = self.listener.accept()  # blocks; closing the listener ends it
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.upstream_port), timeout=5)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            for s in (client, upstream):
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            threading.Thread(target=self._pump_in, args=(client, upstream), daemon=True).start()
            threading.Thread(target=self._pump_out, args=(upstream, client), daemon=True).start()

    def _pump_in(self, client: socket.socket, upstream: socket.socket) -> None:
        repair = "accept-bad-checksum" in self.faults
        try:
            while data := client.recv(65536):
                upstream.sendall(repair_checksums(data) if repair else data)
        except OSError:
            pass
        _shutdown(upstream, socket.SHUT_WR)

    def _pump_out(self, upstream: socket.socket, client: socket.socket) -> None:
        framer = Framer()
        try:
            while data := upstream.recv(65536):
                framer.feed(data)
                while (msg := framer.next_message()) is not None:
                    if not drop_outbound(msg, self.faults):
                        client.sendall(msg)
        except (OSError, FramingError):
            pass
        for s in (client, upstream):
            _shutdown(s, socket.SHUT_RDWR)
            s.close()


def _shutdown(s: socket.socket, how: int) -> None:
    try:
        s.shutdown(how)
    except OSError:
        pass


@dataclass
class FaultyAcceptor:
    port: int
    faults: set[str] = field(default_factory=set)
    comp_id: str = "ISLD"
    clients: tuple[str, ...] = ("CERT",)

    def __post_init__(self) -> None:
        unknown = self.faults - set(FAULTS)
        if unknown:
            raise ValueError(f"unknown fault(s) {sorted(unknown)}; known: {', '.join(FAULTS)}")
        settings: dict[str, object] = {}
        for f in self.faults:
            settings.update(SETTING_FAULTS.get(f, {}))
        wire = self.faults & WIRE_FAULTS
        inner_port = free_port() if wire else self.port
        self.acceptor = ReferenceAcceptor(inner_port, self.comp_id, self.clients, settings)
        self.proxy = FaultProxy(self.port, inner_port, wire) if wire else None

    def start(self) -> "FaultyAcceptor":
        self.acceptor.start()
        if self.proxy:
            self.proxy.start()
        return self

    def stop(self) -> None:
        if self.proxy:
            self.proxy.stop()
        self.acceptor.stop()

    def __enter__(self) -> "FaultyAcceptor":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


@dataclass
class FaultyInitiator:
    """The reference initiator connecting to the certifier at ``certifier_port`` through a
    proxy that applies INITIATOR_FAULTS to what the certifier sends it."""
    certifier_port: int
    faults: set[str] = field(default_factory=set)
    comp_id: str = "CERTI"
    target: str = "CERT"

    def __post_init__(self) -> None:
        from gateway.apps.certify.initiator import ReferenceInitiator
        unknown = self.faults - set(INITIATOR_FAULTS)
        if unknown:
            raise ValueError(f"unknown initiator fault(s) {sorted(unknown)}; known: {', '.join(INITIATOR_FAULTS)}")
        self.proxy = FaultProxy(free_port(), self.certifier_port, self.faults)
        self.initiator = ReferenceInitiator(self.proxy.listener.getsockname()[1], self.comp_id, self.target)

    def start(self) -> "FaultyInitiator":
        self.proxy.start()
        self.initiator.start()
        return self

    def stop(self) -> None:
        self.initiator.stop()
        self.proxy.stop()


@dataclass
class FaultyVenue:
    """127.0.0.1:``port`` -> an order-handling acceptor at ``upstream_port``, with APP_FAULTS."""
    port: int
    upstream_port: int
    faults: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        unknown = self.faults - set(APP_FAULTS)
        if unknown:
            raise ValueError(f"unknown application fault(s) {sorted(unknown)}; known: {', '.join(APP_FAULTS)}")
        self.proxy = FaultProxy(self.port, self.upstream_port, self.faults)

    def start(self) -> "FaultyVenue":
        self.proxy.start()
        return self

    def stop(self) -> None:
        self.proxy.stop()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m gateway.apps.certify.faulty", description=__doc__.split("\n\n")[0])
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--comp-id", default="ISLD", help="the acceptor's CompID (default ISLD)")
    p.add_argument("--client", action="append", help="accepted client CompIDs (default CERT)")
    p.add_argument("--upstream", type=int, metavar="PORT",
                   help="be a faulty proxy in front of the order-handling acceptor on PORT (application faults)")
    p.add_argument("--fault", action="append", default=[], choices=sorted({**FAULTS, **APP_FAULTS}),
                   help="a fault to inject (repeatable)")
    args = p.parse_args(argv)
    if args.upstream:
        acceptor = FaultyVenue(args.port, args.upstream, set(args.fault))
    else:
        acceptor = FaultyAcceptor(args.port, set(args.fault), args.comp_id, tuple(args.client or ["CERT"]))
    acceptor.start()
    print(f"acceptor {args.comp_id} on 127.0.0.1:{args.port}, faults: {', '.join(sorted(args.fault)) or 'none'}",
          flush=True)
    try:
        fixedge.wait_for_shutdown()
    finally:
        acceptor.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
