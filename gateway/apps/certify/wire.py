"""Raw FIX over a socket for the certifier: whole messages as bytes, never parsed away.

The certifier has to see exactly what the counterparty sent (BodyLength, CheckSum, field
order), so messages are framed here from BeginString/BodyLength/CheckSum and kept as raw
bytes. Every wait is a blocking socket read with a deadline (no polling loops).
"""
from __future__ import annotations

import socket
import time


class FramingError(Exception):
    """The counterparty sent bytes that are not a FIX message."""


class ConnectionClosed(Exception):
    """The counterparty closed the connection."""


class Framer:
    """Cuts a byte stream into FIX messages: 8=...^9=N^<N bytes>10=xxx^."""

    def __init__(self) -> None:
        self.buf = bytearray()

    def feed(self, data: bytes) -> None:
        self.buf += data

    def next_message(self) -> bytes | None:
        buf = self.buf
        if not buf:
            return None
        if not buf.startswith(b"8="):
            if len(buf) < 2 and b"8".startswith(bytes(buf)):
                return None
            raise FramingError(f"data does not start with BeginString: {bytes(buf[:60])!r}")
        first = buf.find(b"\x01")
        if first < 0:
            return self._need_more()
        if not buf.startswith(b"9=", first + 1):
            if len(buf) < first + 3:
                return None
            raise FramingError(f"second field is not BodyLength: {bytes(buf[:60])!r}")
        second = buf.find(b"\x01", first + 1)
        if second < 0:
            return self._need_more()
        length_text = bytes(buf[first + 3:second])
        if not length_text.isdigit():
            raise FramingError(f"BodyLength is not a number: {length_text!r}")
        end_body = second + 1 + int(length_text)
        end = buf.find(b"\x01", end_body)
        if end < 0:
            return self._need_more(end_body + 7)
        if not buf.startswith(b"10=", end_body):
            raise FramingError(f"no CheckSum where BodyLength={int(length_text)} says the body ends: "
                               f"{bytes(buf[:end + 1])!r}")
        msg = bytes(buf[:end + 1])
        del buf[:end + 1]
        return msg

    def _need_more(self, bound: int = 64) -> None:
        if len(self.buf) > max(bound, 1 << 20):
            raise FramingError("no complete message in 1 MiB of data")
        return None


class Connection:
    """One TCP connection to the counterparty (we connected, or it connected to our Listener)."""

    def __init__(self, host: str, port: int, connect_timeout: float = 5.0,
                 sock: socket.socket | None = None) -> None:
        self.host, self.port = host, port
        self.framer = Framer()
        self.sock = sock or socket.create_connection((host, port), timeout=connect_timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.peer_closed = False

    def send(self, data: bytes) -> None:
        if self.sock is None:
            raise ConnectionClosed("connection already closed")
        try:
            self.sock.sendall(data)
        except OSError as exc:  # broken pipe, reset: the peer is gone
            raise ConnectionClosed(f"send failed: {exc.strerror or exc}") from None

    def receive(self, timeout: float) -> bytes | None:
        """The next whole message, or None when none arrives within ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            msg = self.framer.next_message()
            if msg is not None:
                return msg
            if self.peer_closed:
                raise ConnectionClosed("counterparty closed the connection")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            self._read(remaining)

    def wait_closed(self, timeout: float) -> bytes | None:
        """Wait for the counterparty to close; returns the first message if one arrives instead.

        Raises TimeoutError when the connection stays open and silent.
        """
        deadline = time.monotonic() + timeout
        while True:
            msg = self.framer.next_message()
            if msg is not None:
                return msg
            if self.peer_closed:
                if self.framer.buf:
                    return bytes(self.framer.buf)
                return None
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError
            self._read(remaining)

    def _read(self, timeout: float) -> None:
        assert self.sock is not None
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            return
        except OSError:  # reset by peer counts as a close
            data = b""
        if data:
            self.framer.feed(data)
        else:
            self.peer_closed = True

    def close(self) -> None:
        if self.sock is not None:
            try:
                self.sock.close()
            finally:
                self.sock = None


class Listener:
    """Our listening socket when we certify an initiator: bound once for the whole run, so
    the initiator's reconnects between scenarios land in the backlog, not on a closed port."""

    def __init__(self, host: str, port: int) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self.sock.bind((host, port))
            self.sock.listen(8)
        except OSError:
            self.sock.close()
            raise
        self.host, self.port = self.sock.getsockname()[:2]

    def accept(self, timeout: float) -> Connection | None:
        """The next connection from the initiator, or None after ``timeout`` seconds."""
        self.sock.settimeout(timeout)
        try:
            sock, (host, port) = self.sock.accept()
        except socket.timeout:
            return None
        sock.settimeout(None)
        return Connection(host, port, sock=sock)

    def close(self) -> None:
        self.sock.close()
