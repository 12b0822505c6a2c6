"""Latency injection for the quickfix backend: a TCP delay proxy in front of the acceptor.

(The native backend applies the same model on its event loop: ``delayline.py``. The
model itself is ``gateway.core.models.latency.ScheduledJitterLatency``.)

Every chunk read from either side is stamped with its due time (now + one-way delay)
and written when due, so heartbeats, TestRequest answers and orders all see the same
latency. Per connection and direction there is one reader thread and one writer thread;
the writer blocks in Condition.wait(timeout) until the head chunk is due (never a spin:
see the GIL trap in DESIGN.md). Due times are kept monotonic per direction
(due = max(due, previous due)), so chunk order is preserved. Closing either side closes
the other after the pending chunks are flushed.
"""
from __future__ import annotations

import ctypes
import logging
import sys
import socket
import threading
import time
from collections import deque

from gateway.core.models.latency import ScheduledJitterLatency

log = logging.getLogger("sim.proxy")

_PR_SET_TIMERSLACK = 29
# A timed wait oversleeps by the kernel's timer slack (50 us by default) plus the wake-up
# latency; the writer learns the oversleep (EWMA) and wakes that much earlier.
_OVERSLEEP_INIT_S = 60e-6
_OVERSLEEP_ALPHA = 0.1
_OVERSLEEP_MAX_S = 1e-3


def next_oversleep(oversleep: float, late: float | None) -> float:
    """The writer's oversleep estimate after one chunk. ``late``: how late its timed wait woke
    (None: no wait was started because the chunk was due within ``oversleep``, so it went out up
    to ``oversleep`` early). A skipped wait counts as one that woke on time: otherwise, after a
    loaded spell had raised the estimate above the configured delay, no wait would ever start
    again to lower it, and every later chunk would go out undelayed."""
    seen = 0.0 if late is None else min(max(late, 0.0), _OVERSLEEP_MAX_S)
    return oversleep + _OVERSLEEP_ALPHA * (seen - oversleep)


def _tighten_timer_slack() -> None:
    """Ask Linux for 1 ns timer slack on this thread (sub-millisecond delays need it)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_TIMERSLACK, 1, 0, 0, 0)
    except (OSError, AttributeError):
        pass


class LockedLatency:
    """``ScheduledJitterLatency`` shared by the proxy's reader threads: one lock around it
    (the core model is lock-free; only this threaded quickfix path needs one)."""

    def __init__(self, model: ScheduledJitterLatency) -> None:
        self.model = model
        self._lock = threading.Lock()

    def start(self) -> None:
        with self._lock:
            self.model.start()

    def set(self, base_us: float, jitter_us: float | None = None) -> None:
        with self._lock:
            self.model.set(base_us, jitter_us)

    def current(self) -> tuple[float, float]:
        with self._lock:
            return self.model.current()

    def sample(self) -> float:
        with self._lock:
            return self.model.sample()


class _Pipe:
    """One direction of one connection: reader stamps chunks, writer sends them when due."""

    def __init__(self, src: socket.socket, dst: socket.socket, model: "LockedLatency", conn: "_Connection",
                 name: str) -> None:
        self.src, self.dst, self.model, self.conn = src, dst, model, conn
        self.cond = threading.Condition()
        self.queue: deque = deque()
        self.last_due = 0.0
        self.reader = threading.Thread(target=self._read, name=f"{name}-r", daemon=True)
        self.writer = threading.Thread(target=self._write, name=f"{name}-w", daemon=True)

    def start(self) -> None:
        self.writer.start()
        self.reader.start()

    def _read(self) -> None:
        while True:
            try:
                data = self.src.recv(65536)
            except OSError:
                data = b""
            now = time.perf_counter()
            due = max(now + self.model.sample(), self.last_due)
            self.last_due = due
            with self.cond:
                if data and not self.queue and due <= now:
                    # Zero delay and nothing pending: forward here and spare the thread handoff.
                    if not self._forward(data):
                        return
                    continue
                was_empty = not self.queue
                self.queue.append((due, data))
                if was_empty:
                    self.cond.notify()
            if not data:
                return

    def _forward(self, data: bytes) -> bool:
        try:
            self.dst.sendall(data)
            return True
        except OSError:
            self.conn.close()
            return False

    def _write(self) -> None:
        _tighten_timer_slack()
        oversleep = _OVERSLEEP_INIT_S
        while True:
            with self.cond:
                while not self.queue:
                    self.cond.wait()
                due, data = self.queue[0]
                # Later chunks are never due earlier, so only the head matters. Wake
                # ``oversleep`` early; a wait shorter than that is not worth starting.
                waited = False
                while (wait := due - time.perf_counter() - oversleep) > 0:
                    t0 = time.perf_counter()
                    self.cond.wait(wait)
                    oversleep = next_oversleep(oversleep, time.perf_counter() - t0 - wait)
                    waited = True
                if not waited and data and due > time.perf_counter():
                    oversleep = next_oversleep(oversleep, None)
                # Sent under the lock: the reader's inline path must never overtake it.
                if not data or not self._forward(data):
                    break
                self.queue.popleft()
        self.conn.close()


class _Connection:
    def __init__(self, client: socket.socket, server: socket.socket, model: "LockedLatency", name: str,
                 on_close) -> None:
        self.client, self.server = client, server
        self._closed = False
        self._lock = threading.Lock()
        self._on_close = on_close
        self.up = _Pipe(client, server, model, self, f"{name}-up")
        self.down = _Pipe(server, client, model, self, f"{name}-down")

    def start(self) -> None:
        self.up.start()
        self.down.start()

    def close(self) -> None:
        """Shut both sockets: the readers blocked in recv() wake with EOF and end."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        for s in (self.client, self.server):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()
        self._on_close(self)


class DelayProxy:
    """Listens on ``listen_port`` and forwards each connection to ``target_port`` with delay."""

    def __init__(self, listen_port: int, target_port: int, model: "LockedLatency", name: str = "proxy",
                 host: str = "127.0.0.1") -> None:
        self.host, self.listen_port, self.target_port = host, listen_port, target_port
        self.model = model
        self.name = name
        self._listener: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._conns: set[_Connection] = set()
        self._lock = threading.Lock()
        self._stopping = False
        self.connections_total = 0

    def start(self) -> None:
        lst = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        lst.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        lst.bind((self.host, self.listen_port))
        lst.listen(16)
        self._listener = lst
        self.model.start()
        self._thread = threading.Thread(target=self._accept_loop, name=f"{self.name}-accept", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping = True
        if self._listener is not None:
            try:
                self._listener.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self._listener.close()
        with self._lock:
            conns = list(self._conns)
        for c in conns:
            c.close()
        if self._thread is not None:
            self._thread.join(2.0)

    @property
    def active_connections(self) -> int:
        with self._lock:
            return len(self._conns)

    def _accept_loop(self) -> None:
        assert self._listener is not None
        while not self._stopping:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection((self.host, self.target_port), timeout=5.0)
            except OSError as exc:
                log.warning("%s: cannot reach venue port %d: %s", self.name, self.target_port, exc)
                client.close()
                continue
            server.settimeout(None)
            for s in (client, server):
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.connections_total += 1
            conn = _Connection(client, server, self.model, f"{self.name}-{self.connections_total}",
                               self._forget)
            with self._lock:
                self._conns.add(conn)
            conn.start()

    def _forget(self, conn: _Connection) -> None:
        with self._lock:
            self._conns.discard(conn)
