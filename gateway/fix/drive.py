"""The native engine's per-session drive: received bytes -> ``Session`` -> Application
callbacks -> bytes out, the message log, the send batch. Compiled with mypyc (listed in
``gateway/common/accel.py``): every received chunk and every message passes through here.

``transport.py`` keeps the asyncio shell around it (configuration, pre-logon framing, the
``FixProtocol`` asyncio.Protocol, ``NativeEngine``) and re-exports what is defined here, so
``transport.NativeSession`` etc. are still the names to use. The engine and the connection
are typed ``Any`` here on purpose: they are interpreted objects. ``NativeSession`` allows
interpreted subclasses (the simulator's ``DelayedSession``).

Measured (benchmarks/bench_relay.py --stub under callgrind, whole process, client + relay +
venue in one process): 637k -> 590k instructions per order against the interpreted drive.
"""
from __future__ import annotations

import asyncio
import logging
import re
import threading
import time
from pathlib import Path
from typing import Any, Final, Sequence

from mypy_extensions import i64, mypyc_attr

from gateway.fix.codec import COMPILED, Message
from gateway.fix.engine import SessionHandle, answer_app_error, body_text, call_app, dispatch_app_message
from gateway.fix.session import Session
from gateway.fix.store import Store

log = logging.getLogger("gateway.fix.transport")     # one logger for the whole native engine

_BEGIN: Final = b"8=FIX"


# ---------------------------------------------------------------- logs

