"""The order journal: every order event, written before it is applied or sent, replayed on start.

quickfix's FileStores keep the sequence numbers and the messages; this journal keeps what
only the gateway knows: which venue order belongs to which OMS order, and what happened
to it. Each record is one line, appended on an O_APPEND file descriptor, in the call that
decides it, before the commands it explains are returned (the edge sends them after
``GatewayCore.handle`` returns).

When records reach the kernel (group commit, issue 12 round 4). Outside the native engine's
dispatch of received input (timers, admin calls, the kill switch, the quickfix backend,
start-up and recovery, a ``Journal`` nobody grouped) each line is written with its own
``os.write`` before the call returns. While the native engine dispatches a received chunk
(``group_with(batch)``, wired by the gateway process: ``batch.depth`` > 0), lines are held in
memory and ``flush`` writes them all with ONE ``os.write``; the engine calls it
(``SendBatch.before_send``, gateway/fix/drive.py) before it stores or writes any message: sends
to another session than the one read are held whole until then, the read session's own
sends wait for it one by one, and it runs when the dispatch ends even if nothing is sent. So a
burst of orders in one chunk is one journal write, then the FIX stores' writes, then one
socket write per session, in that order.

What a crash can lose:
- SIGKILL or any crash of the process: only held lines, i.e. records of the chunk being
  dispatched at that instant. Nothing those records explain was stored in a FIX store or sent:
  the venue never got the NewOrderSingle, the OMS never got the ExecutionReport or reject,
  and the session's target sequence number is committed after the dispatch (``store.commit``
  in ``NativeSession.pump``), so on restart the peer is asked again (ResendRequest) for the
  messages of that chunk and they are handled anew. Lines already flushed are in the kernel and
  survive. So an order is either journaled before any ExecutionReport or venue NewOrderSingle
  for it was stored or left, or it was never acknowledged to anyone (the OMS resends it,
  PossDup, and it is handled as new: its ClOrdID is not known). The same holds for a fill: its
  ``venue_report`` is in the file before the OMS's ExecutionReport is stored or sent, or the
  venue is asked for it again. (Journaling before the FIX store matters: a message stored but
  not sent is resent from the store after a restart when the peer asks.)
- SIGKILL after a dispatch's records were written and before its sends were stored: the
  records survive, the reports they made for the OMS do not, and the peer's re-sent chunk is
  then a repeat (its ExecIDs are known). So a dispatch's records are written between two marks,
  ``["dispatch"]`` and ``["dispatched"]`` (``DispatchMark``; lines without a record number, in
  the same writes), and replay hands back as ``undelivered`` the OMS reports of every record of
  a dispatch the file stops in or right after, not only the last record's; the hub re-sends
  them marked PossResend (97=Y) when the OMS logs on. Some may have left before the crash: the
  OMS sees their ExecIDs again, flagged. (Found by the chaos run: a venue chunk of six reports,
  a SIGKILL between the write and the sends, three orders the OMS never saw acknowledged.) The
  end mark goes with the dispatch's last write; a dispatch whose last write came before its
  end (a send of the session read flushed the journal mid-chunk) leaves its end mark to the
  next line written.
- A power cut or kernel crash: also the page cache's last lines (no fsync per order, by
  choice, for latency; the FileStores may lose theirs the same way): then orders sent may be
  missing from the journal, and the venue's order status answers at reconnection are what is
  left.
- A write that fails (disk full, I/O error): ``flush`` raises OSError and keeps the lines
  held (written first by the next flush or write); the engine then stores and sends no
  application message (held sends stay held, a direct send returns False; session messages
  go on) until a flush succeeds, and from then on ``write`` holds nothing and raises at once
  as outside a dispatch (the hub refuses the event, nothing booked): a broken disk halts the
  order flow, with one dispatch's records and sends waiting in memory, none sent unwritten. An exception
  in a handler mid-chunk changes nothing of this: the records of the events handled before it
  (and of the failed one, if the hub wrote it before the failure, as the hub's
  compute-journal-apply-send order keeps it consistent) are written at the dispatch's end like
  the others, in the order they were made.
Cost (issue 12, round 4): one ``os.write`` of a 300-byte line is about 4,600 instructions and a
system call. ``benchmarks/bench_journal.py`` (compiled, CPU per ``accepted`` record, median of 9
runs of 20,000, load ~3 on 2 cores): written at once 3.40-3.49 us, held and written 4 per
``os.write`` 3.04 us, 16 per write 2.77 us. In the gateway under load (``fixgw bench profile
--orders 10000``, window 50; system calls counted with ``strace -y -e trace=write``), the
journal's writes fell from 2.00 per order to 0.04 (402 writes for 10,000 orders): a received
chunk holds ~50 orders. The FIX stores' saves (one per message) are now the gateway's only
per-message file writes.

Record format (one line, issue 12): a JSON array ``[kind, n, utc, mono, <the record's fields>]``,
e.g. ``["cancel_reject", 12, "2026-12-01T14:56:54.123456Z", 8812.5, "G7", "too late", 8812.5]``.
``kind`` is a word; each kind is a dataclass below (a value, never changed), registered with
its word after the classes (``_register``), and its fields IN DATACLASS ORDER are the
positions: that order, defined once by the dataclass, is what the writer and replay both use
(``_LAYOUT``). Nested values (``OrderIntent``, ``VenueExecutionReport``, found from the
field's type; ``ChildOrder`` lists, named at registration) are arrays in their own dataclass
field order. Replay maps positions back to field names and checks every length: a record of
the wrong length is unreadable (reported and skipped), never misread. Changing a record
class's fields therefore changes the format: add a new kind word (or a reader for the old
layout) rather than reorder fields of a kind already written. ``utc`` is the wall time (text
formatted once a second, microseconds appended), ``mono`` the monotonic time to the
microsecond (replay does not read it). JSON is written with ``ensure_ascii``: every line is
ASCII and ``python -m json.tool`` reads it; any str a FIX field may carry (bytes decoded as
latin-1, lone surrogates from surrogateescape) round-trips as ``\\uXXXX`` escapes. The writer
builds the text itself (json's own C string escaper for str; for floats the shortest exact
text, json's, from whole nanoseconds when the float is a clock reading, ``repr`` otherwise,
prices and quantities cached), the two kinds written per order from fixed templates: the
bytes ``json.dumps`` writes (mono aside), which tests/core/test_journal.py checks with
awkward text and numbers.

The two compact kinds (issue 12, round 8): the order path's two records, ``accepted`` and
``venue_report``, are written as ``accepted2`` and ``venue_report2`` when they fit, flat arrays
with a shorter header, ``[kind, n, wall, <fields>]``: ``wall`` is the wall clock in whole
nanoseconds since the epoch (an integer, ``time.time_ns``; an injected wall clock's text is
written instead), and
there is no monotonic time (the record's ``at`` is the core's clock reading). Times (``at``, the
intent's ``received_at``) are whole nanoseconds, integers: a record fits only when both are
clock readings that ``ns / 1e9`` gives back exactly (``_clock_ns``). Positions (``_ACCEPTED2``,
``_VENUE_REPORT2``): first the texts that repeat order after order, then the rest.
- ``accepted2``: ``oms_session, symbol, side, ord_type, tif, ex_destination, venue, policy,
  cl_ord_id, qty, price, received_at, order_id, venue_id, reason, at``: an order routed to ONE
  venue order whose quantity, price (same type and value, not a zero), type and time in force
  are the intent's (every DMA order): the child is written once, as the intent.
- ``venue_report2``: ``venue, exec_type, ord_status, cl_ord_id, orig_cl_ord_id, exec_id,
  cum_qty, leaves_qty, avg_px, last_qty, last_px, venue_order_id, text, at``.
A record that does not fit (several venue orders, a child that differs, a time that is not a
clock reading, an int where a float was) is written in its full kind as before; both are read
back as the same ``Accepted`` / ``VenueReport``, so replay, ``read_records``, compaction and
the tools see no difference, and journals written before this round replay unchanged. The
writer builds each compact line in ONE string build, the repeated texts one piece kept from the
previous record (compared field by field; a cache by value behind it), the quantities and
prices compared with the previous record's at the same place before the cache by value.

Compiled with mypyc when built (gateway/common/accel.py), with this file as the pure-Python
fallback: the record classes are then native (hence no class decorator), and the templates
read the nested fields typed (native reads): a ``float`` field of a compiled class holds a
C double (an int given to it is converted when the object is made, so json sees the same
float), while a ``float | None`` field keeps the object it was given (an int stays an int:
json writes ``7``, not ``7.0``), so those are read into an ``object`` local, never unboxed.

Cost (``benchmarks/profile_gateway.py --stub``, gateway Python per order, NOS in + ER out; six
runs each on 2 shared cores, load average 0.5-1.7, so noisy): the object format with
``dataclasses.fields`` per value and ``datetime.strftime`` per record took medians 156-210 us
(median of the six 174 us); this format 127-167 us (143 us). The profiled self time of this
module per order (inflated by the profiler) fell from 71-116 us to 21-34 us. Writing the
text by hand instead of ``json.dumps`` halved it again: the ``accepted`` and ``venue_report``
lines of one order took 117,000 machine instructions, then about 62,000 (callgrind).
Compiled with mypyc, with the clock-reading shortcut for floats (issue 12, this round;
callgrind, machine instructions per record through ``write``, the stub profile's values,
times from ``time.perf_counter``): ``accepted`` 64,000 -> 30,500 (pure 55,400),
``venue_report`` 45,300 -> 22,600 (pure 41,600), ``cancel`` (the generic writer) 45,000 ->
23,900 (pure 45,900). ``benchmarks/bench_journal.py``, CPU per record written, one run:
``accepted`` 9.3-10.2 -> 4.3 us, ``venue_report`` 6.6-7.0 -> 3.1 us. The whole stubbed
order path (``stub_orders`` of profile_gateway.py under callgrind): 385,000 -> 334,000
instructions per order compiled, 390,000 -> 379,000 pure. Issue 12, round 3: the order path
writes its two records with ``write_accepted`` / ``write_venue_report`` (no record object, no
keyword dict), text that repeats (session, symbol, side, venue, policy) escaped once, the
wall-clock and monotonic seconds formatted once a second: callgrind, both records through
``write``, 51,800 -> 39,100 instructions per order (os.write's ~4,600 each included).
Round 5: clock floats from a cached seconds text and digit tables (``_float_text``), zeros
without ``repr``, the header's UTC text made in the same string, the numbers read typed (they
were read untyped: a generic attribute lookup each, ~12 per order): callgrind, the stubbed
order path (difference of 200 and 2,200 orders, compiled), ``write_accepted`` 24,200 ->
20,400 and ``write_venue_report`` 18,600 -> 15,100 instructions per order.
Round 6: the header in one string build from both clocks read as whole nanoseconds (no float
arithmetic, no module attribute read to tell the default clocks from injected ones), the
accepted record of one venue order in one build (intent and child inline); same bytes:
callgrind, stubbed order path (difference of 200 and 2,200 orders), ``_head`` 8,760 -> 7,030
for the two records, ``write_accepted`` 20,300 -> 18,400, ``write_venue_report`` 15,000 ->
14,100. What is left is mostly the string building itself (mypyc's ``CPyStr_Build`` costs
~90 instructions per piece: a header of 9 pieces ~900) and one call per value (``_num``
~420, ``_time`` ~860, json's escaper ~500 per id): fewer pieces per line (an integer
nanosecond header, say) is a format change, not made here.
Round 8: the compact kinds (above); callgrind, the stubbed order path (``fixgw bench profile
--stub --callgrind``, inclusive count / 2,400, compiled): ``write_accepted`` 15,070 -> 8,000 and
``write_venue_report`` 13,760 -> 9,640 instructions per order (the whole stubbed order path
130,800 -> 119,100; the gateway process, ``profile_gateway.py`` 2,500 minus 500 orders / 4,000,
grouped writes: 14,340 -> ~9,200 and 12,970 -> ~7,600, the process 177,400 -> 163,200). Tried and dropped: the wall clock as microseconds from a per-second text
and the digit table (as ``utc``): 1,800 instructions against ~1,050 for ``str`` of the integer.
What is left per record: the one string build (~2,000), ``os.write``'s call (~1,000 when not
grouped), json's escaper for the ids that are not ours (~400 each), the record number and the
times as ``str`` of an int (~330 each).

Invariants:
- replay is TOTAL: any file the gateway wrote replays. A line that does not parse (a torn
  last line), an unknown kind, or a record the order manager cannot apply is counted,
  logged with its line number, and skipped; replay never raises for the file's content;
- replay drives the same ``OrderManager`` methods as the live path with the recorded ids
  and timestamps and keeps their outputs only to hand back what the LAST record asked to
  tell the OMS (the hub writes a record before it sends; one that is followed by another
  was sent, see ``ReplayResult.undelivered``);
- the older formats still replay: JSON objects keyed by field name (the format before this
  one: ``{"kind": "accepted", "n": 12, "utc": ..., "mono": ..., <field>: <value>}``) and the
  first format (JSON arrays with one-letter kinds, ``_LEGACY``).

Compaction (``Journal.compact``, asked for by ``GatewayCore.compact`` at a safe point: no
cancel or replace of an open order in flight, no report waiting for an OMS session): one
``snapshot`` record (every order of the day with its venue orders, as ``OrderManager`` holds
them; the ExecIDs seen on live venue orders; the OMS cancels and replaces of ended orders the
venue has not answered yet, so their answers still reach the OMS after a restart; the
kill-switch and suspension states in force; the counters) is
written to ``<journal>.tmp`` and fsynced, the old file is hard-linked to ``<journal>.1``
(the previous ``.1`` is replaced; ``keep_old=False`` removes it instead), and the new file
is renamed over the journal, so a crash at any step leaves a journal that replays to the
same state. Replaying a ``snapshot`` replaces the order manager's state with it. Positions
and PnL are rebuilt from the venue orders' fills as before, so done orders stay in the
snapshot (one entry per order instead of one line per event); a new trading day may drop
them with ``keep_done=False``, at the cost of the day's positions.
"""
from __future__ import annotations

