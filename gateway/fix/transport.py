"""asyncio transport for our sans-IO FIX ``Session``: acceptor, initiator, TLS, limits.

One ``NativeEngine`` per role drives every configured session on one asyncio loop:

    socket bytes -> FixProtocol.data_received -> Session.receive_data
                 -> Session.next_event() until NEED_DATA -> Application callbacks
                 -> Session.data_to_send() -> NativeSession.write_out -> transport.write
                    (bounded) -> socket
    one loop timer per session at Session.next_deadline() -> Session.on_timer()

Sends made by an application callback are written when the dispatch of that input ends,
one write per session written to (``SendBatch``, shared by every engine on the thread's
loop); a send outside any dispatch is written at once. Then the inbound target number is
committed to the store. ``write_out(data)`` is the one place bytes reach the socket: a
subclass that delays them (the simulator's injected latency) calls it when they are due.

Invariants:
- Nothing here blocks: no thread, no blocking socket call, no sleep outside coroutines.
- Outbound memory per connection is bounded: above ``outbound_high_water`` we stop
  pulling bytes from the session (resends stay lazy in the store) except one pull per
  send; above ``max_outbound_bytes`` buffered, or paused longer than
  ``stall_timeout_s``, the peer is disconnected with a logged reason.
- Acceptor, before logon: at most ``max_pre_logon_connections`` sockets, each with at
  most ``max_pre_logon_bytes`` buffered and ``pre_logon_timeout_s`` to send a complete
  Logon; junk, an oversized BodyLength, a non-Logon, unknown CompIDs -> log + close.
  A Logon for a session that already has a connection is dropped silently (no FIX
  answer: a Reject or Logout would consume a sequence number), only logged.
- The acceptor binds only its configured host; every socket gets TCP_NODELAY.
- An exception from the Session or the Application never escapes a loop callback:
  the Session's is logged and drops that connection; the Application's is answered
  (see ``engine.py``).
"""
from __future__ import annotations

import asyncio
import logging
import re
import socket
import ssl
import threading
import time
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Mapping, Sequence

from gateway.common.clock import MONOTONIC, Clock
from gateway.fix.engine import (ErrorCounter, SessionHandle, answer_app_error, body_text, call_app,
                                dispatch_app_message, normalize_hosts)

log = logging.getLogger("gateway.fix.transport")