_NEXT_FRAME: Final = b"\x01" + _BEGIN     # where one frame of a chunk ends and the next begins
_MILLIS_B: Final = tuple(b".%03d" % n for n in range(1000))     # b".000" .. b".999"
_DIGITS3_B: Final = tuple(b"%03d" % n for n in range(1000))     # b"000" .. b"999"
LOG_BUFFER: Final = 1 << 16       # SessionLog: bytes of lines kept before a write to the messages file


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
        self.max_bytes, self.keep = max_bytes, keep
        self._wall: Any = wall
        # Sizes counted as we write (tell() costs a syscall, and a text file's much more):
        # native ints, compared on every write (a size rotation may come at any line).
        self._messages_size = 0
        self._events_size = 0
        self._messages: Any = self._open("messages", "ab", 1 << 16)
        # Lines of the messages file not yet handed to it: a list append per line, one file
        # write per LOG_BUFFER bytes (a buffered file's write() per line costs ~0.65k
        # instructions: a method call, its lock, a copy). Written by flush(), rotate(), close().
        self._lines: list[bytes] = []
        self._lines_size = 0
        self._events: Any = self._open("events", "a", 1)
        self._day = int(wall() // 86400)
        self._second = -1                 # the whole second _second_text spells
        self._second_text = b""
        self.rotations = 0

    def _path(self, kind: str) -> Path:
        return self.base / f"{self.name}.{kind}.log"

    def _open(self, kind: str, mode: str, buffering: int) -> Any:
        f: Any = (open(self._path(kind), mode, buffering=buffering) if "b" in mode
                  else open(self._path(kind), mode, buffering=buffering, encoding="utf-8"))
        size = f.seek(0, 2)
        if kind == "messages":
            self._messages_size = size
        else:
            self._events_size = size
        return f

    def _maybe_rotate(self, now: float) -> None:
        if (now // 86400 == self._day and self._messages_size < self.max_bytes
                and self._events_size < self.max_bytes):
            return
        self._day = int(now // 86400)
        self.rotate(now)

    def rotate(self, now: float | None = None) -> None:
        """Start new files now (the old ones renamed with the time, the oldest beyond ``keep`` removed)."""
        now = self._wall() if now is None else now
        suffix = time.strftime("%Y%m%d-%H%M%S", time.gmtime(now))
        self._write_lines()
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

    def wire(self, direction: bytes, data: bytes) -> float:
        """Log a chunk as one line per frame: ``<stamp> <direction> <frame>``, one write for
        the chunk. Returns the wall-clock time the lines are stamped with (``receive`` keeps
        it as the last received time: one clock read, not two)."""
        frames: list[bytes] = []
        end = walk_frames(data, frames) if COMPILED else 0     # interpreted: bytes.replace's search is cheaper
        return self.wire_walked(direction, data, frames, end)

    def wire_walked(self, direction: bytes, data: bytes, frames: list[bytes], end: int) -> float:
        """``wire`` with the chunk already walked (``walk_frames(data, frames)`` returned
        ``end``: ``_write`` walks it once for its count and the log); returns the same stamp
        (there, the last sent time). The frames are joined with the line break and the next
        line's prefix (no scan of the bytes: a batch of 50 orders is ~15 KB, and a search for
        where frames begin costs ~3 instructions a byte). What is not whole frames, from
        ``end`` on (a received chunk that TCP cut inside a frame, bytes that are not FIX),
        gets the line break before every BeginString that follows a SOH, by
        ``bytes.replace``, as before: the lines are the same either way, except that a frame
        holding an embedded message in a data field (SOH then "8=FIX" inside its body) now
        stays on its own line.

        Per line (one order in flight, a line per write): one clock read, the day checked
        only when the second changes (with the second's text), the sizes native ints, one
        bytes build for a lone frame (the line whole), one buffered write."""
        now = float(self._wall())
        second = int(now)                  # the wall clock is epoch time: positive, int() is the floor
        if second != self._second:
            self._new_second(now, second)
        elif self._messages_size >= self.max_bytes or self._events_size >= self.max_bytes:
            self._maybe_rotate(now)
        micros = int((now - second) * 1e6)     # as int(now % 1 * 1e6): the difference is exact
        # the microseconds from two tables: a bytes build of bytes (no %d formatting)
        millis, digits = _MILLIS_B[micros // 1000], _DIGITS3_B[micros % 1000]
        if end == len(data) and len(frames) == 1:    # one whole frame (the common case): one build
            line = b"%s%s%s %s %s\n" % (self._second_text, millis, digits, direction, frames[0])
        else:
            prefix = b"%s%s%s %s " % (self._second_text, millis, digits, direction)
            if frames and end == len(data):         # whole frames: no scan
                body = (b"\n" + prefix).join(frames)
            elif end == 0 or not data.startswith(_BEGIN, end):
                body = data.replace(_NEXT_FRAME, b"\x01\n" + prefix + _BEGIN)
            else:                                   # whole frames, then the start of one (or more)
                frames.append(data[end:].replace(_NEXT_FRAME, b"\x01\n" + prefix + _BEGIN))
                body = (b"\n" + prefix).join(frames)
            line = b"%s%s\n" % (prefix, body)
        self._lines.append(line)
        size = len(line)
        self._messages_size += size
        self._lines_size += size
        if self._lines_size >= LOG_BUFFER:
            self._write_lines()
        return now

    def _write_lines(self) -> None:
        """The lines kept so far, to the file in one write."""
        lines = self._lines
        if lines:
            data = b"".join(lines)
            lines.clear()
            self._lines_size = 0
            self._messages.write(data)

    def _new_second(self, now: float, second: int) -> None:
        """Once a second: rotate if the day changed (or a file is full), spell the second."""
        self._maybe_rotate(now)
        self._second = second
        self._second_text = _stamp(float(second))[:-7].encode()   # strftime once a second, not once a message

    def event(self, text: str) -> None:
        now = self._wall()
        self._maybe_rotate(now)
        line = f"{_stamp(now)} {text}\n"
        self._events.write(line)
        self._events_size += len(line.encode())

    def flush(self) -> None:
        self._write_lines()
        self._messages.flush()

    def close(self) -> None:
        try:
            self._write_lines()
        except (OSError, ValueError):      # a closed file (closed twice), a full disk
            pass
        for f in (self._messages, self._events):
            try:
                f.close()
            except OSError:
                pass


def walk_frames(data: bytes, frames: list[bytes]) -> int:
    """Append to ``frames`` the whole FIX frames ``data`` begins with, found by their
    BodyLength (each frame: "8=FIX", BeginString, SOH, "9=" digits SOH, that many bytes,
    then "10=" three bytes SOH), and return where the walk stopped: ``len(data)`` when the
    chunk is whole frames. A few instructions a frame, where a search for where each frame
    begins reads every byte. A frame that is all of ``data`` is appended as it is (no copy).

    Positions are ``i64`` (compiled: a byte read is a few machine instructions)."""
    n: i64 = len(data)
    pos: i64 = 0
    while pos + 20 <= n:      # bounded: pos strictly increases; "8=FIX.4.4|9=1|35=0|10=000|" is 27
        if (data[pos] != 56 or data[pos + 1] != 61 or data[pos + 2] != 70 or data[pos + 3] != 73
                or data[pos + 4] != 88):                                   # "8=FIX"
            break
        i: i64 = pos + 5
        while i < n and data[i] != 1 and i - pos < 32:                    # the BeginString
            i += 1
        if i + 3 >= n or data[i] != 1 or data[i + 1] != 57 or data[i + 2] != 61:   # SOH "9="
            break
        j: i64 = i + 3
        length: i64 = 0
        while j < n and j - i < 12:                                        # the BodyLength digits
            c: i64 = data[j]
            if c < 48 or c > 57:
                break
            length = length * 10 + c - 48
            j += 1
        if j == i + 3 or j >= n or data[j] != 1:
            break
        end: i64 = j + 1 + length + 7
        if (end > n or data[end - 8] != 1 or data[end - 7] != 49 or data[end - 6] != 48
                or data[end - 5] != 61 or data[end - 1] != 1):              # SOH "10=" ... SOH
            break
        frames.append(data if pos == 0 and end == n else data[pos:end])
        pos = end
    return pos


def _stamp(now: float | None = None) -> str:
    now = time.time() if now is None else now
    return time.strftime("%Y%m%d-%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1e6):06d}"




# ---------------------------------------------------------------- writes batched per input

class SendBatch:
    """Sends made while input is dispatched wait for the dispatch to end, then each session
    written to makes one socket write: a burst of orders from one received chunk is one
    write per session, not one per order. Shared by every engine driven by one thread's
    loop (the gateway's OMS acceptor and venue initiator are two engines): an order read on
    one and sent on the other is batched too. Nothing waits for a later loop iteration:
    the writes happen before the callback that read the input returns.

    A send to a session other than the one being pumped is held whole (not even stored: no
    sequence number yet) until the batch is flushed; the pumped session's own sends are
    stored at once and written at the end. ``before_send`` (None, or a callable set by the
    process: the gateway wires its order journal's ``flush``) runs before any message is
    stored or written: before a held send is released, before a send made at once, and when a
    dispatch ends. The journal holds its records while ``depth`` > 0 and writes them in one
    ``os.write`` there: records, then the FIX store, then the wire, in that order, one write
    of each per dispatch for a burst of orders. If ``before_send`` raises (the journal could
    not write), nothing it may explain is stored or sent: held sends stay held (retried at
    the next flush) and a send made at once returns False.

    Measured (issue 12, round 4; 2 shared cores under load, so ratios of alternated runs):
    journal writes per order in ``fixgw bench profile --orders 10000`` 2.00 -> 0.04; a venue
    chunk of a fill then a 10-entry incremental refresh (``benchmarks/bench_fill_first.py``,
    8 alternated pairs against e3426ed): the OMS's fill leaves at p50 78 us instead of 125 us
    after the chunk is read (median ratio 0.66), the chunk's CPU unchanged within the noise."""

    def __init__(self) -> None:
        self.depth = 0                          # > 0 while some session's events are dispatched
        # Sessions sent on during that dispatch, each once, in the order of their first send:
        # a list (one or two sessions: a membership test is an identity compare or two; a
        # set per flush cost ~0.8k instructions in creation and iteration).
        self.dirty: list[NativeSession] = []
        self.before_send: Any = None            # called before a message is stored or written
        self.before_send_failures = 0

    def ready_to_send(self) -> bool:
        """Run ``before_send``; False (logged, counted) if it raised: send nothing it may explain."""
        hook = self.before_send
        if hook is None:
            return True
        try:
            hook()
            return True
        except Exception as exc:  # noqa: BLE001 - counted; the caller holds or refuses the send
            self.before_send_failures += 1
            n = self.before_send_failures
            if not n & (n - 1):                 # 1, 2, 4, 8...: a failing disk must not flood the log
                log.error("before a send (the order journal): %s; nothing it explains is stored or sent "
                          "(%d failures)", exc, n)
            return False

    def flush_dirty(self, ready: bool = False) -> None:
        """Release and write what each session sent on during the dispatch. ``ready``: the
        caller has just run ``before_send`` (``ready_to_send()`` returned True, the end of a
        pump) and nothing since could have made a record: not run again per session."""
        dirty, self.dirty = self.dirty, []
        for ns in dirty:
            if ns._held_sends:
                ns._release_held(ready)
            ns.flush()
            ns._schedule_timer()


_THREAD = threading.local()


def loop_batch() -> SendBatch:
    """This thread's batch: one loop runs per thread at a time, and a dispatch begins and
    ends within one of its callbacks, so the batch is empty between callbacks."""
    batch: SendBatch | None = getattr(_THREAD, "batch", None)
    if batch is None:
        batch = SendBatch()
        _THREAD.batch = batch
    return batch


# ---------------------------------------------------------------- one configured session

_SENDABLE: Final = frozenset(("ACTIVE", "RESENDING"))   # Session states that accept send()
# Market data (snapshot, incremental refresh): what the chunk's earlier messages made for other
# sessions (order flow) is flushed before one of these is handled (``_pump_events``).
_MARKET_DATA: Final = frozenset(("W", "X"))
# A big received chunk's sends leave every this many application messages, not only when the
# chunk ends: the peer starts on the first orders while we read the rest. Measured (issue 12,
# round 9, `fixgw bench gateway --engines native`, 200 in flight, chunks of ~100 orders):
# 15,570 / 17,817 -> 34,119 / 27,873 orders/s, the gateway busy 0.62 -> 1.0 of its CPU.
FLUSH_EVERY: Final = 32
WARM_IDLE_S: Final = 0.002     # NativeSession.warm_up only after this long without traffic on the session


@mypyc_attr(allow_interpreted_subclasses=True)      # the simulator's DelayedSession
class NativeSession(SessionHandle):
    """A configured session: our sans-IO ``Session`` plus its current connection, its
    timer and its logs. Survives reconnects (the Session and its store persist)."""

    def __init__(self, engine: Any, settings: Any, session: Session, store: Store,
                 slog: SessionLog | None) -> None:
        self.engine: Any = engine                  # the NativeEngine (transport.py)
        self.settings: Any = settings
        self.session = session
        self.store = store       # the Session's own: a Store, so commit() per pump is a native call
        self.key = settings.key
        self.sender_comp_id = settings.sender_comp_id
        self.target_comp_id = settings.target_comp_id
        self.conn: Any = None                      # the FixProtocol (transport.py), None between connections
        self.slog = slog
        self._logged_on = False
        self._timer: Any = None                    # the loop's TimerHandle (asyncio's or uvloop's)
        self._timer_at: float | None = None
        self._pumping = False
        self._held_sends: list[tuple[str, str, str]] = []   # (MsgType, body, extra header): SendBatch
        self.last_disconnect = ""
        self.logout_received = False
        self._counters = {"connects": 0, "logons": 0, "bytes_in": 0, "bytes_out": 0,
                          "app_in": 0, "disconnects": 0, "messages_in": 0, "messages_out": 0,
                          "connect_attempts": 0, "connect_failures": 0}
        # Counted per socket read or write: native ints, copied into ``counters`` when it is read.
        self._bytes_in = 0
        self._bytes_out = 0
        self._messages_out = 0
        # Wall-clock times (UTC epoch s) for status pages; None until it happens.
        self._times: dict[str, float | None] = dict.fromkeys(
            ("last_logon_at", "last_received_at", "last_sent_at", "last_heartbeat_at", "last_disconnect_at"))
        # Per read and write: the message log's stamp (one clock read), 0.0 until it happens.
        self._last_received_wall = 0.0
        self._last_sent_wall = 0.0
        self._max_outbound: int = 4 << 20          # the engine's limits.max_outbound_bytes, read by attach()
        self.link_state = ""              # the initiator's last logged link state (connect/back-off)
        self.logged_on_event = asyncio.Event()
        # Initiator: cleared by an operator's logout, the session stays down until set() again.
        self.enabled = asyncio.Event()
        self.enabled.set()
        self._sched_handle: Any = None
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

    @property
    def counters(self) -> dict[str, int]:
        """Connects, logons, bytes and messages in and out...: the dict (its entries may be
        incremented), with the per-read and per-write counts copied in."""
        counters = self._counters
        counters["bytes_in"] = self._bytes_in
        counters["bytes_out"] = self._bytes_out
        counters["messages_out"] = self._messages_out
        return counters

    @property
    def times(self) -> dict[str, float | None]:
        """Wall-clock times (UTC epoch s) of the last logon, read, write...; None until it happens."""
        times = self._times
        if self._last_received_wall:
            times["last_received_at"] = self._last_received_wall
        if self._last_sent_wall:
            times["last_sent_at"] = self._last_sent_wall
        return times

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
        text = body if isinstance(body, str) else body_text(body)
        batch: SendBatch = self.engine.batch
        if batch.depth and not self._pumping:
            # Another session's input is being dispatched: held whole until the batch flushes
            # (after the journal's records of this dispatch are written: SendBatch).
            self._held_sends.append((msg_type, text, extra_header))
            if self not in batch.dirty:
                batch.dirty.append(self)
            return True
        if self._held_sends:
            self._release_held()                      # older sends first
            if self._held_sends:
                return False
        elif not batch.ready_to_send():               # the journal's records before the store's
            return False
        session.send(msg_type, text, extra_header=extra_header)
        if batch.depth:                               # _flush_soon() inlined
            if self not in batch.dirty:
                batch.dirty.append(self)
        else:
            self.flush()
        return True

    def _release_held(self, ready: bool = False) -> None:
        """The held sends into the session (stored, sequenced, queued), after ``before_send``
        (the journal's records first; ``ready``: the caller just ran it); left held if it
        failed. A send the session refuses now (it stopped being logged on meanwhile: held
        sends are released before this session's own pump, logout and disconnect, so only an
        outside change does that) is logged and counted."""
        if not ready and not self.engine.batch.ready_to_send():
            return
        held, self._held_sends = self._held_sends, []
        session = self.session
        for msg_type, text, extra_header in held:
            try:
                session.send(msg_type, text, extra_header=extra_header)
            except Exception:  # noqa: BLE001 - counted and logged (ErrorCounter), the rest still go
                self.engine.errors.count(f"a held {msg_type} on {self.key}")

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
            if self not in batch.dirty:
                batch.dirty.append(self)
        else:
            self.flush()

    def logout(self, text: str = "") -> None:
        if self.conn is not None:
            if self._held_sends:
                self._release_held()
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
                twin = self._twin = self.make_twin()
            twin.send_test_request("PRB-WARM-0")
            twin.data_to_send()
            self.feed_twin(twin, "0", "112=PRB-WARM-0\x01")
        except Exception:  # noqa: BLE001 - a warm-up must never touch the real session
            log.warning("%s: probe warm-up failed; off for this session", self.key, exc_info=True)
            self._twin = False

    def make_twin(self) -> Any:
        """A logged-on sans-IO twin of this session: the same settings and Dictionary, a
        ``MemoryStore`` that keeps no messages, no schedule, no socket, no application
        (``warm_up``'s, and the order-path warmer's: gateway/apps/server/warm.py)."""
        from gateway.fix.session import Session
        from gateway.fix.store import MemoryStore
        settings = self.settings.model_copy(update={"persist_messages": False, "schedule": None})
        twin = Session(settings, MemoryStore(), self.dictionary, clock=self.engine.clock, wall=self.engine.wall)
        twin.connection_made()
        twin.data_to_send()
        self.feed_twin(twin, "A", f"98=0\x01108={settings.heartbeat_s}\x01")
        twin.data_to_send()
        if not twin.logged_on:
            raise RuntimeError(f"the warm-up twin did not log on ({twin.state})")
        return twin

    def feed_twin(self, twin: Any, msg_type: str, body: str) -> Any:
        """The twin's peer: one message in, its events drained; returns the application
        message the twin accepted (None: an admin message, or one it refused)."""
        from gateway.fix.codec import encode, utc_timestamp
        s = twin.settings
        header = (f"34={twin.next_target_seq}\x0149={s.target_comp_id}\x0152={utc_timestamp(self.engine.wall())}"
                  f"\x0156={s.sender_comp_id}\x01")
        twin.receive_data(encode(s.begin_string, msg_type, header, body))
        need_data = self.engine.NEED_DATA
        got: Any = None
        for _ in range(8):
            event = twin.next_event()
            if event is need_data:
                break
            kind = type(event).__name__
            if kind == "LogonReceived":          # an acceptor's twin
                twin.accept_logon()
            elif kind == "AppMessageReceived":
                got = event.message
        return got

    # -- connection life
    def attach(self, conn: Any) -> None:
        self.conn = conn
        self._max_outbound = int(self.engine.limits.max_outbound_bytes)
        self.logout_received = False
        self._counters["connects"] += 1
        self.event(f"connected {conn.peer}")
        self.session.connection_made()
        self.pump()

    def detach(self, conn: Any, reason: str) -> None:
        if self.conn is not conn:
            return
        self.conn = None
        self.last_disconnect = reason
        self._times["last_disconnect_at"] = self.engine.wall()
        self._counters["disconnects"] += 1
        self.event(f"disconnected: {reason}")
        if self._held_sends:
            self._release_held()             # stored (resent on request), as if sent just before
        self._guard(self.session.connection_lost)
        self.pump()
        self.session.data_to_send()          # nothing can carry these bytes any more
        self._set_logged_out(reason)
        if self.slog:
            self.slog.flush()

    def receive(self, data: bytes) -> None:
        self.received_at = self.engine.clock.now()    # transport edge (SessionHandle.received_at)
        self._bytes_in += len(data)
        if data:
            slog = self.slog
            if slog is not None:          # the log's stamp is the time received: one clock read
                self._last_received_wall = slog.wire(b"IN ", data)
            else:
                self._last_received_wall = float(self.engine.wall())
        try:
            self.session.receive_data(data)
        except Exception:  # noqa: BLE001
            self._session_error("receive_data")
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
        if self._held_sends:       # sends held for this session go before what its input makes
            self._release_held()
        self._pumping = True
        batch: SendBatch = self.engine.batch
        batch.depth += 1
        ready = False
        try:
            self._pump_events()
        finally:
            self._pumping = False
            batch.depth -= 1
            if not batch.depth:
                ready = batch.ready_to_send()      # the journal's records of this dispatch, in one write
        # What the application sent goes out first (the order path), then the bookkeeping.
        self.flush()
        if not batch.depth and batch.dirty:
            batch.flush_dirty(ready)               # this flush wrote no record: before_send once
        # The application has handled what it was given: now the target number may reach
        # the store (a crash before this re-asks the peer: at least once).
        try:
            self.store.commit()
        except Exception:  # noqa: BLE001
            self._session_error("commit")
        self._schedule_timer()

    def _pump_events(self) -> None:
        engine = self.engine
        need_data = engine.NEED_DATA
        session = self.session
        # Application messages, the bulk, skip the handler table (unless a subclass engine
        # replaced their handler): the same work as _on_app_message and dispatch_app_message,
        # inline, their counts kept in locals and added once per pump.
        on_message: Any = getattr(engine.app, "on_message", None)
        app_fast = on_message is not None and engine.handlers.get("AppMessageReceived") is _on_app_message
        app_event = engine.AppMessageReceived
        app_in = 0
        msg: Message        # native: msg.msg_type is a native read
        batch: SendBatch = engine.batch
        most: int = engine.limits.max_events_per_pump
        try:
            for _ in range(most):
                try:
                    # an application message accepted in sequence comes as its
                    # Message, with no event object made for it (Session.next_item)
                    event = session.next_item()
                except Exception:  # noqa: BLE001 - a session bug must not end the process
                    log.exception("%s: session error; dropping the connection", self.key)
                    if self.conn is not None:
                        self.conn.close("internal session error", abort=True)
                    return
                if event is need_data:
                    return
                if type(event) is Message:    # type(): no attribute lookup
                    if not app_fast:          # a replaced handler: the handler table, with its event
                        self._dispatch(app_event(message=event, poss_dup=event.get(43) == "Y"))
                        continue
                    msg = event
                elif app_fast and type(event) is app_event:
                    msg = event.message
                else:
                    self._dispatch(event)
                    continue
                app_in += 1
                if batch.dirty and msg.msg_type in _MARKET_DATA:
                    # Order flow first: what earlier messages of this chunk made (a fill's
                    # ExecutionReport to the OMS) leaves now, not after the market data.
                    batch.flush_dirty()
                try:
                    on_message(self, msg)
                except Exception as exc:  # noqa: BLE001 - answered with 35=j, counted
                    answer_app_error(self, msg, exc, engine.errors)
                if app_in % FLUSH_EVERY == 0 and batch.dirty:
                    batch.flush_dirty()        # a long chunk: what it made so far leaves now
            engine.loop.call_soon(self.pump)   # more to do: let other sessions run first
        finally:
            if app_in:
                counters = self._counters
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
        that is queued goes in one write (the session joins its frames). Held sends are
        released into the session first (``SendBatch``)."""
        if self._held_sends:
            self._release_held()
        conn = self.conn
        session = self.session
        # Nothing queued (most calls: the end of a pump whose input made no answer on this
        # session): return before reading the connection's flags (interpreted attributes).
        if conn is None or not session.output_pending or conn.closing:
            return
        pulls = 0
        while not (conn.paused and pulls):      # paused: one pull per call keeps the session's queue small
            try:
                frames = session.frames_to_send()
            except OSError:                     # the store could not write: nothing left unstored
                self._session_error("data_to_send (the message store could not write)")
                return
            if not frames:
                break
            data = b"".join(frames) if len(frames) > 1 else frames[0]
            if not self._write(data, frames, len(data)):
                break
            pulls += 1

    def write_out(self, data: bytes) -> bool:
        """Bytes the session produced, onto the socket now: the one place they leave
        (counters, message log, outbound limit). A subclass that delays or diverts bytes
        (the simulator's injected latency) calls this when they are due. False: not
        written (no connection) or the connection was closed over the outbound limit."""
        # The frames found by their BodyLength (no scan of the bytes), for the count and the log.
        frames: list[bytes] = []
        end = walk_frames(data, frames) if COMPILED else 0     # interpreted: bytes.count's search is cheaper
        return self._write(data, frames, end)

    def _write(self, data: bytes, frames: list[bytes], end: int) -> bool:
        """``write_out`` with ``data`` walked (``walk_frames``: ``frames``, ``end``); ``flush``
        comes here with the session's own frames, joined."""
        conn = self.conn
        if conn is None or conn.closing:
            return False
        transport = conn.transport
        if transport is None:
            return False
        transport.write(data)
        self._bytes_out += len(data)
        self._messages_out += len(frames) if end == len(data) else data.count(b"\x0110=")
        slog = self.slog
        if slog is not None:               # the log's stamp is the time sent: one clock read
            self._last_sent_wall = slog.wire_walked(b"OUT", data, frames, end)
        else:
            self._last_sent_wall = float(self.engine.wall())
        size = transport.get_write_buffer_size()
        limit = self._max_outbound
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
            self._session_error(fn.__name__)

    def _session_error(self, where: str) -> None:
        """In an ``except`` block: the Session raised in ``where``; log it, drop the connection."""
        log.exception("%s: session error in %s; dropping the connection", self.key, where)
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
    ns._counters["logons"] += 1
    ns._counters["messages_in"] += 1
    ns._times["last_logon_at"] = ns.engine.wall()
    ns.logged_on_event.set()
    ns.event(f"logged on (reset={getattr(event, 'reset', False)})")
    log.info("%s: logged on (%s)", ns.key, ns.conn.peer if ns.conn else "?")
    call_app(ns.engine.app, "on_logon", ns.engine.errors, ns)


def _on_app_message(ns: NativeSession, event: Any) -> None:
    ns._counters["app_in"] += 1
    ns._counters["messages_in"] += 1
    dispatch_app_message(ns.engine.app, ns, event.message, ns.engine.errors)


def _on_admin_message(ns: NativeSession, event: Any) -> None:
    ns._counters["messages_in"] += 1
    t = event.message.msg_type
    if t == "0":
        ns._times["last_heartbeat_at"] = ns.engine.wall()
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


HANDLERS: Final[dict[str, Any]] = {   # event class name -> handler(ns, event); an engine may replace entries
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