import dataclasses
import errno
import json
import logging
import operator
import os
import time
import typing
from dataclasses import dataclass, field
from math import copysign
from pathlib import Path
from typing import Any, Callable, Final, Iterator, cast

from gateway.common.clock import DIGITS3, SecondText
from gateway.core.model import ChildOrder, OrderIntent
from gateway.core.orders import OrderManager, RejectOmsCancel, ReportToOms, VenueExecutionReport

log = logging.getLogger("gateway.core.journal")
_dumps: Final = json.JSONEncoder(separators=(",", ":"), ensure_ascii=True).encode
_esc: Final = json.encoder.encode_basestring_ascii     # json's own (C) string writer: "...", \uXXXX escapes


# ------------------------------------------------------------ the record kinds

KINDS: dict[str, type] = {}        # kind word -> record class (filled by _register)
KIND_OF: dict[type, str] = {}      # record class -> kind word
_HEAD = 4                          # [kind, n, utc, mono, *fields]
# record class -> its fields in dataclass order: (name, nested dataclass or None, a list of them?)
_LAYOUT: dict[type, tuple[tuple[str, type | None, bool], ...]] = {}
_ROW: dict[type, Callable[[Any], tuple]] = {}    # nested dataclass -> its values in field order
# record class -> what the writer needs per field: (getter, nested row getter or None, a list of them?)
_WRITER: dict[type, tuple[tuple[Callable[[Any], Any], Callable[[Any], tuple] | None, bool], ...]] = {}
_KIND_TEXT: dict[type, str] = {}   # record class -> its kind word as JSON text


def _row_of(cls: type) -> Callable[[Any], tuple]:
    if cls not in _ROW:
        get = operator.attrgetter(*(f.name for f in dataclasses.fields(cls)))
        _ROW[cls] = get if len(dataclasses.fields(cls)) > 1 else (lambda v: (get(v),))
    return _ROW[cls]


def _register(word: str, cls: type, lists: dict[str, type] | None = None) -> None:
    """Register a record class under its kind word. Its line layout is its dataclass fields in
    order (nested dataclasses, and lists of them, as arrays in their own field order): the one
    definition the writer and replay both use. ``lists`` names the fields that are lists of a
    nested dataclass, with its class: a class compiled by mypyc keeps ``list`` in its
    annotations but not the item type (the pure module checks the two agree)."""
    hints = typing.get_type_hints(cls)
    layout: list[tuple[str, type | None, bool]] = []
    for f in dataclasses.fields(cls):
        t, item = hints[f.name], (lists or {}).get(f.name)
        args = typing.get_args(t) if typing.get_origin(t) is list else ()
        if args and (args[0] if dataclasses.is_dataclass(args[0]) else None) is not item:
            raise RuntimeError(f"journal: {cls.__name__}.{f.name} is {t}, registered as a list of {item}")
        if item is not None:
            layout.append((f.name, item, True))
        elif isinstance(t, type) and dataclasses.is_dataclass(t):
            layout.append((f.name, t, False))
        else:
            layout.append((f.name, None, False))
    KINDS[word], KIND_OF[cls], _LAYOUT[cls] = cls, word, tuple(layout)
    _WRITER[cls] = tuple((operator.attrgetter(name), None if nested is None else _row_of(nested), many)
                         for name, nested, many in layout)
    _KIND_TEXT[cls] = _esc(word)


@dataclass(slots=True, kw_only=True)
class Accepted:
    intent: OrderIntent
    order_id: str
    children: list[ChildOrder]
    venue_ids: list[str]
    policy: str = ""
    reason: str = ""
    at: float = 0.0


@dataclass(slots=True, kw_only=True)
class Rejected:
    intent: OrderIntent
    order_id: str
    text: str
    reason: int
    at: float = 0.0


