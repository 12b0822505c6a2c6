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

Where the code is: this module is the asyncio shell (configuration, pre-logon framing,
``FixProtocol``, ``NativeEngine``); what runs per received chunk and per message
(``NativeSession``, ``SessionLog``, ``SendBatch``, the event handlers) is in ``drive.py``,
compiled with mypyc, and re-exported here.

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
import socket
import ssl
import time
import weakref
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Mapping, Sequence

from gateway.common.clock import MONOTONIC, Clock
from gateway.fix.drive import (HANDLERS, WARM_IDLE_S, NativeSession, SendBatch, SessionLog,  # noqa: F401
                               loop_batch)
from gateway.fix.engine import ErrorCounter, SessionHandle, normalize_hosts

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
    busy_poll_us: int = 0                    # > 0: the loop polls without sleeping this long after a read (BusyPoll)

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> "Limits":
        names = {f.name for f in fields(cls)}
        unknown = set(options) - names
        if unknown:
            raise TypeError(f"unknown engine options {sorted(unknown)}; known: {sorted(names)}")
        return cls(**options)


# ---------------------------------------------------------------- busy polling

class BusyPoll:
    """Keeps one loop polling its sockets, without sleeping in epoll, for ``window_s`` after
    each read: the next message of an exchange (the venue's answer to the order just
    forwarded, the OMS's next order) is then read without waking a sleeping process, which
    on a VM costs tens to hundreds of microseconds (the kernel, the hypervisor, cold caches).

    The price is a CPU kept busy for the window after every read: meant for a process pinned
    to a core of its own (the gateway's ``cpu``). It polls by keeping one callback ready on the
    loop (asyncio's and uvloop's loops then poll with a zero timeout), so it works on either
    loop and stops by itself once the window passes without a read. Every engine on the loop
    shares the one instance (``BusyPoll.of``)."""

    _BY_LOOP: "weakref.WeakValueDictionary[int, BusyPoll]" = weakref.WeakValueDictionary()

    def __init__(self, loop: asyncio.AbstractEventLoop, window_s: float,
                 clock: Any = time.monotonic) -> None:
        self.loop = loop
        self.window_s = window_s
        self._clock = clock
        self.until = 0.0
        self.spinning = False

    @classmethod
    def of(cls, loop: asyncio.AbstractEventLoop, window_us: int) -> "BusyPoll | None":
        """The loop's instance (the longest window any engine asked for); None when 0."""
        if window_us <= 0:
            return None
        bp = cls._BY_LOOP.get(id(loop))
        if bp is None or bp.loop is not loop:
            bp = cls._BY_LOOP[id(loop)] = cls(loop, window_us / 1e6)
        bp.window_s = max(bp.window_s, window_us / 1e6)
        return bp

    def touch(self) -> None:
        """A read happened: poll until ``window_s`` from now."""
        self.until = self._clock() + self.window_s
        if not self.spinning:
            self.spinning = True
            self.loop.call_soon(self._poll)

    def _poll(self) -> None:
        if self._clock() < self.until and not self.loop.is_closed():
            self.loop.call_soon(self._poll)
        else:
            self.spinning = False


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


def _set_nodelay(transport: asyncio.BaseTransport) -> None:
    sock = transport.get_extra_info("socket")
    if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:   # already closed by the peer: harmless
            pass


# ---------------------------------------------------------------- one connection
# (the session behind it, its logs and the send batch: drive.py, compiled; names re-exported here)

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
        if self.engine.busy is not None:
            self.engine.busy.touch()
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



# ---------------------------------------------------------------- the engine

class NativeEngine:
    """Every session of one role on one loop. Use ``engine.create_engine("native", ...)``.

    Hooks for a process that serves its own kind of session (the simulator's venues):
    ``session_class`` (a ``NativeSession`` subclass) and ``store_wrapper(settings, store)``,
    which returns the store the session uses in place of the one the engine made (a
    ``store.Store`` subclass: the compiled Session calls its methods natively)."""

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
        self.busy: BusyPoll | None = None       # set in start() when Limits.busy_poll_us > 0

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
        self.busy = BusyPoll.of(self.loop, self.limits.busy_poll_us)
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
        # defer: the records of one dispatch's sends in one os.write, made when the session's
        # bytes are taken for the socket (Session.data_to_send), not one write per message
        store = (FileStore(self.store_dir, settings.key, fsync=self.limits.store_fsync, defer=True)
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
