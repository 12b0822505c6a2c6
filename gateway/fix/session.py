"""Session: the FIX session layer as a state machine with no I/O (h11's ``Connection``).

Bytes and clock ticks go in, bytes and events come out:

    session.receive_data(data)             # b"" = the peer closed
    while (ev := session.next_event()) is not NEED_DATA: handle(ev)
    sock.send(session.data_to_send())      # call again while it returns bytes (resends stream)
    at session.next_deadline(): session.on_timer(), then next_event()/data_to_send() again

Behaviour is QuickFIX's (Session.cpp: next, verify, nextLogon, nextResendRequest,
nextSequenceReset, doTargetTooHigh/Low, doPossDup, generateReject) and the FIX session test
cases in ``gateway/apps/certify/scenarios/fix44``. Where we differ, on purpose:
- before a Logon is accepted, any fault (bad CompID, SendingTime, BeginString, a garbled
  frame, a first message that is not a Logon) disconnects without a word: the peer is not
  yet known, and an answer would consume a sequence number;
- a ResendRequest whose own MsgSeqNum is too high is answered at once (as QuickFIX) *and*
  queued, so the gap it is part of closes when the resend arrives;
- messages queued ahead of a gap are capped (``max_out_of_order``); the excess is dropped,
  which is safe because our ResendRequest says EndSeqNo=0 (everything).

Beyond the README's interface: ``output_pending`` (data_to_send() has more: a resend still
streaming), ``logged_on``, ``heartbeat_s`` (the interval in force), and the store's
``sync()`` (called from on_timer, for FileStore's fsync="interval").

Invariants:
- next_event() never raises for what the peer sent: answers (Reject, Logout,
  ResendRequest, Heartbeat) are queued as bytes and an event tells the driver.
- Every message we send goes through ``_emit``: stamped with the next sender number,
  saved in the store before it is queued for the wire; a store that defers its writes
  (FileStore(defer=True)) is flushed by data_to_send() before the bytes are returned, so
  a record is in the kernel before its bytes can reach the socket.
- The expected target number moves only when a message is accepted in sequence, on a
  Reject of the expected message (QuickFIX: the number is consumed), or by SequenceReset.
  Garbled frames never move it.
- Output order: bytes queued before a resend, then the resend (streamed from the store,
  ``max_resend_bytes`` per data_to_send() call), then what was sent meanwhile.
- Every loop is bounded (by the input buffered, the queue cap or the resend range).

Compiled with mypyc when built (gateway/common/accel.py; the .py file is the fallback):
``Session`` is a native class (no new attributes, no monkeypatching), the settings the
fast path reads are copied into typed attributes once, and the store is a ``Store``
(store.py: MemoryStore, FileStore or a subclass, as the simulator's): compiled in the same
group, the per-message reads and calls on it (next_sender_seq, save, next_target_seq,
advance_target) are native.
"""
from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Final

from gateway.common.clock import MONOTONIC, Clock, MonotonicClock
from gateway.fix import events as ev
from gateway.fix.codec import (Framer, Message, encode, parse, parse_utc_timestamp, seal,
                               seq_number, utc_timestamp)
from gateway.fix.dictionary import Dictionary
from gateway.fix.errors import (COMPID_PROBLEM, INVALID_MSGTYPE, REJECT_TEXT, REQUIRED_TAG_MISSING,
                                SENDING_TIME_ACCURACY, VALUE_OUT_OF_RANGE, FixError, GarbledMessage,
                                LocalFixError, RemoteFixError)
from gateway.fix.events import NEED_DATA
from gateway.fix.settings import SessionSettings

from gateway.fix.store import Store

DISCONNECTED: Final = "DISCONNECTED"
AWAIT_LOGON: Final = "AWAIT_LOGON"      # acceptor: connected, no Logon accepted yet
LOGON_SENT: Final = "LOGON_SENT"        # initiator: our Logon is out, waiting for the answer
ACTIVE: Final = "ACTIVE"
RESENDING: Final = "RESENDING"          # logged on, waiting for the peer to fill a gap we asked for
LOGOUT_SENT: Final = "LOGOUT_SENT"
CLOSED: Final = "CLOSED"                # Disconnect returned; waiting for connection_lost()

LOGGED_ON_STATES: Final = frozenset((ACTIVE, RESENDING, LOGOUT_SENT))

ADMIN_TYPES: Final = frozenset("012345A")
# FIX 4.4 StandardHeader tags (used when re-stamping a stored message for a resend).
HEADER_TAGS = frozenset((8, 9, 35, 49, 56, 115, 128, 90, 91, 34, 50, 142, 57, 143, 116, 144, 129,
                         145, 43, 97, 52, 122, 212, 213, 347, 369, 627, 628, 629, 630))
TRAILER_TAGS = frozenset((93, 89, 10))
SOH: Final = "\x01"


# AppMessageReceived built with its slots set through their descriptors (events.py says
# why), inline on the fast path: one event per application message received.
_APP: Final = ev.AppMessageReceived
_new_app: Final = ev._new_app
_set_message: Final = ev._set_message
_set_poss_dup: Final = ev._set_poss_dup