@dataclass(slots=True, kw_only=True)
class VenueReport:
    report: VenueExecutionReport
    at: float = 0.0


@dataclass(slots=True, kw_only=True)
class Cancel:
    session: str
    cl_ord_id: str
    orig_cl_ord_id: str
    venue_ids: list[str]
    at: float = 0.0


@dataclass(slots=True, kw_only=True)
class CancelAll:
    text: str
    venue_ids: list[str]
    session: str | None = None        # None: every open order (the kill switch)
    at: float = 0.0


@dataclass(slots=True, kw_only=True)
class Replace:
    session: str
    new: OrderIntent
    orig_cl_ord_id: str
    venue_id: str
    at: float = 0.0


@dataclass(slots=True, kw_only=True)
class Retry:
    order_id: str
    spec: ChildOrder
    venue_id: str
    at: float = 0.0


@dataclass(slots=True, kw_only=True)
class RemainderDone:
    order_id: str
    text: str | None = None
    at: float = 0.0


@dataclass(slots=True, kw_only=True)
class CancelRejected:
    venue_cl_ord_id: str
    text: str
    at: float = 0.0


@dataclass(slots=True, kw_only=True)
class SendFailed:
    venue_cl_ord_id: str
    text: str
    at: float = 0.0


@dataclass(slots=True, kw_only=True)
class RiskState:
    """A kill-switch trip or reset (or one session's suspension): a restart must not quietly resume."""
    state: str
    reason: str
    by: str
    session: str | None = None
    at: float = 0.0


@dataclass(slots=True, kw_only=True)
class DayEnded:
    """Open Day orders end: ``venue``'s session ended (expired there), or (None) the configured
    day end: expired at once on ``down_venues``, a cancel per live venue order elsewhere (ids
    in ``venue_ids``), each order expired when its venue confirms."""
    text: str
    venue: str | None = None
    venue_ids: list[str] = field(default_factory=list)
    down_venues: list[str] = field(default_factory=list)
    at: float = 0.0


@dataclass(slots=True, kw_only=True)
class Snapshot:
    """The whole order state at a safe point: the first record of a compacted journal."""
    orders: list = field(default_factory=list)        # export_order() of every order kept
    aliases: list = field(default_factory=list)       # [session, ClOrdID, order_id]: replaced/cancel ids
    exec_ids: list = field(default_factory=list)      # [venue, venue ClOrdID, ExecID] of live venue orders
    owed: list = field(default_factory=list)          # OrderManager.owed_answers(): ended orders' open requests
    risk_states: list = field(default_factory=list)   # RiskState fields in force (firm, per session)
    counts: dict = field(default_factory=dict)
    at: float = 0.0


@dataclass(slots=True, kw_only=True)
class Stopped:
    """A clean stop: everything before it was sent."""
    at: float = 0.0


@dataclass(slots=True, kw_only=True)
class DispatchMark:
    """Where one dispatch of received input begins (``["dispatch"]``) or ends
    (``["dispatched"]``) among the records it made (lines without a record number). Its sends
    are released only when it ends, after its last record is written; so a file that stops
    inside a dispatch or right after one may hold records none of whose OMS reports left
    (replay: ``undelivered``)."""
    end: bool = False


# the kind words (a class decorator would make the classes non-native when compiled with mypyc)
_register("accepted", Accepted, lists={"children": ChildOrder})
_register("rejected", Rejected)
_register("venue_report", VenueReport)
_register("cancel", Cancel)
_register("cancel_all", CancelAll)
_register("replace", Replace)
_register("retry", Retry)
_register("remainder_done", RemainderDone)
_register("cancel_reject", CancelRejected)
_register("send_failed", SendFailed)
_register("risk_state", RiskState)
_register("day_ended", DayEnded)
_register("snapshot", Snapshot)
_register("stopped", Stopped)
KIND_OF[DispatchMark] = "dispatch"      # written as its own line (DISPATCH / DISPATCHED), not by layout


def _encode(value: Any) -> Any:
    """A dataclass as a JSON object by field name (snapshot contents; the old record format)."""
    if dataclasses.is_dataclass(value):
        return {f.name: _encode(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, list):
        return [_encode(v) for v in value]
    return value


def _build(cls: type, obj: dict) -> Any:
    """``cls(**obj)`` by field name; unknown keys are ignored, missing ones take their defaults."""
    names = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: v for k, v in obj.items() if k in names})


def _from_row(cls: type, row: Any) -> Any:
    """A nested dataclass from its array: positions mapped to field names, the length checked."""
    names = [f.name for f in dataclasses.fields(cls)]
    if not isinstance(row, list) or len(row) != len(names):
        raise ValueError(f"{cls.__name__}: expected an array of {len(names)} values, got {row!r:.80}")
    return cls(**dict(zip(names, row)))


def _many(value: Any) -> list:
    if not isinstance(value, list):
        raise ValueError(f"expected an array, got {value!r:.80}")
    return value


def _from_array(rec: list) -> Any:
    """``[kind, n, utc, mono, *fields]`` -> its record dataclass, by the kind's layout."""
    cls = KINDS[rec[0]]
    layout = _LAYOUT[cls]
    if len(rec) != _HEAD + len(layout):
        raise ValueError(f"{rec[0]}: {len(rec) - _HEAD} fields, expected {len(layout)} "
                         f"({', '.join(name for name, *_ in layout)})")
    fields = {}
    for (name, nested, many), v in zip(layout, rec[_HEAD:]):
        if nested is not None:
            v = [_from_row(nested, x) for x in _many(v)] if many else _from_row(nested, v)
        fields[name] = v
    return cls(**fields)


def _from_object(obj: dict) -> Any:
    """The issue-13 format: ``{"kind": ..., <field>: <value>}``, nested records as objects by name."""
    cls = KINDS[obj["kind"]]
    fields = {}
    for name, nested, many in _LAYOUT[cls]:
        if name not in obj:
            continue
        v = obj[name]
        if nested is not None:
            v = [_build(nested, x) for x in _many(v)] if many else _build(nested, v)
        fields[name] = v
    return cls(**fields)


def decode(obj: Any) -> Any:
    """A parsed journal line (any format) -> its record dataclass. Raises if it is not one."""
    if isinstance(obj, dict):
        return _from_object(obj)
    if isinstance(obj, list) and obj and isinstance(obj[0], str) and len(obj[0]) > 1:
        kind = obj[0]
        if kind == ACCEPTED2:
            return _from_accepted2(obj)
        if kind == VENUE_REPORT2:
            return _from_venue_report2(obj)
        if kind == DISPATCH or kind == DISPATCHED:
            return DispatchMark(end=kind == DISPATCHED)
        return _from_array(obj)
    if isinstance(obj, list):
        return _legacy(obj)
    raise ValueError(f"not a record: {obj!r:.80}")


# The two compact kinds of the order path (issue 12, round 8): see the module docstring. Their
# positions, after ``[kind, n, wall`` (no monotonic time in the header: the record's ``at`` is one):
_HEAD2 = 3
ACCEPTED2: Final = "accepted2"
_ACCEPTED2 = ("oms_session", "symbol", "side", "ord_type", "tif", "ex_destination", "venue", "policy",
              "cl_ord_id", "qty", "price", "received_at", "order_id", "venue_id", "reason", "at")
VENUE_REPORT2: Final = "venue_report2"
DISPATCH: Final = "dispatch"              # ``[DISPATCH]``, ``[DISPATCHED]``: DispatchMark (no number)
DISPATCHED: Final = "dispatched"
_DISPATCH_LINE: Final = b'["dispatch"]\n'
_DISPATCHED_LINE: Final = b'["dispatched"]\n'
_VENUE_REPORT2 = ("venue", "exec_type", "ord_status", "cl_ord_id", "orig_cl_ord_id", "exec_id", "cum_qty",
                  "leaves_qty", "avg_px", "last_qty", "last_px", "venue_order_id", "text", "at")


def _seconds(v: Any) -> float:
    """A compact record's time: whole nanoseconds (an int) -> the float seconds it was written from."""
    if type(v) is not int:
        raise ValueError(f"expected whole nanoseconds, got {v!r:.40}")
    return v / 1e9


def _from_accepted2(rec: list) -> Accepted:
    """``[ACCEPTED2, n, wall, *_ACCEPTED2]`` -> the ``Accepted`` it was written from (one venue
    order with the intent's quantity, price, type and time in force)."""
    if len(rec) != _HEAD2 + len(_ACCEPTED2):
        raise ValueError(f"{ACCEPTED2}: {len(rec) - _HEAD2} fields, expected {len(_ACCEPTED2)}")
    (session, symbol, side, ord_type, tif, ex, venue, policy, cl_ord_id, qty, price, received, order_id, venue_id,
     reason, at) = rec[_HEAD2:]
    intent = OrderIntent(session, cl_ord_id, symbol, side, qty, ord_type, price, tif, ex, _seconds(received))
    return Accepted(intent=intent, order_id=order_id, children=[ChildOrder(venue, qty, price, ord_type, tif)],
                    venue_ids=[venue_id], policy=policy, reason=reason, at=_seconds(at))


