"""A FIX 4.4 session over a plain socket, driven by hand (simplefix).

For test clients, benchmarks and fault injection: everything an engine would refuse
to do (wrong sequence numbers, garbled bodies) is possible here. Not for production
order flow: the gateway and the simulator use quickfix.
"""
from __future__ import annotations

import datetime as _dt
import socket
import time
from typing import Callable, Iterable, Sequence

import simplefix

BEGIN_STRING = b"FIX.4.4"
Field = tuple[int, "str | bytes | int | float"]


class ConnectionClosed(Exception):
    """The counterparty closed the connection."""


def utc_now(offset_seconds: float = 0.0) -> bytes:
    now = _dt.datetime.now(_dt.timezone.utc) + _dt.timedelta(seconds=offset_seconds)
    return now.strftime("%Y%m%d-%H:%M:%S.%f")[:-3].encode()


def fields_text(msg: simplefix.FixMessage) -> str:
    """A message as 'tag=value|tag=value' for error messages and logs."""
    return "|".join(f"{t.decode() if isinstance(t, bytes) else t}={v.decode(errors='replace')}"
                    for t, v in msg.pairs)


class RawFixSession:
    def __init__(self, host: str = "127.0.0.1", port: int = 0, sender: str = "CLIENT",
                 target: str = "SERVER", heartbeat: int = 30, timeout: float = 5.0,
                 sock: socket.socket | None = None) -> None:
        self.host, self.port = host, port
        self.sender, self.target = sender.encode(), target.encode()
        self.heartbeat = heartbeat
        self.timeout = timeout
        self.sock = sock
        self.parser = simplefix.FixParser()
        self.next_seq = 1
        self.last_seq_in = 0
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    # -- connection
    def connect(self) -> "RawFixSession":
        self.sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.parser = simplefix.FixParser()
        return self

    def close(self) -> None:
        if self.sock is not None:
            try:
                self.sock.close()
            finally:
                self.sock = None

    def __enter__(self) -> "RawFixSession":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- sending
    def build(self, msg_type: str | bytes, fields: Iterable[Field] = (), seq: int | None = None,
              header: Iterable[Field] = ()) -> simplefix.FixMessage:
        msg = simplefix.FixMessage()
        msg.append_pair(8, BEGIN_STRING, header=True)
        msg.append_pair(35, msg_type, header=True)
        msg.append_pair(49, self.sender, header=True)
        msg.append_pair(56, self.target, header=True)
        if seq is None:
            seq = self.next_seq
            self.next_seq += 1
        msg.append_pair(34, seq, header=True)
        msg.append_pair(52, utc_now(), header=True)
        for tag, value in header:
            msg.append_pair(tag, value, header=True)
        for tag, value in fields:
            msg.append_pair(tag, value)
        return msg

    def send(self, msg_type: str | bytes, fields: Iterable[Field] = (), seq: int | None = None,
             header: Iterable[Field] = ()) -> bytes:
        wire = self.build(msg_type, fields, seq, header).encode()
        self.send_raw(wire)
        return wire

    def send_raw(self, data: bytes) -> None:
        assert self.sock is not None, "not connected"
        self.sock.sendall(data)

    # -- receiving
    def recv(self, timeout: float | None = None) -> simplefix.FixMessage | None:
        """The next message, or None when nothing complete arrives within ``timeout``."""
        assert self.sock is not None, "not connected"
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            msg = self.parser.get_message()
            if msg is not None:
                seq = msg.get(34)
                if seq is not None:
                    self.last_seq_in = int(seq)
                return msg
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            self.sock.settimeout(remaining)
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                return None
            if not data:
                raise ConnectionClosed(f"{self.host}:{self.port} closed the connection")
            self.parser.append_buffer(data)

    def recv_until(self, match: Callable[[simplefix.FixMessage], bool], timeout: float | None = None,
                   answer_test_requests: bool = True) -> simplefix.FixMessage:
        """Skip messages until ``match``; answers TestRequests on the way. Raises TimeoutError."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        seen: list[str] = []
        while True:
            remaining = deadline - time.monotonic()
            msg = self.recv(max(remaining, 0.0)) if remaining > 0 else None
            if msg is None:
                tail = "; ".join(seen[-3:]) or "nothing"
                raise TimeoutError(f"no matching message within the timeout (last seen: {tail})")
            if match(msg):
                return msg
            seen.append(fields_text(msg))
            if answer_test_requests and msg.get(35) == b"1":
                self.send("0", [(112, msg.get(112) or b"")])

    def recv_type(self, msg_type: str | bytes, timeout: float | None = None) -> simplefix.FixMessage:
        want = msg_type.encode() if isinstance(msg_type, str) else msg_type
        return self.recv_until(lambda m: m.get(35) == want, timeout)

    # -- session conveniences
    def logon(self, reset: bool = True, extra: Sequence[Field] = (), timeout: float | None = None) -> simplefix.FixMessage:
        if reset:
            self.next_seq = 1
        fields: list[Field] = [(98, 0), (108, self.heartbeat)]
        if reset:
            fields.append((141, "Y"))
        fields += list(extra)
        self.send("A", fields)
        return self.recv_until(lambda m: m.get(35) in (b"A", b"5"), timeout)

    def logout(self, text: str | None = None, timeout: float = 2.0) -> simplefix.FixMessage | None:
        self.send("5", [(58, text)] if text else [])
        try:
            return self.recv_type("5", timeout)
        except (TimeoutError, ConnectionClosed):
            return None


def accept(listener: socket.socket, sender: str, target: str, timeout: float = 5.0) -> RawFixSession:
    """Accept one connection on ``listener`` as a raw session (for fake counterparties)."""
    listener.settimeout(timeout)
    conn, _ = listener.accept()
    return RawFixSession(sender=sender, target=target, timeout=timeout, sock=conn)