def _pairs_text(pairs: Iterable[tuple[int, object]]) -> str:
    """Body text of admin messages in tag order, as QuickFIX writes them (strict scripts)."""
    return "".join(f"{t}={v}{SOH}" for t, v in sorted(pairs, key=lambda p: p[0]))


def _header_fields(pairs: list[tuple[int, str]],
                   ) -> tuple[str | None, str | None, str | None, str | None]:
    """MsgSeqNum (34), SenderCompID (49), TargetCompID (56), SendingTime (52) of a message,
    each its first occurrence, in one walk of the fields: compiled, cheaper than four
    lookups, and no index built (the application builds one if it reads by tag)."""
    seq: str | None = None
    sender: str | None = None
    target: str | None = None
    sent: str | None = None
    for tag, value in pairs:
        if tag == 34:
            if seq is None:
                seq = value
        elif tag == 49:
            if sender is None:
                sender = value
        elif tag == 56:
            if target is None:
                target = value
        elif tag == 52:
            if sent is None:
                sent = value
    return seq, sender, target, sent


def _int_or_none(text: str | None) -> int | None:
    if text is None or not text.isdigit():
        return None
    return int(text)


class Session:
    """One FIX session (one pair of CompIDs), across reconnects: the store keeps the numbers."""

    def __init__(self, settings: SessionSettings, store: Store, dictionary: Dictionary | None = None,
                 clock: Clock = MONOTONIC, wall: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.key: str = settings.key
        self._store = store
        self._dict = dictionary
        self._clock = clock
        self._wall = wall
        self._initiator: bool = settings.role == "initiator"
        s = settings
        # The constant header text, built once: _emit adds 9=, 35=, 34= and 52= per message
        # (8=, 9=, 35=, 34=, 49=, 52=, 56=, as QuickFIX orders them).
        self._begin: str = s.begin_string
        self._hdr_begin = f"8={s.begin_string}{SOH}9="
        self._hdr_mid = f"{SOH}49={s.sender_comp_id}{SOH}52="
        self._hdr_end = f"{SOH}56={s.target_comp_id}{SOH}"
        # BodyLength counts from 35= to the last SOH: the constant part of it
        self._hdr_len: int = len("35=") + 1 + len("34=") + len(self._hdr_mid) + len(self._hdr_end)
        self._precision: int = s.timestamp_precision
        self._persist: bool = s.persist_messages
        self._data_tags: dict[int, int] | None = dictionary.data_tags if dictionary is not None else None
        # the real clock's now() is perf_counter: called directly, one call less per message
        self._now: Callable[[], float] = (time.perf_counter if type(clock) is MonotonicClock
                                          else clock.now)
        # The checks of the in-sequence fast path (_fast_app), resolved once.
        self._their_id: str = s.target_comp_id
        self._our_id: str = s.sender_comp_id
        self._check_comp_id: bool = s.check_comp_id
        self._check_latency: bool = s.check_latency
        self._max_latency_s: float = s.max_latency_s
        self._validating: bool = s.validate_messages and dictionary is not None
        self._v_order: bool = s.validate_fields_out_of_order
        self._v_values: bool = s.validate_fields_have_values
        self._v_user: bool = s.validate_user_defined_fields
        self._v_unknown: bool = s.allow_unknown_msg_fields
        self.state: str = DISCONNECTED
        self.heartbeat_s: int = s.heartbeat_s
        self._schedule = s.schedule           # None: always in session, never reset by time
        self.schedule_resets = 0              # store resets at a new session instance (status)
        self.last_received_at: float = clock.now()
        self.last_sent_at: float = self.last_received_at
        self._reset_connection()

    # -- status ------------------------------------------------------------------------------

    @property
    def next_sender_seq(self) -> int:
        return self._store.next_sender_seq

    @property
    def next_target_seq(self) -> int:
        return self._store.next_target_seq

    @property
    def logged_on(self) -> bool:
        return self.state in LOGGED_ON_STATES

    @property
    def output_pending(self) -> bool:
        """True while data_to_send() has more to give (a resend still streaming)."""
        return bool(self._out or self._resends or self._held)

    # -- connection life ---------------------------------------------------------------------

    def _reset_connection(self) -> None:
        self._framer = Framer(data_tags=self._data_tags) if self._data_tags is not None else Framer()
        self._events: deque[Any] = deque()
        self._out: list[bytes] = []
        self._held: list[bytes] = []          # sent while a resend streams: goes out after it
        self._resends: deque[Iterator[bytes]] = deque()
        self._queue: dict[int, Message] = {}  # received ahead of a gap, by MsgSeqNum
        self._resend_range: tuple[int, int] | None = None   # what we asked the peer for
        self._pending_logon: Message | None = None
        self._reset_flag = False              # the pending Logon resets the numbers
        self._sent_logout = False
        self._logout_text = ""                # why we logged out (the peer's answer may say nothing)
        self._sent_reset = False
        self._test_requests = 0               # our unanswered timer TestRequests
        self._eof = False
        self._logon_deadline: float | None = None
        self._logout_deadline: float | None = None
        self._garbled_seen = 0

    def connection_made(self) -> None:
        self._reset_connection()
        now = self._clock.now()
        self.last_received_at = self.last_sent_at = now
        self._logon_deadline = now + self.settings.logon_timeout_s
        self._events.append(ev.Connected(session_key=self.key))
        if self._schedule is not None:
            self._new_instance_reset()
            if self._initiator and not self._schedule.is_logon_time(self._wall()):
                self.state = LOGON_SENT          # so that _disconnect applies; nothing was sent
                self._disconnect("outside the session schedule: not logging on")
                return
        if self._initiator:
            self.heartbeat_s = self.settings.heartbeat_s
            reset = self.settings.reset_on_logon
            if reset:
                self._store.reset()
            self._sent_reset = reset
            pairs = [(98, "0"), (108, self.heartbeat_s), *self.settings.logon_fields]
            if reset:
                pairs.append((141, "Y"))
            self._send_admin("A", pairs)
            self.state = LOGON_SENT
        else:
            self.state = AWAIT_LOGON

    def connection_lost(self) -> None:
        """The socket is gone (either side closed it). Idempotent."""
        was_logged_on = self.logged_on
        if self.state != DISCONNECTED:
            if self.settings.reset_on_disconnect:
                self._store.reset()
        self._reset_connection()
        self.state = DISCONNECTED
        if was_logged_on:
            self._events.append(ev.LoggedOut(reason="connection lost"))

    def _disconnect(self, reason: str) -> None:
        """Tell the driver to close now (after writing what is queued)."""
        if self.state in (CLOSED, DISCONNECTED):
            return
        if self.logged_on:
            self._events.append(ev.LoggedOut(reason=reason))
        if self.settings.reset_on_disconnect:
            self._store.reset()
        self.state = CLOSED
        self._queue.clear()
        self._pending_logon = None
        self._events.append(ev.Disconnect(reason=reason))

    # -- input -------------------------------------------------------------------------------

    def receive_data(self, data: bytes) -> None:
        if not data:
            self._eof = True
        self._framer.feed(data)

    def next_event(self) -> Any:
        """One event, or NEED_DATA. Processes at most the input already received."""
        item = self.next_item()
        if isinstance(item, Message):      # three native calls, no Python frame for a helper
            event = _new_app(_APP)
            _set_message(event, item)
            _set_poss_dup(event, item.get(43) == "Y")
            return event
        return item

    def next_item(self) -> Any:
        """``next_event()`` for a driver with a fast path: an application message accepted
        in sequence comes as its ``Message`` itself, not wrapped in an AppMessageReceived
        (poss_dup: its ``get(43) == "Y"``); anything else as next_event() gives it: one
        event, or NEED_DATA. The order path's receive makes no event object."""
        events = self._events
        # Bounded: each turn consumes one queued message or one frame of buffered input.
        while not events:
            state = self.state
            if state == CLOSED or state == DISCONNECTED or self._pending_logon is not None:
                return NEED_DATA
            if self._queue:
                queued = self._queue.pop(self._store.next_target_seq, None)
                if queued is not None:
                    self._process_queued(queued)
                    continue
            framer = self._framer
            frame = framer.next_message()
            if framer.garbled != self._garbled_seen:
                self._check_garbled()
            if frame is None:
                if events:
                    break
                if self._eof and self.state != CLOSED and self.state != DISCONNECTED:
                    self._disconnect("peer closed the connection")
                    continue
                return NEED_DATA
            msg = self._on_frame(frame)
            if msg is not None:
                return msg             # the fast path's message; nothing was queued before it
        return events.popleft()

    def _check_garbled(self) -> None:
        garbled = self._framer.garbled
        if garbled != self._garbled_seen:
            self._garbled_seen = garbled
            if not self.logged_on and self.state != LOGON_SENT:
                self._disconnect("garbled data before logon")

    def _on_frame(self, frame: bytes) -> Message | None:
        """Parse and process one frame: the in-sequence application message accepted by the
        fast path (no event queued, for the caller to return), or None (events queued, or
        nothing to tell)."""
        try:
            msg = parse(frame, self._data_tags) if self._data_tags is not None else parse(frame)
        except GarbledMessage:
            # Bad CheckSum / BodyLength: ignored, no number consumed (FIX test cases 2d, 3b).
            if self.state == AWAIT_LOGON:
                self._disconnect("garbled message before logon")
            return None
        except FixError:
            # A field that is not tag=value: QuickFIX's "Message parse error", ignored like a
            # bad CheckSum, number not consumed (test 2d). Before logon: disconnect.
            if self.state == AWAIT_LOGON:
                self._disconnect("ill-formed message before logon")
            return None
        t = msg.msg_type
        if self.state == ACTIVE and t not in ADMIN_TYPES and self._fast_app(msg, t):
            return msg
        self._process(msg, t)
        return None

    # -- dispatch (QuickFIX Session::next(const Message&)) -------------------------------------

    def _process_queued(self, msg: Message) -> None:
        """A message that arrived ahead of a gap, now in sequence (checked when it came)."""
        t = msg.msg_type
        if t == "A" or t == "2":                  # already answered when it arrived
            self._advance_target()
            return
        self._dispatch(msg, t)

    def _process(self, msg: Message, t: str) -> None:
        if not self._prechecks(msg, t):
            return
        if self._validating:
            try:
                self._validate(msg)
            except GarbledMessage:
                return
            except RemoteFixError as e:
                if not self.logged_on:
                    self._disconnect(f"invalid {t or 'message'} before logon: {e}")
                    return
                self._reject_error(msg, e)
                return
        self._dispatch(msg, t)

    def _validate(self, msg: Message) -> None:
        """The dictionary's checks, as the settings ask (only when validating)."""
        d = self._dict
        assert d is not None
        d.validate(msg, check_fields_out_of_order=self._v_order,
                   check_fields_have_values=self._v_values,
                   check_user_defined_fields=self._v_user,
                   allow_unknown_msg_fields=self._v_unknown)

    def _fast_app(self, msg: Message, t: str) -> bool:
        """The common case in one pass: a valid application message carrying the expected
        number, no gap open. The same checks as _prechecks + _validate + _verify, side
        effects only once all passed (True: accepted, the target number advanced); False
        (nothing done) sends the message down the general path, which checks everything
        again and answers what is wrong."""
        store = self._store
        if self._queue or self._resend_range is not None or not t:
            return False
        shape = msg.shape
        values = msg.values
        if shape is not None and values is not None:   # the layout knows where they are
            k = shape.seq_at
            seq_text = values[k] if k >= 0 else None
            k = shape.sender_at
            sender = values[k] if k >= 0 else None
            k = shape.target_at
            target = values[k] if k >= 0 else None
            k = shape.sent_at
            sent = values[k] if k >= 0 else None
            begin = values[0]
        else:
            pairs = msg.pairs
            seq_text, sender, target, sent = _header_fields(pairs)
            begin = pairs[0][1]
        seq = seq_number(seq_text)
        if seq is None or seq != store.next_target_seq:
            return False
        if begin != self._begin:     # parse put BeginString first
            return False
        if self._check_comp_id:
            if sender != self._their_id or target != self._our_id:
                return False
        elif sender is None or target is None:
            return False
        if self._validating:
            d = self._dict
            assert d is not None
            # plainly valid (one positional native call); else the careful checks
            if not d.plainly_valid(msg):
                try:
                    self._validate(msg)
                except FixError:
                    return False
        if self._check_latency and not self._good_sending_time(sent):
            return False
        self.last_received_at = self._now()
        self._test_requests = 0
        store.advance_target(seq + 1)      # in memory: the driver commits after the application
        return True

    def _prechecks(self, msg: Message, t: str) -> bool:
        """BeginString, CompIDs present, Logon first. False: handled (answered or dropped)."""
        if msg.get(8) != self._begin:
            if not self.logged_on:
                self._disconnect(f"BeginString {msg.get(8)!r} before logon")
            elif t == "5":
                self._on_logout(msg)
            elif not self._sent_logout:
                # QuickFIX: Logout "Incorrect BeginString", the number consumed (test 2i, 13a).
                if msg.seq_num == self._store.next_target_seq:
                    self._advance_target()
                self._start_logout("Incorrect BeginString")
            return False
        if self.state == LOGON_SENT and t == "5":
            # Our Logon refused: the peer's Text is the reason; it closes the connection anyway.
            self._events.append(ev.AdminMessageReceived(message=msg))
            self._disconnect(f"logon refused: {msg.get(58) or 'no reason given'}")
            return False
        if not self.logged_on and t != "A":
            self._disconnect(f"first message is not a Logon (35={t})")
            return False
        for tag in (49, 56):
            if tag not in msg:
                if not self.logged_on:
                    self._disconnect(f"Logon without tag {tag}")
                else:
                    self._reject(msg.seq_num, t, REQUIRED_TAG_MISSING, tag)
                return False
        return True

    def _dispatch(self, msg: Message, t: str) -> None:
        if t == "A":
            self._on_logon(msg)
        elif t == "0":
            if self._verify(msg):
                self._advance_target()
                self._events.append(ev.AdminMessageReceived(message=msg))
        elif t == "1":
            self._on_test_request(msg)
        elif t == "2":
            self._on_resend_request(msg)
        elif t == "3":
            if self._verify(msg):
                self._advance_target()
                self._events.append(ev.AdminMessageReceived(message=msg))
        elif t == "4":
            self._on_sequence_reset(msg)
        elif t == "5":
            self._on_logout(msg)
        else:
            if self._dict is None and not t:
                self._reject(msg.seq_num, t, INVALID_MSGTYPE, None)
                return
            if self._verify(msg):
                self._advance_target()
                self._events.append(ev.AppMessageReceived(message=msg, poss_dup=msg.poss_dup))

    # -- verify (QuickFIX Session::verify) ---------------------------------------------------

    def _verify(self, msg: Message, check_high: bool = True, check_low: bool = True) -> bool:
        """CompIDs, SendingTime, then the sequence number. True: process the message."""
        if not self._good_time(msg):
            self._reject(msg.seq_num, msg.msg_type, SENDING_TIME_ACCURACY, None)
            self._start_logout()
            return False
        if not self._good_comp_ids(msg):
            self._reject(msg.seq_num, msg.msg_type, COMPID_PROBLEM, None)
            self._start_logout()
            return False
        seq = msg.seq_num
        if check_high or check_low:
            if seq is None:
                self._reject(None, msg.msg_type, REQUIRED_TAG_MISSING, 34)
                return False
            expected = self._store.next_target_seq
            if check_high and seq > expected:
                self._target_too_high(msg, seq)
                return False
            if check_low and seq < expected:
                self._target_too_low(msg, seq, expected)
                return False
        self.last_received_at = self._clock.now()
        self._test_requests = 0
        return True

    def _good_time(self, msg: Message) -> bool:
        return self._good_sending_time(msg.get(52)) if self._check_latency else True

    def _good_sending_time(self, text: str | None) -> bool:
        """SendingTime (52) within max_latency_s of our clock (checked: check_latency)."""
        try:
            sent = parse_utc_timestamp(text or "")
        except ValueError:
            return False
        return abs(self._wall() - sent) <= self._max_latency_s

    def _good_comp_ids(self, msg: Message) -> bool:
        if not self._check_comp_id:
            return True
        return msg.get(49) == self._their_id and msg.get(56) == self._our_id

    def _target_too_high(self, msg: Message, seq: int) -> None:
        """Queue it (capped) and ask for the gap, unless a request already covers it."""
        if len(self._queue) < self.settings.max_out_of_order or seq in self._queue:
            self._queue[seq] = msg
        rng = self._resend_range
        if rng is not None and not self.settings.send_redundant_resend_requests and seq >= rng[0]:
            return
        self._send_resend_request(self._store.next_target_seq, seq - 1)

    def _send_resend_request(self, begin: int, last_missing: int) -> None:
        chunk = self.settings.resend_chunk_size
        end = 0 if not chunk or last_missing - begin + 1 <= chunk else begin + chunk - 1
        self._send_admin("2", [(7, begin), (16, end)])
        self._resend_range = (begin, end or last_missing)
        if self.state == ACTIVE:
            self.state = RESENDING
        self._events.append(ev.GapDetected(begin=begin, end=end))

    def _target_too_low(self, msg: Message, seq: int, expected: int) -> None:
        if not msg.poss_dup:
            text = f"MsgSeqNum too low, expecting {expected} but received {seq}"
            self._send_logout(text)
            self._disconnect(text)
            return
        # PossDup of something we have: ignored, unless 122 is missing or later than 52.
        if msg.msg_type == "4":
            return
        orig = msg.get(122)
        if orig is None:
            self._reject(seq, msg.msg_type, REQUIRED_TAG_MISSING, 122)
            return
        try:
            late = parse_utc_timestamp(orig) > parse_utc_timestamp(msg.get(52) or "")
        except ValueError:
            late = True
        if late:
            self._reject(seq, msg.msg_type, SENDING_TIME_ACCURACY, None)
            self._start_logout()

    def _advance_target(self) -> None:
        # In memory until the driver commits, after the application has the message (store.py)
        self._set_target(self._store.next_target_seq + 1, deferred=True)

    def _set_target(self, n: int, *, deferred: bool = False) -> None:
        if deferred:
            self._store.advance_target(n)
        else:
            self._store.set_next_target(n)
        rng = self._resend_range
        if rng is not None and n > rng[1]:
            self._resend_range = None
            if self.state == RESENDING:
                self.state = ACTIVE
            self._events.append(ev.ResendCompleted())
        queue = self._queue
        if queue:
            for seq in [q for q in queue if q < n]:   # bounded by the queue cap
                del queue[seq]
            # Still a hole below what we hold (a chunked request, or a request answered
            # only in part): ask for the rest, once.
            if queue and n not in queue and self._resend_range is None:
                self._send_resend_request(n, min(queue) - 1)

    # -- admin messages ----------------------------------------------------------------------

    def _on_logon(self, msg: Message) -> None:
        reset = msg.get(141) == "Y"
        if self.logged_on:
            if not reset or self._sent_logout:
                self._disconnect("Logon received while logged on")
                return
            # Mid-session Logon with 141=Y (test 22): both numbers back to 1, answered with 141=Y.
            self._store.reset()
            self._drop_resends()
            self._accept(msg, reset=True)
            return
        if not (self._good_time(msg) and self._good_comp_ids(msg)):
            self._disconnect("Logon with a wrong CompID or SendingTime")
            return
        if self._schedule is not None and not self._schedule.is_logon_time(self._wall()):
            # QuickFIX: "Logon outside of valid logon time", disconnected without an answer
            # (a Logout would consume a number of an instance that is over or not begun).
            self._disconnect("logon refused: outside the session schedule "
                             f"({self._schedule.describe()})")
            return
        hb = _int_or_none(msg.get(108))
        if hb is None:
            self._disconnect("Logon without a valid HeartBtInt (108)")
            return
        if self.settings.refresh_on_logon and hasattr(self._store, "refresh"):
            self._store.refresh()
        if reset and not self._sent_reset:
            self._store.reset()
        elif not self._initiator and self.settings.reset_on_logon:
            self._store.reset()
            reset = True
        seq = msg.seq_num
        if seq is None:
            self._disconnect("Logon without MsgSeqNum")
            return
        expected = self._store.next_target_seq
        if seq < expected and not reset:
            text = f"MsgSeqNum too low, expecting {expected} but received {seq}"
            self._send_logout(text)
            self._disconnect(text)
            return
        if self._initiator:
            self._accept(msg, reset=reset or self._sent_reset)
        else:
            self.heartbeat_s = hb
            self._pending_logon = msg
            self._reset_flag = reset
            self._events.append(ev.LogonReceived(message=msg))

    def accept_logon(self) -> None:
        """Acceptor: answer the pending Logon (the driver checked the peer's credentials)."""
        msg = self._pending_logon
        if msg is None:
            raise LocalFixError("accept_logon() without a pending Logon")
        self._pending_logon = None
        self._accept(msg, reset=self._reset_flag)

    def refuse_logon(self, text: str = "") -> None:
        """Acceptor: answer the pending Logon with a Logout(58=text) and disconnect."""
        if self._pending_logon is None:
            raise LocalFixError("refuse_logon() without a pending Logon")
        self._pending_logon = None
        self._send_logout(text)
        self._disconnect(f"logon refused: {text}")

    def _accept(self, msg: Message, *, reset: bool) -> None:
        """QuickFIX nextLogon after verify: answer (acceptor, or a reset we did not ask for),
        then count the Logon or, if its number is too high, ask for the gap."""
        self.last_received_at = self._clock.now()
        self._test_requests = 0
        if not self._initiator or (msg.get(141) == "Y" and not self._sent_reset):
            if not self._initiator:
                self.heartbeat_s = _int_or_none(msg.get(108)) or 0
            pairs = [(98, "0"), (108, self.heartbeat_s)]
            if msg.get(141) == "Y":
                pairs.append((141, "Y"))
            self._send_admin("A", pairs)
        self._sent_reset = False
        self._logon_deadline = None
        self.state = ACTIVE
        self._events.append(ev.LoggedOn(session_key=self.key, reset=reset))
        seq = msg.seq_num or 0
        if seq > self._store.next_target_seq and msg.get(141) != "Y":
            self._target_too_high(msg, seq)
        else:
            self._advance_target()

    def _on_test_request(self, msg: Message) -> None:
        if not self._verify(msg):
            return
        self._send_admin("0", [(112, msg.get(112, ""))])
        self._advance_target()
        self._events.append(ev.AdminMessageReceived(message=msg))

    def _on_sequence_reset(self, msg: Message) -> None:
        gap_fill = msg.get(123) == "Y"
        if not self._verify(msg, gap_fill, gap_fill):
            return
        new = _int_or_none(msg.get(36))
        expected = self._store.next_target_seq
        if new is None:
            self._reject(msg.seq_num, "4", REQUIRED_TAG_MISSING, 36)
        elif new > expected:
            self._set_target(new)
        elif new < expected:
            # QuickFIX: reason 5 without a ref tag, number not consumed (test 11c).
            self._reject(msg.seq_num, "4", VALUE_OUT_OF_RANGE, None)
            return
        self._events.append(ev.AdminMessageReceived(message=msg))

    def _on_logout(self, msg: Message) -> None:
        if not self._verify(msg, False, False):
            return
        if not self._sent_logout:
            self._send_logout("")
        if msg.seq_num == self._store.next_target_seq:
            self._advance_target()
        if self.settings.reset_on_logout:
            self._store.reset()
        self._events.append(ev.AdminMessageReceived(message=msg))
        self._disconnect(msg.get(58) or self._logout_text or "logout")

    def _on_resend_request(self, msg: Message) -> None:
        """Answer from the store, streamed; count the request if it is in sequence."""
        if not self._verify(msg, False, False):
            return
        begin = _int_or_none(msg.get(7))
        end = _int_or_none(msg.get(16))
        if begin is None or end is None:
            self._reject(msg.seq_num, "2", REQUIRED_TAG_MISSING, 7 if begin is None else 16)
            return
        last = self._store.next_sender_seq - 1
        if end == 0 or end > last:
            end = last
        begin = max(begin, 1)
        if begin <= end:
            self._resends.append(self._resend_stream(begin, end))
        seq = msg.seq_num or 0
        expected = self._store.next_target_seq
        if seq == expected:
            self._advance_target()
        elif seq > expected:
            self._target_too_high(msg, seq)    # answered now, counted when the gap fills
        self._events.append(ev.AdminMessageReceived(message=msg))

    # -- resend streaming --------------------------------------------------------------------

    def _resend_stream(self, begin: int, end: int) -> Iterator[bytes]:
        """Stored app messages re-stamped (43=Y, 122), admin runs and holes as GapFills."""
        persist = self.settings.persist_messages
        gap_start: int | None = None
        expect = begin
        if persist:
            for seq, wire in self._store.load_range(begin, end):
                if seq != expect and gap_start is None:
                    gap_start = expect
                expect = seq + 1
                msg = self._parse_stored(wire)
                if msg is None or msg.msg_type in ADMIN_TYPES:
                    if gap_start is None:
                        gap_start = seq
                    continue
                if gap_start is not None:
                    yield self._gap_fill(gap_start, seq)
                    gap_start = None
                yield self._restamp(seq, msg)
        if gap_start is None and expect <= end:
            gap_start = expect
        if gap_start is not None:
            yield self._gap_fill(gap_start, end + 1)

    def _parse_stored(self, wire: bytes) -> Message | None:
        try:
            return parse(wire, self._data_tags) if self._data_tags is not None else parse(wire)
        except FixError:
            return None      # a record we cannot read is gap-filled, never resent broken

    def _poss_dup_header(self, seq: int, orig_time: str, extra: list[tuple[int, str]]) -> str:
        now = self._now_text()
        pairs = [(34, seq), (43, "Y"), (49, self.settings.sender_comp_id), (52, now),
                 (56, self.settings.target_comp_id), (122, orig_time or now), *extra]
        return _pairs_text(pairs)

    def _gap_fill(self, seq: int, new_seq: int) -> bytes:
        header = self._poss_dup_header(seq, "", [])
        return self._encode("4", header, f"36={new_seq}{SOH}123=Y{SOH}")

    def _restamp(self, seq: int, msg: Message) -> bytes:
        extra: list[str] = []
        body: list[str] = []
        skip = (8, 9, 35, 34, 43, 49, 52, 56, 122)
        for tag, value in msg.pairs:
            if tag in TRAILER_TAGS or tag in skip:
                continue
            (extra if tag in HEADER_TAGS else body).append(f"{tag}={value}{SOH}")
        extra_pairs = [(int(x.split("=", 1)[0]), x.split("=", 1)[1][:-1]) for x in extra]
        header = self._poss_dup_header(seq, msg.get(52) or "", extra_pairs)
        return self._encode(msg.msg_type, header, "".join(body))

    def _encode(self, msg_type: str, header: str, body: str) -> bytes:
        self.last_sent_at = self._clock.now()
        return encode(self._begin, msg_type, header, body)

    def _drop_resends(self) -> None:
        self._resends.clear()
        if self._held:
            self._out.extend(self._held)
            self._held.clear()

    # -- output ------------------------------------------------------------------------------

    def _now_text(self) -> str:
        return utc_timestamp(self._wall(), self._precision)

    def _emit(self, msg_type: str, body: str, extra_header: str = "") -> int:
        """Stamp, encode, store (os.write), queue. The one way a new message leaves us."""
        # The order path: native attribute reads and calls, one f-string, seal, one store write.
        store = self._store
        seq = store.next_sender_seq
        number = str(seq)
        stamp = utc_timestamp(self._wall(), self._precision)
        length = (self._hdr_len + len(msg_type) + len(number) + len(stamp) + len(extra_header)
                  + len(body))
        wire = seal(f"{self._hdr_begin}{length}{SOH}35={msg_type}{SOH}34={number}{self._hdr_mid}"
                    f"{stamp}{self._hdr_end}{extra_header}{body}")
        if self._persist:
            store.save(seq, wire)          # in the kernel before data_to_send() returns these bytes
        else:
            store.set_next_sender(seq + 1)
        (self._held if self._resends else self._out).append(wire)
        self.last_sent_at = self._now()
        return seq

    def _send_admin(self, msg_type: str, pairs: Iterable[tuple[int, object]]) -> int:
        return self._emit(msg_type, _pairs_text(pairs))

    def _send_logout(self, text: str) -> None:
        self._send_admin("5", [(58, text)] if text else [])
        self._sent_logout = True

    def _start_logout(self, text: str = "") -> None:
        """Send our Logout and wait logout_timeout_s for the answer."""
        if self._sent_logout:
            return
        self._send_logout(text)
        self._logout_text = text
        self.state = LOGOUT_SENT
        self._logout_deadline = self._clock.now() + self.settings.logout_timeout_s

    def _reject(self, ref_seq: int | None, ref_type: str, reason: int, ref_tag: int | None,
                text: str | None = None) -> None:
        """Session Reject (35=3); QuickFIX's fields, order and number consumption."""
        # QuickFIX's fixed wording per reason, so scripted peers match 58= exactly.
        text = REJECT_TEXT.get(reason) or text or ""
        pairs: list[tuple[int, object]] = []
        if ref_seq is not None:
            pairs.append((45, ref_seq))
        pairs.append((58, text))
        if ref_tag is not None and (ref_tag != 0 or reason == 0):
            pairs.append((371, ref_tag))
        if ref_type:
            pairs.append((372, ref_type))
        pairs.append((373, reason))
        self._send_admin("3", pairs)
        if ref_type not in ("A", "4") and ref_seq is not None and ref_seq == self._store.next_target_seq:
            self._advance_target()
        self._events.append(ev.RejectSent(ref_seq_num=ref_seq, reason=reason, text=text))

    def _reject_error(self, msg: Message, e: RemoteFixError) -> None:
        reason = e.reject_reason if e.reject_reason is not None else 99
        self._reject(msg.seq_num, msg.msg_type, reason, e.ref_tag, text=e.text)

    def data_to_send(self) -> bytes:
        """Queued bytes; a streaming resend gives at most max_resend_bytes per call."""
        frames = self.frames_to_send()
        if not frames:
            return b""
        return b"".join(frames) if len(frames) > 1 else frames[0]

    def frames_to_send(self) -> list[bytes]:
        """``data_to_send()`` as the list of its frames, in order ([]: nothing queued): the
        driver writes their join and logs them one a line with no search for where each
        frame begins. The caller owns the list."""
        out = self._out
        if self._resends:
            budget = self.settings.max_resend_bytes
            size = 0
            while self._resends and size < budget:
                stream = self._resends[0]
                for wire in stream:
                    out.append(wire)
                    size += len(wire)
                    if size >= budget:
                        break
                else:
                    self._resends.popleft()
            if not self._resends and self._held:
                out.extend(self._held)
                self._held.clear()
        if not out:
            return []
        # The store's deferred records (FileStore(defer=True): a dispatch's sends in one
        # os.write) reach the OS before these bytes can reach the socket. If that write
        # fails it raises here and the bytes stay queued: none leaves unstored.
        self._store.flush()
        self._out = []
        return out

    # -- the driver's commands ---------------------------------------------------------------

    def send(self, msg_type: str, body: str, *, extra_header: str = "") -> int:
        """An application message; returns its MsgSeqNum. body: preformatted 'tag=value\\x01'."""
        if self.state not in (ACTIVE, RESENDING):
            raise LocalFixError(f"{self.key}: not logged on ({self.state})")
        if msg_type in ADMIN_TYPES:
            raise LocalFixError(f"35={msg_type} is a session message: the session sends those")
        return self._emit(msg_type, body, extra_header)

    def send_test_request(self, test_req_id: str) -> None:
        if self.state not in (ACTIVE, RESENDING):
            raise LocalFixError(f"{self.key}: not logged on ({self.state})")
        self._send_admin("1", [(112, test_req_id)])

    def logout(self, text: str = "") -> None:
        if self.state in (ACTIVE, RESENDING):
            self._start_logout(text)
        elif self.state in (AWAIT_LOGON, LOGON_SENT):
            self._disconnect(text or "logout before logon")

    def set_next_sender_seq(self, n: int) -> None:
        self._store.set_next_sender(n)

    # -- schedule (QuickFIX Session::checkSessionTime / isLogonTime) ----------------------------

    def in_schedule(self) -> bool:
        """A logon may happen (or stay up) now: no schedule, or inside its logon window."""
        return self._schedule is None or self._schedule.is_logon_time(self._wall())

    def next_schedule_change(self) -> float | None:
        """Wall-clock time (UTC epoch s) of the next schedule boundary; None without a schedule."""
        return None if self._schedule is None else self._schedule.next_boundary(self._wall())

    def check_schedule(self) -> None:
        """Apply the schedule now (the driver calls it at each boundary; on_timer does too):
        logged on past the logout time, or into a new session instance -> Logout; not
        connected at the start of a new instance -> the store is reset (numbers back to 1)."""
        sched = self._schedule
        if sched is None:
            return
        now = self._wall()
        if self.state in (ACTIVE, RESENDING):
            if not sched.is_logon_time(now):
                self._start_logout("end of session")
            elif not sched.same_session(now, self._store.creation_time):
                self._start_logout("new session instance: sequence numbers reset")
        elif self.state == DISCONNECTED:
            self._new_instance_reset()

    def _new_instance_reset(self) -> None:
        """Inside a session instance the store was not created in: reset it (seq 1)."""
        sched, now = self._schedule, self._wall()
        if sched is None:
            return
        if sched.session_start(now) is not None and not sched.same_session(now, self._store.creation_time):
            self._store.reset()
            self.schedule_resets += 1

    def set_next_target_seq(self, n: int) -> None:
        self._set_target(n)

    # -- timers (QuickFIX Session::next()) ---------------------------------------------------

    def next_deadline(self) -> float | None:
        if self.state in (CLOSED, DISCONNECTED):
            return None
        if self._logon_deadline is not None and not self.logged_on:
            return self._logon_deadline
        # Called after every batch of input: the earliest of at most four times, no list.
        at = self._logout_deadline
        logged_on = self.state in LOGGED_ON_STATES
        if self._schedule is not None and logged_on and not self._sent_logout:
            # the schedule's next boundary, on the monotonic scale the driver's timer uses
            change = self._schedule.next_boundary(self._wall())
            t = self._clock.now() + max(change - self._wall(), 0.0)
            at = t if at is None or t < at else at
        hb = self.heartbeat_s
        if hb > 0 and logged_on:
            if self._test_requests == 0:
                t = self.last_sent_at + hb
                at = t if at is None or t < at else at
            t = self.last_received_at + hb * 1.2 * (self._test_requests + 1)
            at = t if at is None or t < at else at
        return at

    def on_timer(self) -> None:
        sync = getattr(self._store, "sync", None)
        if sync is not None:
            sync()
        now = self._clock.now()
        if self.state in (CLOSED, DISCONNECTED):
            return
        if not self.logged_on:
            if self._logon_deadline is not None and now >= self._logon_deadline:
                self._disconnect("timed out waiting for logon")
            return
        if self._logout_deadline is not None and now >= self._logout_deadline:
            self._disconnect("timed out waiting for logout response")
            return
        if self._schedule is not None:
            self.check_schedule()
            if self._sent_logout:
                return
        hb = self.heartbeat_s
        if hb <= 0:
            return
        silent = now - self.last_received_at
        if silent >= hb * 2.4 - 1e-9:
            self._disconnect("timed out waiting for heartbeat")
        elif silent >= hb * 1.2 * (self._test_requests + 1) - 1e-9:
            self._send_admin("1", [(112, "TEST")])
            self._test_requests += 1
        elif now - self.last_sent_at >= hb - 1e-9 and self._test_requests == 0:
            self._send_admin("0", [])