def new_event_loop() -> asyncio.AbstractEventLoop:
    """uvloop when installed (about 20% less latency on loopback), else asyncio's loop."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


# ---------------------------------------------------------------- configuration

@dataclass(frozen=True)
class TlsConfig:
    """TLS for either role. Files are PEM. ``ca_file``: whom we trust (the peer's CA);
    ``require_client_cert``: acceptor asks for and verifies a client certificate;
    ``server_hostname``: the name the initiator checks (default: the host it dials)."""

    cert_file: str | None = None
    key_file: str | None = None
    ca_file: str | None = None
    require_client_cert: bool = False
    server_hostname: str | None = None
    verify: bool = True

    def server_context(self) -> ssl.SSLContext:
        if not self.cert_file:
            raise ValueError("a TLS acceptor needs cert_file (and key_file)")
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(self.cert_file, self.key_file)
        if self.ca_file:
            ctx.load_verify_locations(self.ca_file)
        if self.require_client_cert:
            ctx.verify_mode = ssl.CERT_REQUIRED
        return ctx

    def client_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=self.ca_file)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        if self.cert_file:
            ctx.load_cert_chain(self.cert_file, self.key_file)
        if not self.verify:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        return ctx


def _ssl_context(tls: TlsConfig | ssl.SSLContext | None, role: str) -> ssl.SSLContext | None:
    if tls is None or isinstance(tls, ssl.SSLContext):
        return tls
    return tls.server_context() if role == "acceptor" else tls.client_context()


@dataclass(frozen=True)
class Limits:
    """Per-connection limits; every field can be passed to ``create_engine`` by name."""

    max_outbound_bytes: int = 4 << 20        # buffered unsent bytes -> disconnect
    outbound_high_water: int = 256 << 10     # stop pulling (resend) bytes from the session
    stall_timeout_s: float = 30.0            # writes paused this long -> disconnect
    max_pre_logon_bytes: int = 64 << 10      # a Logon must fit in this
    pre_logon_timeout_s: float = 10.0        # a complete Logon within this after connect
    max_pre_logon_connections: int = 1000    # more unauthenticated sockets -> refused at once
    max_events_per_pump: int = 2000          # then yield to the loop (fairness between sessions)
    backoff_initial_s: float = 0.25          # initiator reconnect delay, doubled per failure
    backoff_max_s: float = 30.0
    connect_timeout_s: float = 5.0
    close_timeout_s: float = 2.0             # a graceful close that does not finish -> abort
    log_max_bytes: int = 256 << 20           # message/event log rotated past this size (and daily)
    log_keep: int = 30                       # rotated log files kept per session and kind
    store_fsync: str = "never"               # FileStore: "never" | "interval" | "always" (store.py says
                                             # what each survives: SIGKILL vs power loss)
    warm_probes: bool = False                # True: NativeSession.warm_up runs before each probe (see there)

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> "Limits":
        names = {f.name for f in fields(cls)}
        unknown = set(options) - names
        if unknown:
            raise TypeError(f"unknown engine options {sorted(unknown)}; known: {sorted(names)}")
        return cls(**options)


# ---------------------------------------------------------------- pre-logon framing

_BEGIN = b"8=FIX"


def first_frame(buf: bytes | bytearray, max_size: int) -> int | str | None:
    """Where the first FIX frame in ``buf`` ends: an offset, None (need more bytes), or why
    the bytes cannot be a Logon (text). Reads only the BeginString and BodyLength, so a
    huge declared BodyLength is refused before anything is buffered for it."""
    n = len(buf)
    if bytes(buf[:5]) != _BEGIN[:min(n, 5)]:
        return "junk before logon (no 8=FIX)"
    soh = buf.find(b"\x01", 0, 32)
    if soh < 0:
        return None if n < 32 else "BeginString too long"
    if n < soh + 3:
        return None
    if bytes(buf[soh + 1:soh + 3]) != b"9=":
        return "BodyLength is not the second field"
    end9 = buf.find(b"\x01", soh + 3, soh + 3 + 11)
    if end9 < 0:
        return None if n < soh + 3 + 11 else "BodyLength too long"
    digits = bytes(buf[soh + 3:end9])
    if not digits.isdigit():
        return "BodyLength is not a number"
    total = end9 + 1 + int(digits) + 7          # + "10=nnn\x01"
    if total > max_size:
        return f"BodyLength {int(digits)} over the pre-logon limit of {max_size} bytes"
    return total if n >= total else None


# ---------------------------------------------------------------- logs

_NEXT_FRAME = b"\x01" + _BEGIN     # where one frame of a chunk ends and the next begins


class SessionLog:
    """Per-session files, appended: ``<key>.messages.log`` (every frame in and out, one a
    line, SOH kept as quickfix does) and ``<key>.events.log`` (state changes).

    Rotation: when the UTC day changes or a file passes ``max_bytes``, it is renamed to
    ``<key>.messages.<YYYYMMDD-HHMMSS>.log`` (the UTC time of the rotation; ``.events.``
    likewise) and a new file is started; only the newest ``keep`` rotated files of each kind
    are kept (0: keep all). Checked on every write from counters, no stat() per message."""

    def __init__(self, directory: str | Path, key: str, max_bytes: int = 256 << 20, keep: int = 30,
                 wall: Any = time.time) -> None:
        self.base = Path(directory)
        self.base.mkdir(parents=True, exist_ok=True)
        self.name = re.sub(r"[^A-Za-z0-9_.-]", "_", key)
        self.max_bytes, self.keep, self._wall = max_bytes, keep, wall
        # Sizes counted as we write (tell() costs a syscall, and a text file's much more).
        self._sizes = {"messages": 0, "events": 0}
        self._messages = self._open("messages", "ab", 1 << 16)
        self._events = self._open("events", "a", 1)
        self._day = int(wall() // 86400)
        self._second = -1                 # the whole second _second_text spells
        self._second_text = b""
        self.rotations = 0

    def _path(self, kind: str) -> Path:
        return self.base / f"{self.name}.{kind}.log"

    def _open(self, kind: str, mode: str, buffering: int):
        f = open(self._path(kind), mode, buffering=buffering, **({} if "b" in mode else {"encoding": "utf-8"}))
        self._sizes[kind] = f.seek(0, 2)
        return f

    def _maybe_rotate(self, now: float) -> None:
        sizes = self._sizes
        if now // 86400 == self._day and sizes["messages"] < self.max_bytes and sizes["events"] < self.max_bytes:
            return
        self._day = int(now // 86400)
        self.rotate(now)

    def rotate(self, now: float | None = None) -> None:
        """Start new files now (the old ones renamed with the time, the oldest beyond ``keep`` removed)."""
        now = self._wall() if now is None else now
        suffix = time.strftime("%Y%m%d-%H%M%S", time.gmtime(now))
        for kind, attr, mode, buffering in (("messages", "_messages", "ab", 1 << 16), ("events", "_events", "a", 1)):
            f = getattr(self, attr)
            f.close()
            target = self.base / f"{self.name}.{kind}.{suffix}.log"
            n = 1
            while target.exists() and n < 1000:      # two rotations in one second
                target = self.base / f"{self.name}.{kind}.{suffix}.{n}.log"
                n += 1
            try:
                self._path(kind).rename(target)
            except OSError:
                log.exception("%s: rotating %s", self.name, kind)
            setattr(self, attr, self._open(kind, mode, buffering))
            self._prune(kind)
        self.rotations += 1

    def _prune(self, kind: str) -> None:
        if self.keep <= 0:
            return
        old = sorted(self.base.glob(f"{self.name}.{kind}.2*.log"))
        for path in old[:-self.keep]:
            try:
                path.unlink()
            except OSError:
                pass

    def wire(self, direction: bytes, data: bytes) -> None:
        """Log a chunk as one line per frame: ``<stamp> <direction> <frame>``. A chunk of
        several frames (a batch) is one write: the line break and the next line's prefix go in
        before every BeginString that follows a SOH, by one C-speed ``bytes.replace`` (no
        split, no loop per frame). A received chunk that ends inside a frame (TCP cuts where
        it likes) logs each piece on its own line."""
        now = self._wall()
        self._maybe_rotate(now)
        second = int(now)
        if second != self._second:        # strftime once a second, not once a message
            self._second, self._second_text = second, _stamp(second)[:-7].encode()
        prefix = b"%s.%06d %s " % (self._second_text, int(now % 1 * 1e6), direction)
        self._sizes["messages"] += self._messages.write(
            b"%s%s\n" % (prefix, data.replace(_NEXT_FRAME, b"\x01\n" + prefix + _BEGIN)))

    def event(self, text: str) -> None:
        now = self._wall()
        self._maybe_rotate(now)
        line = f"{_stamp(now)} {text}\n"
        self._events.write(line)
        self._sizes["events"] += len(line.encode())

    def flush(self) -> None:
        self._messages.flush()

    def close(self) -> None:
        for f in (self._messages, self._events):
            try:
                f.close()
            except OSError:
                pass


def _stamp(now: float | None = None) -> str:
    now = time.time() if now is None else now
    return time.strftime("%Y%m%d-%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1e6):06d}"


def _set_nodelay(transport: asyncio.BaseTransport) -> None:
    sock = transport.get_extra_info("socket")
    if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:   # already closed by the peer: harmless
            pass


# ---------------------------------------------------------------- one connection

class FixProtocol(asyncio.Protocol):
    """One socket. Acceptor side starts unrouted (pre-logon) until its first Logon names
    a configured session; initiator side is bound to its session from the start."""

    def __init__(self, engine: "NativeEngine", session: "NativeSession | None") -> None:
        self.engine = engine
        self.session = session
        self.transport: asyncio.Transport | None = None
        self.peer = "?"
        self.paused = False
        self.closing = False
        self.close_reason = ""
        self.pre_buf = bytearray()
        self._pre_timer: asyncio.TimerHandle | None = None
        self.closed: asyncio.Future = engine.loop.create_future()

    # -- asyncio callbacks
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport   # type: ignore[assignment]
        _set_nodelay(transport)
        peer = transport.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if peer else "?"
        transport.set_write_buffer_limits(high=self.engine.limits.outbound_high_water)  # type: ignore[attr-defined]
        if self.session is not None:
            self.session.attach(self)
        else:
            self.engine.pre_logon_opened(self)

    def data_received(self, data: bytes) -> None:
        if self.closing:
            return
        if self.session is not None:
            self.session.receive(data)
        else:
            self._pre_logon_data(data)

    def eof_received(self) -> bool:
        if self.session is not None and not self.closing:
            self.session.receive(b"")
        return False   # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        if self._pre_timer is not None:
            self._pre_timer.cancel()
        if self.session is not None:
            self.session.detach(self, self.close_reason or (f"connection lost: {exc}" if exc else "peer closed"))
        else:
            self.engine.pre_logon_closed(self)
        if not self.closed.done():
            self.closed.set_result(None)

    def pause_writing(self) -> None:
        self.paused = True
        since = time.monotonic()
        self._paused_since = since
        self.engine.loop.call_later(self.engine.limits.stall_timeout_s, self._check_stall, since)

    def resume_writing(self) -> None:
        self.paused = False
        if self.session is not None and not self.closing:
            self.session.flush()

    # -- closing
    def close(self, reason: str, *, abort: bool = False, quiet: bool = False) -> None:
        """Close once, with a reason in the log. ``abort``: drop unsent bytes (a peer that
        does not read would keep a graceful close waiting forever)."""
        if self.closing or self.transport is None:
            return
        self.closing = True
        self.close_reason = reason
        who = self.session.key if self.session is not None else "pre-logon"
        (log.info if quiet else log.warning)("%s %s: disconnect: %s", who, self.peer, reason)
        if abort:
            self.transport.abort()
            return
        self.transport.close()
        self.engine.loop.call_later(self.engine.limits.close_timeout_s, self._abort_if_open)

    def _abort_if_open(self) -> None:
        if not self.closed.done() and self.transport is not None:
            self.transport.abort()

    def _check_stall(self, since: float) -> None:
        if self.paused and getattr(self, "_paused_since", None) == since and not self.closing:
            size = self.transport.get_write_buffer_size() if self.transport else 0
            self.close(f"peer stopped reading: {size} bytes unsent for "
                       f"{self.engine.limits.stall_timeout_s:g} s", abort=True)

    # -- pre-logon (acceptor)
    def start_logon_timer(self) -> None:
        self._pre_timer = self.engine.loop.call_later(self.engine.limits.pre_logon_timeout_s,
                                                      self._pre_logon_timeout)

    def _pre_logon_timeout(self) -> None:
        if self.session is None:
            self.close(f"no Logon within {self.engine.limits.pre_logon_timeout_s:g} s", abort=True)

    def _pre_logon_data(self, data: bytes) -> None:
        limit = self.engine.limits.max_pre_logon_bytes
        self.pre_buf += data
        end = first_frame(self.pre_buf, limit)
        if isinstance(end, str):
            self.close(end, abort=True)
        elif end is None:
            if len(self.pre_buf) > limit:    # cannot happen with a sane first_frame; belt and braces
                self.close("pre-logon buffer over limit", abort=True)
        else:
            self.engine.route_logon(self, bytes(self.pre_buf[:end]))

    def hand_over(self, session: "NativeSession") -> None:
        """Routed: the session takes this socket and every byte received so far."""
        if self._pre_timer is not None:
            self._pre_timer.cancel()
            self._pre_timer = None
        buffered, self.pre_buf = bytes(self.pre_buf), bytearray()
        self.session = session
        session.attach(self)
        session.receive(buffered)


# ---------------------------------------------------------------- writes batched per input

class SendBatch:
    """Sends made while input is dispatched wait for the dispatch to end, then each session
    written to makes one socket write: a burst of orders from one received chunk is one
    write per session, not one per order. Shared by every engine driven by one thread's
    loop (the gateway's OMS acceptor and venue initiator are two engines): an order read on
    one and sent on the other is batched too. Nothing waits for a later loop iteration:
    the writes happen before the callback that read the input returns."""

    __slots__ = ("depth", "dirty")

    def __init__(self) -> None:
        self.depth = 0                          # > 0 while some session's events are dispatched
        self.dirty: set[NativeSession] = set()  # sessions sent on during that dispatch

    def flush_dirty(self) -> None:
        dirty, self.dirty = self.dirty, set()
        for ns in dirty:
            ns.flush()
            ns._schedule_timer()


_THREAD = threading.local()


def loop_batch() -> SendBatch:
    """This thread's batch: one loop runs per thread at a time, and a dispatch begins and
    ends within one of its callbacks, so the batch is empty between callbacks."""
    batch = getattr(_THREAD, "batch", None)
    if batch is None:
        batch = _THREAD.batch = SendBatch()
    return batch


# ---------------------------------------------------------------- one configured session

_SENDABLE = frozenset(("ACTIVE", "RESENDING"))   # Session states that accept send()
WARM_IDLE_S = 0.002     # NativeSession.warm_up only after this long without traffic on the session

class NativeSession(SessionHandle):
    """A configured session: our sans-IO ``Session`` plus its current connection, its
    timer and its logs. Survives reconnects (the Session and its store persist)."""

    def __init__(self, engine: "NativeEngine", settings: Any, session: Any, store: Any,
                 slog: SessionLog | None) -> None:
        self.engine = engine
        self.settings = settings
        self.session = session
        self.store = store
        self.key = settings.key
        self.sender_comp_id = settings.sender_comp_id
        self.target_comp_id = settings.target_comp_id
        self.conn: FixProtocol | None = None
        self.slog = slog
        self._logged_on = False
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._pumping = False
        self.last_disconnect = ""
        self.logout_received = False
        self.counters = {"connects": 0, "logons": 0, "bytes_in": 0, "bytes_out": 0,
                         "app_in": 0, "disconnects": 0, "messages_in": 0, "messages_out": 0,
                         "connect_attempts": 0, "connect_failures": 0}
        # Wall-clock times (UTC epoch s) for status pages; None until it happens.
        self.times: dict[str, float | None] = dict.fromkeys(
            ("last_logon_at", "last_received_at", "last_sent_at", "last_heartbeat_at", "last_disconnect_at"))
        self.link_state = ""              # the initiator's last logged link state (connect/back-off)
        self.logged_on_event = asyncio.Event()
        # Initiator: cleared by an operator's logout, the session stays down until set() again.
        self.enabled = asyncio.Event()
        self.enabled.set()
        self._sched_handle: asyncio.TimerHandle | None = None
        self.dictionary: Any = None       # the Session's Dictionary (set by NativeEngine._make_session)
        self._twin: Any = None            # warm_up's throwaway Session; False: warm-up off

    # -- the session schedule (settings.schedule): a loop timer at each boundary
    def arm_schedule(self) -> None:
        """Call ``Session.check_schedule`` at the schedule's next boundary (logout at the end,
        store reset at a new start), then re-arm. At most an hour per sleep, so a wall clock
        that jumps is noticed."""
        change = self.session.next_schedule_change()
        if change is None or self.engine._stopping:
            return
        delay = min(max(change - self.engine.wall(), 0.0) + 0.001, 3600.0)
        self._sched_handle = self.engine.loop.call_later(delay, self._on_schedule)

    def _on_schedule(self) -> None:
        self._sched_handle = None
        before = self.session.schedule_resets
        self._guard(self.session.check_schedule)
        if self.session.schedule_resets != before:
            log.info("%s: new session instance: sequence numbers reset to 1", self.key)
            self.event("new session instance: store reset")
        self.pump()
        self.arm_schedule()

    # -- SessionHandle
    @property
    def logged_on(self) -> bool:
        return self._logged_on

    def _sendable(self) -> bool:
        # LOGOUT_SENT counts as logged on for the session, but it takes no new messages.
        return self._logged_on and self.conn is not None and self.session.state in _SENDABLE

    def send(self, msg_type: str, body: str | Sequence[tuple[int, Any]], *, extra_header: str = "") -> bool:
        session = self.session
        # _sendable() inlined: this is the order path.
        if not (self._logged_on and self.conn is not None and session.state in _SENDABLE):
            return False
        session.send(msg_type, body if body.__class__ is str else body_text(body), extra_header=extra_header)
        batch = self.engine.batch          # _flush_soon() inlined
        if batch.depth:
            batch.dirty.add(self)
        else:
            self.flush()
        return True

    def send_test_request(self, test_req_id: str) -> bool:
        if not self._sendable():
            return False
        self.session.send_test_request(test_req_id)
        self._flush_soon()
        return True

    def _flush_soon(self) -> None:
        """Inside a pump (an application callback): write when the pump ends, so a burst of
        sends from one received chunk is one write; otherwise write now."""
        batch = self.engine.batch
        if batch.depth:
            batch.dirty.add(self)
        else:
            self.flush()

    def logout(self, text: str = "") -> None:
        if self.conn is not None:
            self.session.logout(text)
            self.pump()

    @property
    def next_sender_seq(self) -> int | None:
        return self.session.next_sender_seq

    @property
    def next_target_seq(self) -> int | None:
        return self.session.next_target_seq

    def status(self) -> dict:
        """JSON-able: state, numbers, counters, link state, and times as UTC ISO 8601 (or None)."""
        from gateway.fix.schedule import utc_iso
        times = {k: (utc_iso(v) if v is not None else None) for k, v in self.times.items()}
        return {"key": self.key, "logged_on": self._logged_on, "state": str(self.session.state),
                "peer": self.conn.peer if self.conn else None,
                "next_sender_seq": self.next_sender_seq, "next_target_seq": self.next_target_seq,
                "last_disconnect": self.last_disconnect, "link_state": self.link_state, **times,
                **self.counters,
                **({"schedule": self.settings.schedule.describe(), "in_schedule": self.session.in_schedule()}
                   if self.settings.schedule is not None else {})}

    # -- a lone probe on warm caches (issue 12: probes that measure the venue, not us)
    def warm_up(self) -> None:
        """Run the code of a probe's send and receive path once, on a throwaway twin of this
        session, just before a latency probe is decided (``MarketState._probe`` calls it).

        Why: a probe goes out alone every few tens of ms; in between, other processes evict
        our code and data from the CPU caches, and the probe's own path (encode a TestRequest,
        parse, validate and sequence-check the Heartbeat) runs many times slower than warm.
        Measured on the 2-core VM: our floor per probe p50 378 -> 248 us, rtt 824 -> 674 us
        (docs/operations.md, "Latency probes"), for ~260 us of CPU spent here per probe,
        before the probe's "decided" stamp.
        The twin is a second sans-IO ``Session`` with the same settings and Dictionary, a
        ``MemoryStore`` that keeps no messages, no schedule, no socket and no application: it
        sends a TestRequest into nothing and is fed the Heartbeat a venue would answer. The
        real session, its store, its counters and the wire are untouched. Any failure turns it
        off for this session (logged once). Off unless ``Limits.warm_probes``: it does not
        change the venue's part the router ranks by, and it holds the loop (an order arriving
        then waits). Skipped when the session sent or received within ``WARM_IDLE_S``: a busy
        session's code is warm already, and a busy loop is where an extra ~260 us before a
        probe would delay orders."""
        twin = self._twin
        if twin is False:
            return
        session = self.session
        if self.engine.clock.now() - max(session.last_received_at, session.last_sent_at) < WARM_IDLE_S:
            return          # traffic within the last ms ran this code: warm already, no stall added
        try:
            if twin is None:
                if not self.engine.limits.warm_probes:
                    self._twin = False
                    return
                twin = self._twin = self._make_twin()
            twin.send_test_request("PRB-WARM-0")
            twin.data_to_send()
            self._feed_twin(twin, "0", "112=PRB-WARM-0\x01")
        except Exception:  # noqa: BLE001 - a warm-up must never touch the real session
            log.warning("%s: probe warm-up failed; off for this session", self.key, exc_info=True)
            self._twin = False

    def _make_twin(self) -> Any:
        from gateway.fix.session import Session
        from gateway.fix.store import MemoryStore
        settings = self.settings.model_copy(update={"persist_messages": False, "schedule": None})
        twin = Session(settings, MemoryStore(), self.dictionary, clock=self.engine.clock, wall=self.engine.wall)
        twin.connection_made()
        twin.data_to_send()
        self._feed_twin(twin, "A", f"98=0\x01108={settings.heartbeat_s}\x01")
        twin.data_to_send()
        if not twin.logged_on:
            raise RuntimeError(f"the warm-up twin did not log on ({twin.state})")
        return twin

    def _feed_twin(self, twin: Any, msg_type: str, body: str) -> None:
        """The twin's peer: one message in, its events drained (and dropped)."""
        from gateway.fix.codec import encode, utc_timestamp
        s = twin.settings
        header = (f"34={twin.next_target_seq}\x0149={s.target_comp_id}\x0152={utc_timestamp(self.engine.wall())}"
                  f"\x0156={s.sender_comp_id}\x01")
        twin.receive_data(encode(s.begin_string, msg_type, header, body))
        need_data = self.engine.NEED_DATA
        for _ in range(8):
            event = twin.next_event()
            if event is need_data:
                return
            if type(event).__name__ == "LogonReceived":     # an acceptor's twin
                twin.accept_logon()

    # -- connection life
    def attach(self, conn: FixProtocol) -> None:
        self.conn = conn
        self.logout_received = False
        self.counters["connects"] += 1
        self.event(f"connected {conn.peer}")
        self.session.connection_made()
        self.pump()

    def detach(self, conn: FixProtocol, reason: str) -> None:
        if self.conn is not conn:
            return
        self.conn = None
        self.last_disconnect = reason
        self.times["last_disconnect_at"] = self.engine.wall()
        self.counters["disconnects"] += 1
        self.event(f"disconnected: {reason}")
        self._guard(self.session.connection_lost)
        self.pump()
        self.session.data_to_send()          # nothing can carry these bytes any more
        self._set_logged_out(reason)
        if self.slog:
            self.slog.flush()

    def receive(self, data: bytes) -> None:
        self.received_at = self.engine.clock.now()    # transport edge (SessionHandle.received_at)
        self.counters["bytes_in"] += len(data)
        if data:
            self.times["last_received_at"] = self.engine.wall()
        if self.slog and data:
            self.slog.wire(b"IN ", data)
        self._guard(self.session.receive_data, data)
        self.pump()

    def event(self, text: str) -> None:
        if self.slog:
            self.slog.event(text)

    # -- the drive loop
    def pump(self) -> None:
        """Run the session until it needs data, dispatching each event, then write."""
        if self._pumping:          # re-entered from an application callback: the outer pump continues
            self.flush()
            return
        self._pumping = True
        batch = self.engine.batch
        batch.depth += 1
        try:
            self._pump_events()
        finally:
            self._pumping = False
            batch.depth -= 1
        # What the application sent goes out first (the order path), then the bookkeeping.
        self.flush()
        if not batch.depth and batch.dirty:
            batch.flush_dirty()
        # The application has handled what it was given: now the target number may reach
        # the store (a crash before this re-asks the peer: at least once).
        self._guard(self.store.commit)
        self._schedule_timer()

    def _pump_events(self) -> None:
        engine = self.engine
        need_data = engine.NEED_DATA
        next_event = self.session.next_event
        # Application messages, the bulk, skip the handler table (unless a subclass engine
        # replaced their handler): the same work as _on_app_message and dispatch_app_message,
        # inline, their counts kept in locals and added once per pump.
        on_message = getattr(engine.app, "on_message", None)
        app_fast = on_message is not None and engine.handlers.get("AppMessageReceived") is _on_app_message
        app_event = engine.AppMessageReceived
        app_in = 0
        try:
            for _ in range(engine.limits.max_events_per_pump):
                try:
                    event = next_event()
                except Exception:  # noqa: BLE001 - a session bug must not end the process
                    log.exception("%s: session error; dropping the connection", self.key)
                    if self.conn is not None:
                        self.conn.close("internal session error", abort=True)
                    return
                if event is need_data:
                    return
                if app_fast and event.__class__ is app_event:
                    app_in += 1
                    msg = event.message
                    try:
                        on_message(self, msg)
                    except Exception as exc:  # noqa: BLE001 - answered with 35=j, counted
                        answer_app_error(self, msg, exc, engine.errors)
                else:
                    self._dispatch(event)
            engine.loop.call_soon(self.pump)   # more to do: let other sessions run first
        finally:
            if app_in:
                counters = self.counters
                counters["app_in"] += app_in
                counters["messages_in"] += app_in

    def _dispatch(self, event: Any) -> None:
        handler = self.engine.handlers.get(type(event).__name__)
        if handler is not None:
            handler(self, event)
        else:
            self.event(repr(event))

    def flush(self) -> None:
        """Move the session's outbound bytes to the socket, honouring back-pressure: all
        that is queued goes in one write (the session joins its frames)."""
        conn = self.conn
        if conn is None or conn.closing:
            return
        data_to_send = self.session.data_to_send
        pulls = 0
        while not (conn.paused and pulls):      # paused: one pull per call keeps the session's queue small
            data = data_to_send()
            if not data or not self.write_out(data):
                break
            pulls += 1

    def write_out(self, data: bytes) -> bool:
        """Bytes the session produced, onto the socket now: the one place they leave
        (counters, message log, outbound limit). A subclass that delays or diverts bytes
        (the simulator's injected latency) calls this when they are due. False: not
        written (no connection) or the connection was closed over the outbound limit."""
        conn = self.conn
        if conn is None or conn.closing or conn.transport is None:
            return False
        transport = conn.transport
        transport.write(data)
        counters = self.counters
        counters["bytes_out"] += len(data)
        counters["messages_out"] += data.count(b"\x0110=")    # one trailer per frame
        self.times["last_sent_at"] = self.engine.wall()
        if self.slog:
            self.slog.wire(b"OUT", data)
        size = transport.get_write_buffer_size()
        limit = self.engine.limits.max_outbound_bytes
        if size > limit:
            conn.close(f"outbound buffer over {limit} bytes ({size} unsent): peer not reading", abort=True)
            return False
        return True


    def _schedule_timer(self) -> None:
        deadline = self.session.next_deadline()
        # Heartbeat deadlines move later with every message; keeping a timer that fires
        # early (on_timer then does nothing and we re-arm) saves a cancel + call_later per message.
        if self._timer is not None and deadline is not None and self._timer_at is not None \
                and self._timer_at <= deadline:
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._timer_at = deadline
        if deadline is None:
            return
        # A deadline that on_timer did not move must not spin the loop: at least 1 ms.
        delay = max(deadline - self.engine.clock.now(), 0.001)
        self._timer = self.engine.loop.call_later(delay, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_at = None
        self._guard(self.session.on_timer)
        self.pump()
        if self.slog:
            self.slog.flush()     # message logs reach the file at least once a heartbeat

    def _guard(self, fn: Any, *args: Any) -> None:
        try:
            fn(*args)
        except Exception:  # noqa: BLE001
            log.exception("%s: session error in %s; dropping the connection", self.key, fn.__name__)
            if self.conn is not None:
                self.conn.close("internal session error", abort=True)

    def _set_logged_out(self, reason: str) -> None:
        if self._logged_on:
            self._logged_on = False
            self.logged_on_event.clear()
            log.info("%s: logged out: %s", self.key, reason)
            call_app(self.engine.app, "on_logout", self.engine.errors, self, reason)

    def close_files(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        if self._sched_handle is not None:
            self._sched_handle.cancel()
        if self.slog:
            self.slog.close()
        try:
            self.store.close()
        except Exception:  # noqa: BLE001
            log.exception("%s: closing the store", self.key)


# ---------------------------------------------------------------- event handlers

def _on_logon_received(ns: NativeSession, event: Any) -> None:
    """Acceptor: the application decides (credentials); an exception refuses."""
    try:
        refusal = ns.engine.app.check_logon(ns, event.message) if hasattr(ns.engine.app, "check_logon") else None
    except Exception:  # noqa: BLE001
        ns.engine.errors.count("check_logon")
        refusal = "logon check failed"
    if refusal:
        ns.event(f"logon refused: {refusal}")
        ns.session.refuse_logon(str(refusal))
    else:
        ns.session.accept_logon()


def _on_logged_on(ns: NativeSession, event: Any) -> None:
    ns._logged_on = True
    ns.counters["logons"] += 1
    ns.counters["messages_in"] += 1
    ns.times["last_logon_at"] = ns.engine.wall()
    ns.logged_on_event.set()
    ns.event(f"logged on (reset={getattr(event, 'reset', False)})")
    log.info("%s: logged on (%s)", ns.key, ns.conn.peer if ns.conn else "?")
    call_app(ns.engine.app, "on_logon", ns.engine.errors, ns)


def _on_app_message(ns: NativeSession, event: Any) -> None:
    ns.counters["app_in"] += 1
    ns.counters["messages_in"] += 1
    dispatch_app_message(ns.engine.app, ns, event.message, ns.engine.errors)


def _on_admin_message(ns: NativeSession, event: Any) -> None:
    ns.counters["messages_in"] += 1
    t = event.message.msg_type
    if t == "0":
        ns.times["last_heartbeat_at"] = ns.engine.wall()
    elif t == "5":
        ns.logout_received = True       # the Disconnect that follows is a routine one
    call_app(ns.engine.app, "on_admin", ns.engine.errors, ns, event.message)


def _on_logged_out(ns: NativeSession, event: Any) -> None:
    ns.event(f"logged out: {event.reason}")
    ns._set_logged_out(event.reason)


def _on_disconnect(ns: NativeSession, event: Any) -> None:
    ns.flush()    # the Logout or Reject the session just queued goes first
    if ns.conn is not None:
        # A logout exchange or our own shutdown is routine; anything else deserves a warning.
        routine = ns.engine._stopping or ns.logout_received
        ns.conn.close(event.reason, quiet=routine)


def _on_other(ns: NativeSession, event: Any) -> None:
    ns.event(repr(event))


HANDLERS = {
    "LogonReceived": _on_logon_received,
    "LoggedOn": _on_logged_on,
    "AppMessageReceived": _on_app_message,
    "AdminMessageReceived": _on_admin_message,
    "LoggedOut": _on_logged_out,
    "Disconnect": _on_disconnect,
    "Connected": _on_other,
    "RejectSent": _on_other,
    "GapDetected": _on_other,
    "ResendCompleted": _on_other,
}


# ---------------------------------------------------------------- the engine

class NativeEngine:
    """Every session of one role on one loop. Use ``engine.create_engine("native", ...)``.

    Hooks for a process that serves its own kind of session (the simulator's venues):
    ``session_class`` (a ``NativeSession`` subclass) and ``store_wrapper(settings, store)``,
    which returns the store the session uses in place of the one the engine made."""

    kind = "native"
    session_class: type[NativeSession] = NativeSession

    def __init__(self, role: str, settings: Sequence[Any], app: Any, *, host: str = "127.0.0.1",
                 port: int = 0, hosts: Any = None, store_dir: str | Path | None = None,
                 tls: TlsConfig | ssl.SSLContext | None = None, log_dir: str | Path | None = None,
                 loop: asyncio.AbstractEventLoop | None = None, clock: Clock = MONOTONIC,
                 wall: Any = time.time, store_wrapper: Any = None, **options: Any) -> None:
        from gateway.fix.events import NEED_DATA, AppMessageReceived   # late: lets this module import before events.py exists
        self.NEED_DATA = NEED_DATA
        self.AppMessageReceived = AppMessageReceived
        self.role = role
        self.app = app
        self.host, self.port = host, (port if role == "acceptor" else None)
        self.limits = Limits.from_options(options)
        self.ssl = _ssl_context(tls, role)
        self.server_hostname = tls.server_hostname if isinstance(tls, TlsConfig) else None
        self.clock, self.wall = clock, wall
        self.store_dir, self.log_dir = store_dir, log_dir
        self.store_wrapper = store_wrapper
        self._settings = list(settings)
        self.loop = loop
        self.errors = ErrorCounter()
        self.handlers = HANDLERS
        self.sessions: dict[str, NativeSession] = {}
        self._by_ids: dict[tuple[str, str, str], NativeSession] = {}
        self._pre_logon: set[FixProtocol] = set()
        self._server: asyncio.AbstractServer | None = None
        self._tasks: list[asyncio.Task] = []
        self._stopping = False
        self._hosts = (normalize_hosts(hosts, [s.key for s in self._settings])
                       if role == "initiator" else {})
        self.refused = {"pre_logon_limit": 0, "junk": 0, "unknown_comp_id": 0, "duplicate": 0}
        self.batch = loop_batch()               # replaced in start(), on the loop's thread

    @property
    def callback_errors(self) -> int:
        return self.errors.errors

    @property
    def stopping(self) -> bool:
        """True once ``stop()`` began: disconnects from then on are routine."""
        return self._stopping

    # -- start / stop
    async def start(self) -> None:
        self.loop = self.loop or asyncio.get_running_loop()
        self.batch = loop_batch()
        for s in self._settings:
            ns = self._make_session(s)
            self.sessions[ns.key] = ns
            self._by_ids[(s.begin_string, s.sender_comp_id, s.target_comp_id)] = ns
        for ns in self.sessions.values():
            ns.arm_schedule()
        if self.role == "acceptor":
            # A TLS handshake happens before connection_made: bound it like a pre-logon.
            tls_kw = {"ssl_handshake_timeout": self.limits.pre_logon_timeout_s} if self.ssl else {}
            self._server = await self.loop.create_server(
                lambda: FixProtocol(self, None), self.host, self.port, ssl=self.ssl,
                reuse_address=True, backlog=512, **tls_kw)
            self.port = self._server.sockets[0].getsockname()[1]
            log.info("acceptor listening on %s:%s (%d sessions%s)", self.host, self.port,
                     len(self.sessions), ", TLS" if self.ssl else "")
        else:
            for ns in self.sessions.values():
                self._tasks.append(self.loop.create_task(self._keep_connected(ns)))

    def _make_session(self, settings: Any) -> NativeSession:
        from gateway.fix.dictionary import Dictionary
        from gateway.fix.session import Session
        from gateway.fix.store import FileStore, MemoryStore
        store = (FileStore(self.store_dir, settings.key, fsync=self.limits.store_fsync)
                 if self.store_dir is not None else MemoryStore())
        if self.store_wrapper is not None:
            store = self.store_wrapper(settings, store)
        dictionary = Dictionary.load(settings.dictionary_path) if settings.dictionary_path else Dictionary.load()
        session = Session(settings, store, dictionary, clock=self.clock, wall=self.wall)
        slog = (SessionLog(self.log_dir, settings.key, self.limits.log_max_bytes, self.limits.log_keep, self.wall)
                if self.log_dir is not None else None)
        ns = self.session_class(self, settings, session, store, slog)
        ns.dictionary = dictionary
        return ns

    async def stop(self) -> None:
        """Logout every logged-on session, wait a little for the peers, then close all."""
        self._stopping = True
        for task in self._tasks:
            task.cancel()
        if self._server is not None:
            self._server.close()
        for ns in self.sessions.values():
            if ns.logged_on:
                ns.logout("shutting down")
        conns = [ns.conn for ns in self.sessions.values() if ns.conn is not None]
        wait = max([s.logout_timeout_s for s in self._settings] + [0.1])
        if conns:
            await asyncio.wait([c.closed for c in conns], timeout=min(wait, self.limits.close_timeout_s))
        for conn in conns + list(self._pre_logon):
            conn.close("engine stopped", abort=True, quiet=True)
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=1)
        if self._server is not None:
            try:
                await asyncio.wait_for(self._server.wait_closed(), 1)
            except asyncio.TimeoutError:
                pass
        await asyncio.sleep(0)     # let connection_lost callbacks run before the stores close
        for ns in self.sessions.values():
            ns.close_files()

    async def wait_logged_on(self, key: str | None = None, timeout: float = 5.0) -> SessionHandle:
        """Wait until a session (the only one, or ``key``) is logged on; TimeoutError otherwise."""
        ns = self.sessions[key] if key else next(iter(self.sessions.values()))
        await asyncio.wait_for(ns.logged_on_event.wait(), timeout)
        return ns

    # -- acceptor: before logon
    def pre_logon_opened(self, conn: FixProtocol) -> None:
        if self._stopping:
            conn.close("engine stopping", abort=True, quiet=True)
            return
        if len(self._pre_logon) >= self.limits.max_pre_logon_connections:
            self.refused["pre_logon_limit"] += 1
            conn.close(f"over {self.limits.max_pre_logon_connections} connections awaiting logon", abort=True)
            return
        self._pre_logon.add(conn)
        conn.start_logon_timer()

    def pre_logon_closed(self, conn: FixProtocol) -> None:
        self._pre_logon.discard(conn)

    def route_logon(self, conn: FixProtocol, frame: bytes) -> None:
        """The first complete frame of an unrouted socket: find its session or close."""
        from gateway.fix.codec import parse
        try:
            msg = parse(frame)
        except Exception as exc:  # noqa: BLE001 - GarbledMessage, RemoteFixError, anything odd
            self.refused["junk"] += 1
            conn.close(f"unreadable first message: {exc}", abort=True)
            return
        if msg.msg_type != "A":
            self.refused["junk"] += 1
            conn.close(f"first message is 35={msg.msg_type}, not a Logon", abort=True)
            return
        ids = (msg.get(8) or "", msg.get(56) or "", msg.get(49) or "")   # the peer's target is our sender
        ns = self._by_ids.get(ids)
        if ns is None:
            self.refused["unknown_comp_id"] += 1
            conn.close(f"Logon for unknown session {ids[0]}:{ids[2]}->{ids[1]}", abort=True)
            return
        self._pre_logon.discard(conn)
        if ns.conn is not None:
            # Per the FIX session test cases: no message (it would consume a sequence number).
            self.refused["duplicate"] += 1
            conn.close(f"duplicate Logon for {ns.key} (already connected from {ns.conn.peer})", abort=True)
            return
        conn.hand_over(ns)

    # -- initiator: stay connected
    async def _keep_connected(self, ns: NativeSession) -> None:
        addresses = self._hosts[ns.key]
        attempt, delay, state = 0, self.limits.backoff_initial_s, ""
        while not self._stopping:
            if not ns.enabled.is_set():          # an operator logged it out: wait for a logon
                state = self._link_state(ns, state, "held down by an operator")
                await ns.enabled.wait()
                continue
            if not ns.session.in_schedule():
                # Outside the schedule an initiator does not connect: wait for the logon window.
                at = ns.settings.schedule.next_logon_start(self.wall())
                from gateway.fix.schedule import utc_iso
                state = self._link_state(ns, state, f"outside the session schedule "
                                                    f"({ns.settings.schedule.describe()}); "
                                                    f"next logon at {utc_iso(at)}")
                await asyncio.sleep(min(max(at - self.wall(), 0.0) + 0.001, 60.0))
                continue
            host, port = addresses[attempt % len(addresses)]
            ns.counters["connect_attempts"] += 1
            try:
                _, conn = await asyncio.wait_for(self.loop.create_connection(
                    lambda: FixProtocol(self, ns), host, port, ssl=self.ssl,
                    server_hostname=(self.server_hostname or host) if self.ssl else None),
                    self.limits.connect_timeout_s)
            except (OSError, asyncio.TimeoutError, ssl.SSLError) as exc:
                ns.counters["connect_failures"] += 1
                why = type(exc).__name__ + (f": {exc.strerror}" if getattr(exc, "strerror", None) else "")
                state = self._link_state(ns, state, f"cannot connect ({why}); "
                                                    f"retrying every <= {self.limits.backoff_max_s:g} s "
                                                    f"over {len(addresses)} address(es)")
                attempt += 1
                if attempt % len(addresses) == 0:     # a whole round failed: back off
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, self.limits.backoff_max_s)
                continue
            state = self._link_state(ns, state, f"connected to {host}:{port}")
            logons = ns.counters["logons"]
            await conn.closed
            if self._stopping:
                return
            # A connection that logged on resets the backoff; one refused at logon does not,
            # so a peer that keeps refusing us is not hammered.
            delay = self.limits.backoff_initial_s if ns.counters["logons"] > logons else min(
                delay * 2, self.limits.backoff_max_s)
            state = self._link_state(ns, state, f"disconnected ({ns.last_disconnect}); reconnecting")
            await asyncio.sleep(delay)

    @staticmethod
    def _link_state(ns: NativeSession, old: str, new: str) -> str:
        """Log a link state once per change, not once per attempt."""
        if new != old:
            (log.info if new.startswith("connected") else log.warning)("%s: %s", ns.key, new)
            ns.event(new)
        ns.link_state = new
        return new