def _from_venue_report2(rec: list) -> VenueReport:
    """``[VENUE_REPORT2, n, wall, *_VENUE_REPORT2]`` -> the ``VenueReport`` it was written from."""
    if len(rec) != _HEAD2 + len(_VENUE_REPORT2):
        raise ValueError(f"{VENUE_REPORT2}: {len(rec) - _HEAD2} fields, expected {len(_VENUE_REPORT2)}")
    values = dict(zip(_VENUE_REPORT2, rec[_HEAD2:]))
    at = _seconds(values.pop("at"))
    return VenueReport(report=VenueExecutionReport(**values), at=at)


_D3: Final[tuple[str, ...]] = DIGITS3   # "000".."999", a typed static when compiled (no module dict read)
_UTC: Final = SecondText()              # "<date>T<time of day>." of the current second
_time_ns: Final = time.time_ns          # the header's clocks as statics when compiled (no module dict read)
_monotonic_ns: Final = time.monotonic_ns
_MONO: Final = SecondText()             # "<monotonic seconds>." of the current second


def utc_now() -> str:
    """UTC time as ISO text to the microsecond (truncated); the date and time of day formatted
    once a second, the microseconds from whole nanoseconds (no float arithmetic, no format)."""
    ns = time.time_ns()
    s = ns // 1_000_000_000
    last_sec, text = _UTC.pair
    if s != last_sec:
        text = time.strftime("%Y-%m-%dT%H:%M:%S.", time.gmtime(s))
        _UTC.pair = (s, text)
    us = (ns - s * 1_000_000_000) // 1000
    return f"{text}{_D3[us // 1000]}{_D3[us % 1000]}Z"


class Journal:
    """Append-only writer. ``write`` raises ``OSError`` if the record did not reach the kernel."""

    def __init__(self, path: str | Path, wall: Callable[[], str] = utc_now,
                 mono: Callable[[], float] = time.monotonic) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._wall: Callable[[], str] = wall
        self._mono: Callable[[], float] = mono
        # the default clocks, kept to tell them from injected ones (``_head``) without a module read
        self._std_wall: Callable[[], str] = utc_now
        self._std_mono: Callable[[], float] = time.monotonic
        self.next_n = _count_lines(self.path) + 1
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        self._fd: int | None = fd
        if not _ends_with_newline(self.path):
            os.write(fd, b"\n")            # a torn last line must not swallow the next record
        self.records_written = 0
        # Group commit (see the module docstring): while ``_group.depth`` is > 0 (the native
        # engine's SendBatch: a received chunk is being dispatched) lines are held here and
        # ``flush`` writes them with one os.write; None: every line is written at once.
        self._group: Any = None
        self._held: list[bytes] = []
        self._dispatching = False        # a dispatch's "dispatch" mark is held or written, its end's not
        self._end_owed = False           # a dispatch ended with nothing left to write: its end mark
                                         # goes before the next line
        self.group_writes = 0            # os.write calls that carried held lines (flush)
        self.write_failures = 0          # flushes that raised (the lines stay held)
        self._failing = False            # the last flush raised: hold nothing new, write (and raise) at once

    def group_with(self, group: Any) -> None:
        """Hold lines while ``group.depth`` > 0 (an object with an int ``depth``: the native
        engine's ``SendBatch``); whoever runs the group must call ``flush`` before anything a
        held line explains is stored or sent (the engine's ``SendBatch.before_send`` hook).
        ``None``: write every line at once again (after writing what is held)."""
        if group is None:
            self.flush()
        self._group = group

    def flush(self) -> None:
        """Write the held lines, in order, with one ``os.write`` (more only if the kernel takes
        part of it). Raises ``OSError`` if they did not all reach the kernel: what was not
        written stays held, first in line for the next flush or write."""
        held = self._held
        if self._dispatching:
            group = self._group
            if group is None or not group.depth:      # the dispatch is over: its sends follow
                self._dispatching = False
                if held:
                    held.append(_DISPATCHED_LINE)
                else:                                 # no line to carry the mark: the next one will
                    self._end_owed = True
        if not held:
            return
        fd = self._fd
        if fd is None:
            raise OSError("journal is closed")
        data = held[0] if len(held) == 1 else b"".join(held)
        held.clear()
        self.group_writes += 1
        done = 0
        try:
            for _ in range(64):        # a regular file takes it all at once unless the disk fills part way
                done += os.write(fd, data[done:] if done else data)
                if done >= len(data):
                    self._failing = False
                    return
            raise OSError(errno.EIO, f"journal write stopped after {done} of {len(data)} bytes")
        except OSError:
            held.append(data[done:] if done else data)
            self.write_failures += 1
            self._failing = True
            raise

    @property
    def held(self) -> int:
        """Records' lines held, not yet written (a failed flush's rest counts as one)."""
        return sum(1 for line in self._held if line is not _DISPATCH_LINE and line is not _DISPATCHED_LINE)

    def _put(self, line: bytes, fd: int) -> None:
        """One record's line: held while the group dispatches, else written now (after any held).
        After a failed flush nothing new is held: this line's write raises at once while the held
        ones cannot be written (the hub then refuses the event, nothing booked), so only one
        dispatch's records (and the sends they explain) wait for the disk."""
        if self._end_owed:
            self._end_owed = False
            line = _DISPATCHED_LINE + line
        group = self._group
        if group is not None and group.depth and not self._failing:
            if not self._dispatching:
                self._held.append(_DISPATCH_LINE)
                self._dispatching = True
            self._held.append(line)
        elif self._held:                 # a failed flush left lines: they go first, this one after
            self.flush()
            os.write(fd, line)
        else:
            os.write(fd, line)

    def write(self, record: object) -> int:
        """Append one record; returns its number ``n``."""
        fd = self._fd
        if fd is None:
            raise OSError("journal is closed")
        n = self.next_n
        self._put(self._line(record, n), fd)
        self.next_n = n + 1
        self.records_written += 1
        return n

    # The two records every order writes, without making the record object first: the line is
    # the one ``write(Accepted(...))`` / ``write(VenueReport(...))`` writes (the same template
    # functions; tests/core/test_journal.py checks both ways agree). A value the template does
    # not expect (TypeError) goes through the record and the generic writer, as in ``_line``.

    def write_accepted(self, intent: OrderIntent, order_id: str, children: list, venue_ids: list,
                       policy: str, reason: str, at: Any, plain_ids: bool = False) -> int:
        """``write(Accepted(intent=..., order_id=..., ...))``; returns the record's ``n``.
        ``plain_ids``: the order's and venue orders' ids need no JSON escaping (the hub's
        ``IdGen`` says so of its ids): written between quotes as they are."""
        fd = self._fd
        if fd is None:
            raise OSError("journal is closed")
        n = self.next_n
        try:
            line = self._accepted_line(n, intent, order_id, children, venue_ids, policy, reason, at, plain_ids)
        except TypeError:
            return self.write(Accepted(intent=intent, order_id=order_id, children=children, venue_ids=venue_ids,
                                       policy=policy, reason=reason, at=at))
        self._put(line.encode("ascii"), fd)
        self.next_n = n + 1
        self.records_written += 1
        return n

    def write_venue_report(self, report: VenueExecutionReport, at: Any) -> int:
        """``write(VenueReport(report=report, at=at))``; returns the record's ``n``."""
        fd = self._fd
        if fd is None:
            raise OSError("journal is closed")
        n = self.next_n
        try:
            line = self._venue_report_line(n, report, at)
        except TypeError:
            return self.write(VenueReport(report=report, at=at))
        self._put(line.encode("ascii"), fd)
        self.next_n = n + 1
        self.records_written += 1
        return n

    def _accepted_line(self, n: int, intent: OrderIntent, order_id: str, children: list, ids: list, policy: str,
                       reason: str, at: Any, plain_ids: bool) -> str:
        """The ``accepted`` record's line: the compact kind (``ACCEPTED2``) when the record fits it
        (one venue order with the intent's quantity, price, type and time in force; both times clock
        readings of whole nanoseconds), else the ``accepted`` kind. ONE string build: the header's
        clocks as integers, the text that repeats order after order (session, symbol, side, type,
        time in force, destination, venue, policy) one cached piece (``_kept_row``)."""
        if len(children) == 1 and len(ids) == 1:
            i = intent
            c: ChildOrder = children[0]
            qty: object = i.qty
            price: object = i.price       # as stored (see _intent_text)
            cprice: object = c.price
            received = _clock_ns(i.received_at)
            at_ns = _clock_ns(at)
            if (received >= 0 and at_ns >= 0 and _same_number(c.qty, qty)
                    and (cprice is price or _same_number(cprice, price))
                    and c.ord_type == i.ord_type and c.tif == i.tif):
                ex = i.ex_destination
                row = _LAST_ROWS.order
                if (row is not None and row.session == i.oms_session and row.symbol == i.symbol
                        and row.side == i.side and row.ord_type == i.ord_type and row.tif == i.tif
                        and row.venue == c.venue and row.policy == policy and (row.ex is ex or row.ex == ex)):
                    kept = row.text
                else:
                    kept = _order_row(i, c.venue, policy)
                oid: str = order_id
                vid: str = ids[0]
                if not plain_ids:
                    oid = _esc(oid)[1:-1]
                    vid = _esc(vid)[1:-1]
                wall = self._wall
                return (f'["accepted2",{n},{_time_ns() if wall is self._std_wall else _esc(wall())},{kept},'
                        f'{_esc(i.cl_ord_id)},{_num_last(qty, _QTY)},'
                        f'{"null" if price is None else _num_last(price, _PRICE)},{received},"{oid}","{vid}",'
                        f'{_esc_same(reason)},{at_ns}]\n')
        return (f'["accepted",{self._head(n)},'
                f'{_accepted_fields(intent, order_id, children, ids, policy, reason, at, plain_ids)}]\n')

    def _venue_report_line(self, n: int, e: VenueExecutionReport, at: Any) -> str:
        """The ``venue_report`` record's line: the compact kind (``VENUE_REPORT2``) when ``at`` is a
        clock reading of whole nanoseconds, else the ``venue_report`` kind; ONE string build, the
        venue, ExecType and OrdStatus one cached piece."""
        at_ns = _clock_ns(at)
        if at_ns < 0:
            return f'["venue_report",{self._head(n)},{_venue_report_fields(e, at)}]\n'
        row = _LAST_ROWS.report
        if (row is not None and row.venue == e.venue and row.exec_type == e.exec_type
                and row.ord_status == e.ord_status):
            kept = row.text
        else:
            kept = _report_row(e.venue, e.exec_type, e.ord_status)
        orig, vid, text = e.orig_cl_ord_id, e.venue_order_id, e.text
        wall = self._wall
        return (f'["venue_report2",{n},{_time_ns() if wall is self._std_wall else _esc(wall())},{kept},'
                f'{_esc(e.cl_ord_id)},{"null" if orig is None else _esc(orig)},{_esc(e.exec_id)},'
                f"{_num_last(e.cum_qty, _CUM_QTY)},{_num_last(e.leaves_qty, _LEAVES_QTY)},"
                f"{_num_last(e.avg_px, _AVG_PX)},{_num_last(e.last_qty, _LAST_QTY)},{_num_last(e.last_px, _LAST_PX)},"
                f"{'null' if vid is None else _esc(vid)},{'null' if text is None else _esc(text)},{at_ns}]\n")

    def _head(self, n: int) -> str:
        """``n,"<utc>",<mono>``: the default wall clock's text needs no escaping (digits and
        ``-:.TZ``), an injected one is escaped. With the default clocks the header is ONE string
        build: both clocks read as whole nanoseconds (no float arithmetic), the whole seconds'
        texts formatted once a second, the sub-second digits from the three-digit table."""
        wall = self._wall
        mono_clock = self._mono
        if wall is not self._std_wall or mono_clock is not self._std_mono:
            mono = _mono_text(mono_clock())
            if wall is not self._std_wall:
                return f"{n},{_esc(wall())},{mono}"
            return f'{n},"{utc_now()}",{mono}'
        ns = _time_ns()
        sec = ns // 1_000_000_000
        last_sec, text = _UTC.pair
        if sec != last_sec:
            text = time.strftime("%Y-%m-%dT%H:%M:%S.", time.gmtime(sec))
            _UTC.pair = (sec, text)
        us = (ns - sec * 1_000_000_000) // 1000            # truncated (utc_now's text)
        mus = (_monotonic_ns() + 500) // 1000               # rounded to the microsecond (_mono_text's)
        msec = mus // 1_000_000
        mfrac = mus - msec * 1_000_000
        last_msec, mtext = _MONO.pair
        if msec != last_msec:
            mtext = f"{msec}."
            _MONO.pair = (msec, mtext)
        d3 = _D3
        return (f'{n},"{text}{d3[us // 1000]}{d3[us % 1000]}Z",{mtext}{d3[mfrac // 1000]}{d3[mfrac % 1000]}')

    def _line(self, record: object, n: int) -> bytes:
        """The record's line, byte for byte what ``json.dumps`` (compact, ensure_ascii) writes for
        ``[kind, n, utc, mono, *fields]``, built by hand: the json module's generic walk and its
        float formatting were most of the journal's cost per order (tests/core/test_journal.py
        checks the two agree, awkward text included). The two kinds every order writes have
        templates; a value of a type a template does not expect (a str field holding None, say)
        raises TypeError in it and the generic writer takes the record."""
        try:
            if isinstance(record, VenueReport):
                return self._venue_report_line(n, record.report, record.at).encode("ascii")
            if isinstance(record, Accepted):
                return self._accepted_line(n, record.intent, record.order_id, record.children, record.venue_ids,
                                           record.policy, record.reason, record.at, False).encode("ascii")
        except TypeError:
            pass
        return _generic_line(record, self._head(n))

    def close(self) -> None:
        if self._fd is not None:
            try:
                self.flush()
            finally:
                os.close(self._fd)
                self._fd = None

    def size(self) -> int:
        """Bytes in the journal file now (0 when closed)."""
        return os.fstat(self._fd).st_size if self._fd is not None else 0

    def compact(self, snapshot: Snapshot, keep_old: bool = True) -> Path | None:
        """Replace the journal by one ``snapshot`` record (see the module docstring).
        Returns the old file's new name (``<journal>.1``) or None. Raises OSError; the
        journal is then unchanged and still open."""
        if self._fd is None:
            raise OSError("journal is closed")
        self.flush()                       # what is held belongs to the old file's history
        tmp = self.path.with_name(self.path.name + ".tmp")
        old = self.path.with_name(self.path.name + ".1")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, self._line(snapshot, 1))
            os.fsync(fd)
        finally:
            os.close(fd)
        if old.exists():
            old.unlink()
        os.link(self.path, old)            # the old journal survives under .1 ...
        os.replace(tmp, self.path)         # ... before the new one takes its name (atomic)
        _fsync_dir(self.path.parent)
        os.close(self._fd)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND, 0o600)
        self.next_n = 2
        if not keep_old:
            old.unlink()
            return None
        return old


