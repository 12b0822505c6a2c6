"""A venue that holds its answers: a raw FIX acceptor (one thread, loopback) that keeps
every NewOrderSingle unanswered for ``hold_s`` and records how many it held at once,
so a test can see from the venue's side how many orders were in flight to it. Each
order is then acknowledged and ended (IOC: canceled). Answers TestRequests (the
gateway's probes), rejects market data requests, answers status requests "unknown".
"""
from __future__ import annotations

import socket
import threading
import time

from gateway.fix.raw import ConnectionClosed, accept, utc_now


class HoldingVenue:
    def __init__(self, name: str, port: int, hold_s: float = 0.01) -> None:
        self.name, self.port, self.hold_s = name, port, hold_s
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", port))
        self.listener.listen(4)
        self.max_held = 0
        self.orders = 0
        self.ids: list[bytes] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"fake-{name}", daemon=True)

    def start(self) -> "HoldingVenue":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.listener.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                s = accept(self.listener, self.name, "FIXGW", timeout=0.5)
            except OSError:
                continue
            try:
                self._serve(s)
            except (ConnectionClosed, OSError):
                pass
            finally:
                s.close()

    def _serve(self, s) -> None:
        held: list[tuple[float, object]] = []
        while not self._stop.is_set():
            msg = s.recv(0.002)
            now = time.monotonic()
            if msg is not None:
                t = msg.get(35)
                if t == b"A":
                    s.next_seq = 1 if msg.get(141) == b"Y" else s.next_seq
                    s.send("A", [(98, 0), (108, int(msg.get(108) or 30))])
                elif t == b"1":
                    s.send("0", [(112, msg.get(112) or b"")])
                elif t == b"2":
                    s.send("4", [(123, "Y"), (36, s.next_seq)], seq=int(msg.get(7)))
                elif t == b"V":
                    s.send("Y", [(262, msg.get(262)), (281, "0"), (58, "no market data here")])
                elif t == b"D":
                    self.orders += 1
                    self.ids.append(msg.get(11))
                    held.append((now, msg))
                    self.max_held = max(self.max_held, len(held))
                elif t == b"H":
                    s.send("8", [(37, "NONE"), (11, msg.get(11)), (17, f"S{now}"), (150, "I"), (39, "8"),
                                 (55, msg.get(55)), (54, msg.get(54)), (151, 0), (14, 0), (6, 0),
                                 (58, "unknown order")])
                elif t == b"5":
                    s.send("5", [])
                    return
            while held and now - held[0][0] >= self.hold_s:
                _, o = held.pop(0)
                self._answer(s, o)

    def _answer(self, s, o) -> None:
        base = [(37, b"V" + o.get(11)), (11, o.get(11)), (55, o.get(55)), (54, o.get(54)), (38, o.get(38)),
                (40, o.get(40)), (44, o.get(44))]
        s.send("8", base[:2] + [(17, b"E0-" + o.get(11)), (150, "0"), (39, "0")] + base[2:]
               + [(151, o.get(38)), (14, 0), (6, 0), (60, utc_now())])
        s.send("8", base[:2] + [(17, b"E1-" + o.get(11)), (150, "4"), (39, "4")] + base[2:]
               + [(151, 0), (14, 0), (6, 0), (60, utc_now())])
