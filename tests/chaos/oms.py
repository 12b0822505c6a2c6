"""A raw OMS client that survives a gateway restart: persisted sequence numbers (no reset
after the first logon), gaps filled by ResendRequest, the gateway's ResendRequests
answered with PossDup resends of our orders, and every report kept with its MsgSeqNum,
PossDup(43) and PossResend(97) flags so the counting side can tell repeats apart.

Single-threaded and non-blocking: ``pump(timeout)`` reads whatever arrived and
dispatches it. Bounded everywhere; only loopback.
"""
from __future__ import annotations

import select
import socket
import time
from typing import Callable, Iterable

import simplefix

from gateway.fix.raw import utc_now

REPORT_TAGS = (11, 41, 37, 17, 150, 39, 14, 151, 6, 31, 32, 38, 44, 54, 55, 58, 97, 43, 434, 102, 30, 100)


class ChaosOms:
    def __init__(self, port: int, sender: str, password: str | None = None, target: str = "FIXGW",
                 heartbeat: int = 30, on_report: Callable[[dict], None] | None = None) -> None:
        self.port, self.sender, self.target = port, sender.encode(), target.encode()
        self.password, self.heartbeat = password, heartbeat
        self.on_report = on_report or (lambda rep: None)
        self.sock: socket.socket | None = None
        self.parser = simplefix.FixParser()
        self.next_seq = 1
        self.expected_in = 1
        self.max_seen = 0
        self.seen: set[int] = set()
        self.sent: dict[int, tuple[str, list, bytes]] = {}     # seq -> (MsgType, fields, SendingTime)
        self.logged_on = False
        self.logons = 0
        self.resend_outstanding = False
        self.counts = {"reports": 0, "possdup_dropped": 0, "resends_answered": 0, "resend_requests_sent": 0,
                       "seq_too_low": 0, "logouts": 0, "rejects": 0}
        self.errors: list[str] = []

    # ------------------------------------------------------------ connection
    @property
    def up(self) -> bool:
        return self.sock is not None and self.logged_on

    def connect(self, timeout: float = 10.0, reset: bool = False) -> bool:
        """Connect and log on (bounded); False when the gateway does not answer in time."""
        self.close()
        try:
            self.sock = socket.create_connection(("127.0.0.1", self.port), timeout=2.0)
        except OSError:
            self.sock = None
            return False
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.setblocking(False)
        self.parser = simplefix.FixParser()
        self.resend_outstanding = False     # a new connection: a gap is asked for again
        fields: list = [(98, 0), (108, self.heartbeat)]
        if reset:
            self.next_seq, self.expected_in, self.max_seen, self.seen = 1, 1, 0, set()
            self.sent.clear()
            fields.append((141, "Y"))
        if self.password:
            fields.append((554, self.password))
        self._send_now("A", fields)
        deadline = time.monotonic() + timeout
        while self.sock is not None and not self.logged_on and time.monotonic() < deadline:
            self.pump(0.05)
        return self.up

    def close(self) -> None:
        if self.sock is not None:
            try:
                self.sock.close()
            except OSError:
                pass
        self.sock = None
        self.logged_on = False

    # ------------------------------------------------------------ sending
    def send(self, msg_type: str, fields: Iterable) -> bool:
        """An application message: numbered and kept for resends even if the socket is gone."""
        if self.sock is None:
            return False
        return self._send_now(msg_type, list(fields), keep=True)

    def _send_now(self, msg_type: str, fields: list, keep: bool = False, seq: int | None = None,
                  poss_dup: bool = False, orig_time: bytes | None = None) -> bool:
        if seq is None:
            seq = self.next_seq
            self.next_seq += 1
        now = utc_now()
        if keep:
            self.sent[seq] = (msg_type, fields, now)
        msg = simplefix.FixMessage()
        msg.append_pair(8, b"FIX.4.4", header=True)
        msg.append_pair(35, msg_type, header=True)
        msg.append_pair(49, self.sender, header=True)
        msg.append_pair(56, self.target, header=True)
        msg.append_pair(34, seq, header=True)
        msg.append_pair(52, now, header=True)
        if poss_dup:
            msg.append_pair(43, "Y", header=True)
            msg.append_pair(122, orig_time or now, header=True)
        for tag, value in fields:
            msg.append_pair(tag, value)
        return self._write(msg.encode())

    def _write(self, data: bytes) -> bool:
        if self.sock is None:
            return False
        view = memoryview(data)
        deadline = time.monotonic() + 5.0
        try:
            while view:
                try:
                    n = self.sock.send(view)
                    view = view[n:]
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise TimeoutError("gateway not reading for 5 s") from None
                    select.select([], [self.sock], [], 0.05)
                    self.pump(0)            # keep reading while the peer's window is full
                    if self.sock is None:
                        return False
        except (OSError, TimeoutError) as exc:
            self.errors.append(f"send: {type(exc).__name__}: {exc}")
            self.close()
            return False
        return True

    # ------------------------------------------------------------ receiving
    def pump(self, timeout: float = 0.0, max_messages: int = 100_000) -> int:
        """Read what arrived within ``timeout`` and dispatch it; returns messages handled."""
        if self.sock is None:
            if timeout:
                time.sleep(timeout)
            return 0
        handled = 0
        try:
            ready, _, _ = select.select([self.sock], [], [], timeout)
            if ready:
                for _ in range(64):
                    try:
                        data = self.sock.recv(1 << 16)
                    except BlockingIOError:
                        break
                    if not data:
                        self.close()
                        break
                    self.parser.append_buffer(data)
                    if len(data) < (1 << 16):
                        break
        except OSError:
            self.close()
        while handled < max_messages:
            msg = self.parser.get_message()
            if msg is None:
                break
            handled += 1
            try:
                self._dispatch(msg)
            except Exception as exc:  # noqa: BLE001 - a test client: record, carry on
                self.errors.append(f"dispatch: {type(exc).__name__}: {exc}")
        return handled

    def _mark_seen(self, seq: int) -> None:
        self.seen.add(seq)
        self.max_seen = max(self.max_seen, seq)
        while self.expected_in in self.seen:
            self.seen.discard(self.expected_in)
            self.expected_in += 1
        if self.expected_in > self.max_seen:
            self.resend_outstanding = False

    def _dispatch(self, msg: simplefix.FixMessage) -> None:
        mtype = msg.get(35)
        seq = int(msg.get(34) or 0)
        poss_dup = msg.get(43) == b"Y"
        if mtype == b"4":                                  # SequenceReset (GapFill or Reset)
            new_seq = int(msg.get(36) or 0)
            if msg.get(123) == b"Y":
                for s in range(max(seq, self.expected_in), new_seq):
                    self._mark_seen(s)
            else:
                for s in range(self.expected_in, new_seq):
                    self._mark_seen(s)
            return
        duplicate = seq < self.expected_in or seq in self.seen
        if duplicate:
            if poss_dup:
                self.counts["possdup_dropped"] += 1     # a session-level repeat we already have
                return
            self.counts["seq_too_low"] += 1
            self.errors.append(f"MsgSeqNum {seq} too low without PossDup (expected {self.expected_in}): "
                               f"35={mtype!r} 11={msg.get(11)!r}")
            if mtype not in (b"8", b"9"):
                return
        else:
            self._mark_seen(seq)
        if self.expected_in <= self.max_seen and not self.resend_outstanding:
            self.resend_outstanding = True
            self.counts["resend_requests_sent"] += 1
            self._send_now("2", [(7, self.expected_in), (16, 0)])
        if mtype == b"A":
            self.logged_on = True
            self.logons += 1
        elif mtype == b"1":
            self._send_now("0", [(112, msg.get(112) or b"")])
        elif mtype == b"2":
            self._answer_resend(int(msg.get(7)), int(msg.get(16) or 0))
        elif mtype == b"5":
            self.counts["logouts"] += 1
            self.errors.append(f"logout: {msg.get(58)!r}")
            self.close()
        elif mtype == b"3":
            self.counts["rejects"] += 1
            self.errors.append(f"session reject: 45={msg.get(45)!r} 58={msg.get(58)!r}")
        elif mtype in (b"8", b"9", b"j"):
            rep = {t: msg.get(t) for t in REPORT_TAGS}
            rep[35], rep[34], rep["dup_seq"] = mtype, seq, duplicate
            rep[43] = msg.get(43)
            self.counts["reports"] += 1
            self.on_report(rep)

    def _answer_resend(self, begin: int, end: int) -> None:
        last = self.next_seq - 1 if end == 0 else min(end, self.next_seq - 1)
        gap_start = None
        for s in range(begin, last + 1):
            kept = self.sent.get(s)
            if kept is None:
                gap_start = s if gap_start is None else gap_start
                continue
            if gap_start is not None:
                self._send_now("4", [(123, "Y"), (36, s)], seq=gap_start, poss_dup=True)
                gap_start = None
            mtype, fields, orig = kept
            self._send_now(mtype, fields, seq=s, poss_dup=True, orig_time=orig)
            self.counts["resends_answered"] += 1
        if gap_start is not None:
            self._send_now("4", [(123, "Y"), (36, last + 1)], seq=gap_start, poss_dup=True)