# ------------------------------------------------------------ the writer's text (json.dumps, by hand)

_FLOATS: Final[dict[object, str]] = {}     # float -> its JSON text: prices and quantities repeat
_FLOATS_MAX: Final = 4096
_NOT_JSON: Final = {"nan": "NaN", "inf": "Infinity", "-inf": "-Infinity"}   # repr -> what json writes


def _num(v: object) -> str:
    """A number field: a float (its text cached) or an int as json writes it; TypeError otherwise."""
    cls = type(v)
    if cls is float:
        text = _FLOATS.get(v)
        if text is None:
            text = _float_text(cast(float, v))
            if v != 0.0:               # (0.0 == -0.0: zeros are not cached, their sign would be lost)
                if len(_FLOATS) >= _FLOATS_MAX:
                    _FLOATS.clear()
                _FLOATS[v] = text
        return text
    if cls is int:
        return repr(v)
    raise TypeError(f"not a number: {cls.__name__}")


def _time(v: object) -> str:
    """A float as json writes it, not cached (times do not repeat); an int as json writes it;
    TypeError for anything else."""
    if type(v) is float:
        return _float_text(cast(float, v))
    if type(v) is int:
        return repr(v)
    raise TypeError(f"not a number: {type(v).__name__}")


def _mono_text(m: float) -> str:
    """The header's monotonic time, to the microsecond (rounded; replay does not read it): six
    decimals from whole microseconds (``f"{m:.6f}"`` costs a format call)."""
    if 0.0 <= m < 1e12:
        us = int(m * 1e6 + 0.5)
        sec = us // 1_000_000
        last_sec, text = _MONO.pair
        if sec != last_sec:          # the whole seconds' text changes once a second
            text = f"{sec}."
            _MONO.pair = (sec, text)
        return text + str(us - sec * 1_000_000 + 1_000_000)[1:]       # 6 digits, zero-padded
    return f"{m:.6f}"


_NS_LIMIT: Final = 4194304.0      # 2**22 s (48.5 days): below it a float's spacing is < 1 ns
_SECONDS: Final = SecondText()    # the whole seconds of the last clock reading written, and their text
_TRIMMED3: Final = tuple(d.rstrip("0") for d in DIGITS3)    # "000".."999" without trailing zeros


def _float_text(t: float) -> str:
    """``repr(t)``: the shortest text that reads back exactly (what json writes), computed from
    whole nanoseconds when ``t`` is one (a clock reading: ``time.perf_counter`` and
    ``time.monotonic`` are a count of nanoseconds / 1e9): ``repr``'s digit search costs three
    times as much. If ``ns / 1e9 == t``, the text ``ns`` / 10**9 reads back as ``t``; below
    2**22 two floats are less than 1 ns apart, so no other text of at most 9 decimals does,
    and none with fewer digits: it is the shortest, ``repr``'s. From 1e-4 up ``repr`` writes
    no exponent. Anything else (larger, smaller, not whole ns, inf, nan): ``repr`` itself."""
    if t == 0.0:                      # a zero quantity (LeavesQty of every fill): no repr
        return "0.0" if copysign(1.0, t) > 0.0 else "-0.0"
    if 1e-4 <= t < _NS_LIMIT:
        ns = int(t * 1e9 + 0.5)
        if ns / 1e9 == t:
            sec = ns // 1_000_000_000
            frac = ns - sec * 1_000_000_000
            last_sec, head = _SECONDS.pair       # "<whole seconds>." formatted once per second
            if sec != last_sec:
                head = f"{sec}."
                _SECONDS.pair = (sec, head)
            if frac == 0:
                return head + "0"
            # the nine decimals by thousands (zero-padded), trailing zeros dropped: table reads
            # instead of formatting an int and stripping it
            low = frac % 1000
            if low:
                return f"{head}{_D3[frac // 1_000_000]}{_D3[frac // 1000 % 1000]}{_TRIMMED3[low]}"
            mid = frac // 1000 % 1000
            if mid:
                return f"{head}{_D3[frac // 1_000_000]}{_TRIMMED3[mid]}"
            return head + _TRIMMED3[frac // 1_000_000]
    text = repr(t)
    return _NOT_JSON.get(text, text) if text[-1] in "nf" else text


def _text(v: Any) -> str:
    """Any value as ``json.dumps(v, separators=(",", ":"), ensure_ascii=True)`` writes it."""
    cls = type(v)
    if cls is str:
        return _esc(v)
    if cls is float or cls is int:
        return _num(v)
    if v is None:
        return "null"
    if cls is list:
        return "[" + ",".join([_text(x) for x in v]) + "]"
    return _dumps(v)                   # bool, dict, subclasses, anything else: the json module


def _generic_line(record: Any, head: str) -> bytes:
    """Any record's line, by its layout (``_WRITER``)."""
    cls = type(record)
    out = [_KIND_TEXT[cls], head]
    for get, row, many in _WRITER[cls]:
        v = get(record)
        if row is None:
            out.append(_text(v))
        elif many:
            out.append("[" + ",".join(["[" + ",".join([_text(x) for x in row(r)]) + "]" for r in v]) + "]")
        else:
            out.append("[" + ",".join([_text(x) for x in row(v)]) + "]")
    return ("[" + ",".join(out) + "]\n").encode("ascii")


# The two kinds written per order, as fixed templates (no walk over the layout, one call per
# value). Their field lists are checked against the dataclasses at import (_check_hot), so a
# change of a record's fields cannot silently write a different layout. Fields are read
# typed (native reads when compiled; until round 5 the numbers were read untyped, a generic
# attribute lookup each, ~12 per order); a ``float | None`` into an ``object`` local (see the
# module docstring). Text that repeats order
# after order (sessions, symbols, sides, venues, policies) is escaped once (``_esc_kept``).

_ESCAPED: Final[dict[str, str]] = {}     # str -> its JSON text, for the values that repeat
_ESCAPED_MAX: Final = 4096


_KEPT_ROWS: Final[dict[tuple, str]] = {}   # a compact record's repeated texts -> their JSON text, as one piece


def _kept_row(key: tuple) -> str:
    """``key``'s texts (or nulls) as JSON values joined by commas, cached (bounded) for the next
    record with the same ones. TypeError for a value that is neither a str nor None."""
    text = ",".join(["null" if v is None else _esc_kept(v) for v in key])
    if len(_KEPT_ROWS) >= _ESCAPED_MAX:
        _KEPT_ROWS.clear()
    _KEPT_ROWS[key] = text
    return text


class _OrderRow:
    """The texts of an ``accepted2`` record that repeat order after order, and their JSON (one piece)."""

    __slots__ = ("session", "symbol", "side", "ord_type", "tif", "ex", "venue", "policy", "text")

    def __init__(self, session: str, symbol: str, side: str, ord_type: str, tif: str, ex: str | None, venue: str,
                 policy: str, text: str) -> None:
        self.session, self.symbol, self.side, self.ord_type, self.tif = session, symbol, side, ord_type, tif
        self.ex, self.venue, self.policy, self.text = ex, venue, policy, text


class _ReportRow:
    """The texts of a ``venue_report2`` record that repeat report after report, and their JSON."""

    __slots__ = ("venue", "exec_type", "ord_status", "text")

    def __init__(self, venue: str, exec_type: str, ord_status: str, text: str) -> None:
        self.venue, self.exec_type, self.ord_status, self.text = venue, exec_type, ord_status, text


class _LastRows:
    """The last row of each compact kind, each ONE attribute (an immutable object): a writer on
    another thread never pairs one record's texts with another's JSON. Compared field by field
    (no tuple, no hash); a miss takes the cache by value (``_kept_row``)."""

    __slots__ = ("order", "report")

    def __init__(self) -> None:
        self.order: _OrderRow | None = None
        self.report: _ReportRow | None = None


_LAST_ROWS: Final = _LastRows()


def _order_row(i: OrderIntent, venue: str, policy: str) -> str:
    key = (i.oms_session, i.symbol, i.side, i.ord_type, i.tif, i.ex_destination, venue, policy)
    text = _KEPT_ROWS.get(key)
    if text is None:
        text = _kept_row(key)
    _LAST_ROWS.order = _OrderRow(i.oms_session, i.symbol, i.side, i.ord_type, i.tif, i.ex_destination, venue,
                                 policy, text)
    return text


def _report_row(venue: str, exec_type: str, ord_status: str) -> str:
    key = (venue, exec_type, ord_status)
    text = _KEPT_ROWS.get(key)
    if text is None:
        text = _kept_row(key)
    _LAST_ROWS.report = _ReportRow(venue, exec_type, ord_status, text)
    return text


class _LastNumber:
    """The last float written at one place of a compact record and its text, as ONE attribute."""

    __slots__ = ("pair",)

    def __init__(self) -> None:
        self.pair: tuple[float, str] = (0.0, "0.0")      # zeros never match (see _num_last)


_QTY: Final = _LastNumber()
_PRICE: Final = _LastNumber()
_CUM_QTY: Final = _LastNumber()
_LEAVES_QTY: Final = _LastNumber()
_AVG_PX: Final = _LastNumber()
_LAST_QTY: Final = _LastNumber()
_LAST_PX: Final = _LastNumber()


def _num_last(v: object, last: _LastNumber) -> str:
    """``_num(v)``, the float's text kept in ``last`` (one place of a record: the same quantity or
    price as the previous record's is a compare of two doubles, no hash, no dict). Not for zeros
    (``0.0 == -0.0``) nor ints (``7 == 7.0``): those go to ``_num``."""
    if type(v) is float:
        f = cast(float, v)
        seen, text = last.pair
        if f == seen and f != 0.0:
            return text
        text = _num(v)
        last.pair = (f, text)
        return text
    return _num(v)


def _clock_ns(t: object) -> int:
    """A time as whole nanoseconds if it is a clock reading that they give back exactly
    (``ns / 1e9 == t``, a float in (0, 2**22) s: see ``_float_text``), else -1 (the record is then
    written in its full kind, the float as json writes it)."""
    if type(t) is float:
        f = cast(float, t)
        if 0.0 < f < _NS_LIMIT:
            ns = int(f * 1e9 + 0.5)
            if ns / 1e9 == f:
                return ns
    return -1


def _same_number(a: object, b: object) -> bool:
    """``a`` and ``b`` are the same number of the same type (int or float; not a zero, whose sign
    ``==`` ignores): a compact record writes one for both."""
    cls = type(b)
    if cls is float:
        return type(a) is float and cast(float, a) == cast(float, b) and cast(float, b) != 0.0
    return cls is int and type(a) is int and a == b and b != 0


def _esc_kept(s: str) -> str:
    """``_esc(s)`` for a value that repeats from order to order: cached (bounded)."""
    text = _ESCAPED.get(s)
    if text is None:
        text = _esc(s)
        if len(_ESCAPED) >= _ESCAPED_MAX:
            _ESCAPED.clear()
        _ESCAPED[s] = text
    return text


def _intent_text(i: OrderIntent) -> str:
    price: object = i.price           # as stored (an int stays an int: json writes 7, not 7.0)
    ex = i.ex_destination
    return (f"[{_esc_kept(i.oms_session)},{_esc(i.cl_ord_id)},{_esc_kept(i.symbol)},{_esc_kept(i.side)},"
            f"{_num(i.qty)},{_esc_kept(i.ord_type)},{'null' if price is None else _num(price)},"
            f"{_esc_kept(i.tif)},{'null' if ex is None else _esc_kept(ex)},{_time(i.received_at)}]")


def _child_text(c: ChildOrder) -> str:
    price: object = c.price           # as stored (see _intent_text)
    return (f"[{_esc_kept(c.venue)},{_num(c.qty)},{'null' if price is None else _num(price)},"
            f"{_esc_kept(c.ord_type)},{_esc_kept(c.tif)}]")


def _accepted_text(r: Accepted) -> str:
    return _accepted_fields(r.intent, r.order_id, r.children, r.venue_ids, r.policy, r.reason, r.at)


def _accepted_fields(intent: OrderIntent, order_id: str, children: list, ids: list, policy: str, reason: str,
                     at: Any, plain_ids: bool = False) -> str:
    """The fields after the header. One venue order (every policy but best-price SOR): ONE string
    build for the intent, the child and the rest (the intent's and child's texts inline); ids
    that need no escaping (``plain_ids``) are written as they are, between the template's quotes."""
    if len(children) == 1 and len(ids) == 1:
        i = intent
        c: ChildOrder = children[0]
        price: object = i.price       # as stored (see _intent_text)
        cprice: object = c.price
        ex = i.ex_destination
        oid: str = order_id
        vid: str = ids[0]
        if not plain_ids:
            oid = _esc(oid)[1:-1]
            vid = _esc(vid)[1:-1]
        return (f"[{_esc_kept(i.oms_session)},{_esc(i.cl_ord_id)},{_esc_kept(i.symbol)},{_esc_kept(i.side)},"
                f"{_num(i.qty)},{_esc_kept(i.ord_type)},{'null' if price is None else _num(price)},"
                f"{_esc_kept(i.tif)},{'null' if ex is None else _esc_kept(ex)},{_time(i.received_at)}],"
                f'"{oid}",[[{_esc_kept(c.venue)},{_num(c.qty)},{"null" if cprice is None else _num(cprice)},'
                f'{_esc_kept(c.ord_type)},{_esc_kept(c.tif)}]],["{vid}"],{_esc_kept(policy)},'
                f"{_esc_same(reason)},{_time(at)}")
    kids = ",".join([_child_text(c) for c in children])
    vids = ",".join([_esc(v) for v in ids])
    return (f"{_intent_text(intent)},{_esc(order_id)},[{kids}],[{vids}],{_esc_kept(policy)},{_esc_same(reason)},"
            f"{_time(at)}")


class _Last:
    """The last text given to ``_esc_same`` and its JSON text, as ONE attribute (a writer on
    another thread never pairs one text with another's JSON)."""

    __slots__ = ("pair",)

    def __init__(self) -> None:
        self.pair: tuple[str, str] = ("", '""')


_REASON: Final = _Last()


def _esc_same(s: str) -> str:
    """``_esc(s)`` for a text that is often the very object of the last call: the routing reason
    (the DMA policy's is one object per venue and how, order after order); an identity check
    instead of the escape, no dict (a scalper's reasons, all different, cost one compare)."""
    last, text = _REASON.pair
    if s is last:
        return text
    text = _esc(s)
    _REASON.pair = (s, text)
    return text


def _venue_report_text(r: VenueReport) -> str:
    return _venue_report_fields(r.report, r.at)


def _venue_report_fields(e: VenueExecutionReport, at: Any) -> str:
    orig, vid, text = e.orig_cl_ord_id, e.venue_order_id, e.text
    return (f"[{_esc_kept(e.venue)},{_esc(e.cl_ord_id)},{'null' if orig is None else _esc(orig)},"
            f"{_esc(e.exec_id)},{_esc_kept(e.exec_type)},{_esc_kept(e.ord_status)},{_num(e.cum_qty)},"
            f"{_num(e.leaves_qty)},{_num(e.avg_px)},{_num(e.last_qty)},{_num(e.last_px)},"
            f"{'null' if vid is None else _esc(vid)},{'null' if text is None else _esc(text)}],{_time(at)}")


def _check_hot() -> None:
    names = {OrderIntent: ("oms_session", "cl_ord_id", "symbol", "side", "qty", "ord_type", "price", "tif",
                           "ex_destination", "received_at"),
             ChildOrder: ("venue", "qty", "price", "ord_type", "tif"),
             VenueExecutionReport: ("venue", "cl_ord_id", "orig_cl_ord_id", "exec_id", "exec_type", "ord_status",
                                    "cum_qty", "leaves_qty", "avg_px", "last_qty", "last_px", "venue_order_id",
                                    "text"),
             Accepted: ("intent", "order_id", "children", "venue_ids", "policy", "reason", "at"),
             VenueReport: ("report", "at")}
    for cls, want in names.items():
        have = tuple(f.name for f in dataclasses.fields(cls))
        if have != want:
            raise RuntimeError(f"journal: {cls.__name__} fields {have} != the hot writer's {want}: update both")


_check_hot()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _count_lines(path: Path) -> int:
    if not path.exists():
        return 0
    with path.open("rb") as fh:
        return sum(chunk.count(b"\n") for chunk in iter(lambda: fh.read(1 << 20), b""))


def _ends_with_newline(path: Path) -> bool:
    size = path.stat().st_size
    if size == 0:
        return True
    with path.open("rb") as fh:
        fh.seek(size - 1)
        return fh.read(1) == b"\n"


# ------------------------------------------------------------ replay

@dataclass
class ReplayResult:
    applied: int = 0
    skipped: list[tuple[int, str]] = field(default_factory=list)   # (line number, why)
    risk_states: list[RiskState] = field(default_factory=list)
    undelivered: list = field(default_factory=list)   # OMS-bound outputs the crash may have kept back
    clean_stop: bool = False
    snapshots: int = 0            # compaction snapshots applied


def read_records(path: str | Path) -> Iterator[tuple[int, Any]]:
    """(line number, record dataclass or the reason it is unreadable as a str)."""
    p = Path(path)
    if not p.exists():
        return
    with p.open("rb") as fh:
        for n, raw in enumerate(fh, 1):
            if not raw.strip():
                continue
            try:
                yield n, decode(json.loads(raw))
            except Exception as exc:   # noqa: BLE001 - replay is total: report and go on
                yield n, f"unreadable ({type(exc).__name__}: {exc})"


def replay(path: str | Path, orders: OrderManager) -> ReplayResult:
    """Rebuild ``orders`` from the journal; every record is applied or reported and skipped.

    ``orders`` should have no risk attached (risk is restored from the rebuilt orders).
    """
    result = ReplayResult()
    # What the OMS may not have been told: a later line (even a torn one) means the hub went on,
    # so the earlier ones' reports were sent; except within a dispatch, whose sends all wait for
    # its end (DispatchMark): the file may stop after any of its records, or right after it.
    last_outputs: list = []
    dispatch: list | None = None     # the outputs of the dispatch being read
    last: Any = None
    for line, rec in read_records(path):
        if isinstance(rec, DispatchMark):
            if rec.end:
                last_outputs, dispatch = dispatch or [], None
            else:
                dispatch = last_outputs = []
            continue
        if dispatch is None:
            last_outputs = []
        if isinstance(rec, str):
            _skip(result, path, line, rec)
            continue
        try:
            outs = apply(rec, orders)
        except Exception as exc:   # noqa: BLE001 - one bad record must not stop the gateway starting
            _skip(result, path, line, f"{KIND_OF[type(rec)]} not applied ({type(exc).__name__}: {exc})")
            continue
        if isinstance(rec, RiskState):
            result.risk_states.append(rec)
        elif isinstance(rec, Snapshot):
            result.risk_states = [_build(RiskState, r) for r in rec.risk_states]
            result.snapshots += 1
        result.applied += 1
        last = rec
        if dispatch is None:
            last_outputs = outs
        else:
            dispatch += outs                  # OMS-bound ones taken below
    result.clean_stop = last is None or isinstance(last, Stopped)
    result.undelivered = [o for o in last_outputs if isinstance(o, (ReportToOms, RejectOmsCancel))]
    return result


def _skip(result: ReplayResult, path, line: int, why: str) -> None:
    result.skipped.append((line, why))
    log.warning("journal %s line %d: %s: skipped", path, line, why)


def _ids(ids: list[str], tag: str) -> Callable[[], str]:
    """The recorded ids in order; if a record holds fewer than replay needs (it was written by a
    different state), made-up ones rather than StopIteration: replay must go on."""
    it = iter(ids)
    extra = iter(range(1, 1 << 30))
    return lambda: next(it, None) or f"{tag}.replay{next(extra)}"


def apply(rec: Any, orders: OrderManager) -> list:
    """Apply one record to ``orders``; returns what the live path would have sent."""
    if isinstance(rec, Accepted):
        return orders.accept(rec.intent, rec.order_id, rec.children, rec.venue_ids, rec.policy, rec.reason, rec.at)
    if isinstance(rec, Rejected):
        return orders.reject_new(rec.intent, rec.order_id, rec.text, rec.reason, rec.at)
    if isinstance(rec, VenueReport):
        return orders.on_venue_exec(rec.report, rec.at)
    if isinstance(rec, Cancel):
        return orders.cancel(rec.session, rec.cl_ord_id, rec.orig_cl_ord_id, _ids(rec.venue_ids, rec.cl_ord_id))
    if isinstance(rec, CancelAll):
        return orders.cancel_all(_ids(rec.venue_ids, "K"), rec.text, rec.session)
    if isinstance(rec, Replace):
        return orders.replace(rec.session, rec.new, rec.orig_cl_ord_id, rec.venue_id)
    if isinstance(rec, Retry):
        order = orders.by_order_id.get(rec.order_id)
        if order is None:
            raise KeyError(f"unknown order {rec.order_id!r}")
        return orders.add_retry(order, rec.spec, rec.venue_id, rec.at)
    if isinstance(rec, RemainderDone):
        order = orders.by_order_id.get(rec.order_id)
        if order is None:
            raise KeyError(f"unknown order {rec.order_id!r}")
        return orders.end_remainder(order, rec.at, rec.text)
    if isinstance(rec, CancelRejected):
        return orders.on_venue_cancel_reject(rec.venue_cl_ord_id, rec.text, rec.at)
    if isinstance(rec, SendFailed):
        child = orders.find_child(rec.venue_cl_ord_id)
        if child is None:
            raise KeyError(f"unknown venue order {rec.venue_cl_ord_id!r}")
        return orders.send_failed(child, rec.text, rec.at)
    if isinstance(rec, Snapshot):
        restore_snapshot(rec, orders)
        return []
    if isinstance(rec, DayEnded):
        if rec.venue is not None:
            return orders.expire_day(rec.venue, rec.text, rec.at)
        out: list = []
        for venue in rec.down_venues:
            out += orders.expire_day(venue, rec.text, rec.at)
        return out + orders.cancel_day(_ids(rec.venue_ids, "D"), rec.text)
    return []          # RiskState, Stopped: nothing to do to the orders


# ------------------------------------------------------------ snapshots (compaction)

_CHILD_STATE = ("venue", "cl_ord_id", "qty", "price", "ord_type", "tif", "status", "cum_qty", "avg_px",
                "venue_order_id", "sent_at", "acked", "reject_text")
# "reports" is the k of the next ExecID <order_id>-<k>: without it a restart after a compaction
# would issue ExecIDs the OMS already has, and drop a PossResend report as a repeat
_ORDER_STATE = ("order_id", "status", "cum_qty", "avg_px", "policy", "route_reason", "text", "retried",
                "created_at", "done_at", "reports")


def snapshot_problem(orders: OrderManager) -> str | None:
    """Why now is not a safe point for a snapshot (None: it is)."""
    for o in orders.open.values():
        if o.cancel_request is not None or o.replace_request is not None:
            return f"order {o.order_id} has a cancel or replace in flight"
        if any(c.cancel_pending for c in o.children):
            return f"order {o.order_id} has a venue cancel in flight"
    return None


def make_snapshot(orders: OrderManager, risk_states: list, at: float = 0.0, keep_done: bool = True) -> Snapshot:
    """The order state as a ``Snapshot`` (call ``snapshot_problem`` first)."""
    kept = [o for o in orders.by_order_id.values() if keep_done or not o.done]
    ids = {o.order_id for o in kept}
    out = []
    for o in kept:
        d = {k: getattr(o, k) for k in _ORDER_STATE}
        d["intent"] = _encode(o.intent)
        d["children"] = [{k: getattr(c, k) for k in _CHILD_STATE} for c in o.children]
        out.append(d)
    aliases = [[s, cid, o.order_id] for (s, cid), o in orders.by_oms.items()
               if o.order_id in ids and cid != o.cl_ord_id]
    exec_ids = [[c.venue, c.cl_ord_id, e] for o in orders.open.values() for c in o.live_children()
                for e in (c.exec_ids or ())]
    owed = orders.owed_answers() if keep_done else []      # without done orders, nothing is owed to them
    return Snapshot(orders=out, aliases=aliases, exec_ids=exec_ids, owed=owed,
                    risk_states=[_encode(r) for r in risk_states], counts=dict(orders.counts), at=at)


def restore_snapshot(snap: Snapshot, orders: OrderManager) -> None:
    """Replace ``orders``' state by the snapshot's (the inverse of ``make_snapshot``)."""
    from gateway.core.orders import OmsOrder, VenueOrder
    orders.by_oms.clear()
    orders.by_order_id.clear()
    orders.by_venue_id.clear()
    orders.requests.clear()
    orders.open.clear()
    orders.finished.clear()
    orders.in_flight.clear()
    for d in snap.orders:
        order = OmsOrder(_build(OrderIntent, d["intent"]), d["order_id"])
        for k in _ORDER_STATE[1:]:
            setattr(order, k, d.get(k, getattr(order, k)))
        for cd in d.get("children", []):
            child = VenueOrder(order, cd["venue"], cd["cl_ord_id"], cd["qty"], cd["price"], cd["ord_type"],
                               cd["tif"])
            for k in _CHILD_STATE[6:]:
                setattr(child, k, cd.get(k, getattr(child, k)))
            order.children.append(child)
            orders.by_venue_id[child.cl_ord_id] = child
            if not child.acked and not child.done:
                orders.in_flight[child.venue] = orders.in_flight.get(child.venue, 0) + 1
        orders.by_oms[(order.session, order.cl_ord_id)] = order
        orders.by_order_id[order.order_id] = order
        if not order.done:
            orders.open[order.order_id] = order
    for session, cid, order_id in snap.aliases:
        aliased = orders.by_order_id.get(order_id)
        if aliased is not None:
            orders.by_oms.setdefault((session, cid), aliased)
    for _venue, vid, exec_id in snap.exec_ids:
        known = orders.by_venue_id.get(vid)
        if known is not None:
            if known.exec_ids is None:
                known.exec_ids = [exec_id]
            elif exec_id not in known.exec_ids:
                known.exec_ids.append(exec_id)
    for row in snap.owed:
        orders.restore_owed_answer(row)
    # ended orders whose venue side the snapshot still holds: retired in the order they ended
    orders.finished.extend(sorted((o for o in orders.by_order_id.values() if o.done and o.children),
                                  key=lambda o: o.done_at))
    for k, v in snap.counts.items():
        if k in orders.counts:
            orders.counts[k] = v


# ------------------------------------------------------------ the first format (arrays, letters)

_LEGACY_INTENT = ("oms_session", "cl_ord_id", "symbol", "side", "qty", "ord_type", "price", "tif", "ex_destination")
_LEGACY_CHILD = ("venue", "qty", "price", "ord_type", "tif")
_LEGACY_EXEC = ("venue", "cl_ord_id", "orig_cl_ord_id", "exec_id", "exec_type", "ord_status", "cum_qty",
                "leaves_qty", "avg_px", "last_qty", "last_px", "venue_order_id", "text")
_LEGACY_LENGTH = {"A": 8, "J": 6, "X": 15, "C": 5, "K": 3, "R": 5, "Y": 5, "Z": 3, "F": 3, "S": 4}


def _legacy_row(cls: type, names: tuple, r: Any) -> Any:
    if not isinstance(r, list) or len(r) != len(names):
        raise ValueError(f"legacy {cls.__name__}: expected {len(names)} values, got {r!r:.80}")
    return cls(**dict(zip(names, r)))


def _legacy_intent(r: list) -> OrderIntent:
    return _legacy_row(OrderIntent, _LEGACY_INTENT, r)


def _legacy_child(r: list) -> ChildOrder:
    return _legacy_row(ChildOrder, _LEGACY_CHILD, r)


def _legacy(rec: list) -> Any:
    k = rec[0]
    if len(rec) != _LEGACY_LENGTH.get(k, -1):
        raise ValueError(f"legacy record {k!r:.20}: {len(rec)} values")
    if k == "A":
        _, i, oid, ch, ids, pol, why, at = rec
        return Accepted(intent=_legacy_intent(i), order_id=oid, children=[_legacy_child(c) for c in ch],
                        venue_ids=ids, policy=pol, reason=why, at=at)
    if k == "J":
        _, i, oid, text, reason, at = rec
        return Rejected(intent=_legacy_intent(i), order_id=oid, text=text, reason=reason, at=at)
    if k == "X":
        return VenueReport(report=_legacy_row(VenueExecutionReport, _LEGACY_EXEC, rec[1:14]), at=rec[14])
    if k == "C":
        return Cancel(session=rec[1], cl_ord_id=rec[2], orig_cl_ord_id=rec[3], venue_ids=rec[4])
    if k == "K":
        return CancelAll(text=rec[1], venue_ids=rec[2])
    if k == "R":
        return Replace(session=rec[1], new=_legacy_intent(rec[2]), orig_cl_ord_id=rec[3], venue_id=rec[4])
    if k == "Y":
        return Retry(order_id=rec[1], spec=_legacy_child(rec[2]), venue_id=rec[3], at=rec[4])
    if k == "Z":
        return CancelRejected(venue_cl_ord_id=rec[1], text=rec[2])
    if k == "F":
        return SendFailed(venue_cl_ord_id=rec[1], text=rec[2])
    if k == "S":
        return RiskState(state=rec[1], reason=rec[2], by=rec[3])
    raise KeyError(f"unknown legacy record kind {k!r}")
