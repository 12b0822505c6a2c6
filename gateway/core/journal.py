"""The order journal: every order event, written before it is applied or sent, replayed on start.

quickfix's FileStores keep the sequence numbers and the messages; this journal keeps what
only the gateway knows: which venue order belongs to which OMS order, and what happened
to it. Each record is one line written with a single ``os.write`` on an O_APPEND file
descriptor: the kernel has it as soon as the call returns, so a SIGKILL loses nothing
already written (a power cut may; there is no fsync per order, by choice, for latency).

Record format (one line, issue 12): a JSON array ``[kind, n, utc, mono, <the record's fields>]``,
e.g. ``["cancel_reject", 12, "2026-12-01T14:56:54.123456Z", 8812.5, "G7", "too late", 8812.5]``.
``kind`` is a word; each kind is a dataclass below (a value, never changed), registered with ``@kind(word)``, and
its fields IN DATACLASS ORDER are the positions: that order, defined once by the dataclass,
is what the writer and replay both use (``_LAYOUT``). Nested values (``OrderIntent``,
``ChildOrder``, ``VenueExecutionReport``, found from the field's type) are arrays in their
own dataclass field order. Replay maps positions back to field names and checks every
length: a record of the wrong length is unreadable (reported and skipped), never misread.
Changing a record class's fields therefore changes the format: add a new kind word (or a
reader for the old layout) rather than reorder fields of a kind already written. ``utc``
is the wall time (text formatted once a second, microseconds appended), ``mono`` the
monotonic time to the microsecond (replay does not read it). JSON is written with
``ensure_ascii``: every line is ASCII and ``python -m json.tool`` reads it; any str a FIX
field may carry (bytes decoded as latin-1, lone surrogates from surrogateescape) round-trips
as ``\\uXXXX`` escapes. The writer builds the text itself (json's own C string escaper for
str, the shortest exact repr for floats, cached because prices and quantities repeat), the
two kinds written per order from fixed templates: the bytes ``json.dumps`` writes (mono aside),
which tests/core/test_journal.py checks with awkward text and numbers.

Cost (``benchmarks/profile_gateway.py --stub``, gateway Python per order, NOS in + ER out; six
runs each on 2 shared cores, load average 0.5-1.7, so noisy): the object format with
``dataclasses.fields`` per value and ``datetime.strftime`` per record took medians 156-210 us
(median of the six 174 us); this format 127-167 us (143 us). The profiled self time of this
module per order (inflated by the profiler) fell from 71-116 us to 21-34 us. Writing the
text by hand instead of ``json.dumps`` halved it again: the ``accepted`` and ``venue_report``
lines of one order took 117,000 machine instructions, now about 62,000 (callgrind).

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
cancel or replace in flight, no report waiting for an OMS session): one ``snapshot`` record
(every order of the day with its venue orders, as ``OrderManager`` holds them; the ExecIDs
seen on live venue orders; the kill-switch and suspension states in force; the counters) is
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
import json
import logging
import operator
import os
import time
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

from gateway.core.model import ChildOrder, OrderIntent
from gateway.core.orders import OrderManager, RejectOmsCancel, ReportToOms, VenueExecutionReport

log = logging.getLogger("gateway.core.journal")
_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=True).encode
_esc = json.encoder.encode_basestring_ascii     # json's own (C) string writer: "...", \uXXXX escapes


# ------------------------------------------------------------ the record kinds

KINDS: dict[str, type] = {}        # kind word -> record class (filled by @kind)
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


def kind(word: str) -> Callable[[type], type]:
    """Register a record class under its kind word. Its line layout is its dataclass fields in
    order (nested dataclasses, and lists of them, as arrays in their own field order): the one
    definition the writer and replay both use."""
    def register(cls: type) -> type:
        hints = typing.get_type_hints(cls)
        layout = []
        for f in dataclasses.fields(cls):
            t, many = hints[f.name], False
            if typing.get_origin(t) is list and typing.get_args(t):
                t, many = typing.get_args(t)[0], True
            if not (isinstance(t, type) and dataclasses.is_dataclass(t)):
                t, many = None, False
            layout.append((f.name, t, many))
        KINDS[word], KIND_OF[cls], _LAYOUT[cls] = cls, word, tuple(layout)
        _WRITER[cls] = tuple((operator.attrgetter(name), None if nested is None else _row_of(nested), many)
                             for name, nested, many in layout)
        _KIND_TEXT[cls] = _esc(word)
        return cls
    return register


@kind("accepted")
@dataclass(slots=True, kw_only=True)
class Accepted:
    intent: OrderIntent
    order_id: str
    children: list[ChildOrder]
    venue_ids: list[str]
    policy: str = ""
    reason: str = ""
    at: float = 0.0


@kind("rejected")
@dataclass(slots=True, kw_only=True)
class Rejected:
    intent: OrderIntent
    order_id: str
    text: str
    reason: int
    at: float = 0.0


@kind("venue_report")
@dataclass(slots=True, kw_only=True)
class VenueReport:
    report: VenueExecutionReport
    at: float = 0.0


@kind("cancel")
@dataclass(slots=True, kw_only=True)
class Cancel:
    session: str
    cl_ord_id: str
    orig_cl_ord_id: str
    venue_ids: list[str]
    at: float = 0.0


@kind("cancel_all")
@dataclass(slots=True, kw_only=True)
class CancelAll:
    text: str
    venue_ids: list[str]
    session: str | None = None        # None: every open order (the kill switch)
    at: float = 0.0


@kind("replace")
@dataclass(slots=True, kw_only=True)
class Replace:
    session: str
    new: OrderIntent
    orig_cl_ord_id: str
    venue_id: str
    at: float = 0.0


@kind("retry")
@dataclass(slots=True, kw_only=True)
class Retry:
    order_id: str
    spec: ChildOrder
    venue_id: str
    at: float = 0.0


@kind("remainder_done")
@dataclass(slots=True, kw_only=True)
class RemainderDone:
    order_id: str
    text: str | None = None
    at: float = 0.0


@kind("cancel_reject")
@dataclass(slots=True, kw_only=True)
class CancelRejected:
    venue_cl_ord_id: str
    text: str
    at: float = 0.0


@kind("send_failed")
@dataclass(slots=True, kw_only=True)
class SendFailed:
    venue_cl_ord_id: str
    text: str
    at: float = 0.0


@kind("risk_state")
@dataclass(slots=True, kw_only=True)
class RiskState:
    """A kill-switch trip or reset (or one session's suspension): a restart must not quietly resume."""
    state: str
    reason: str
    by: str
    session: str | None = None
    at: float = 0.0


@kind("day_ended")
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


@kind("snapshot")
@dataclass(slots=True, kw_only=True)
class Snapshot:
    """The whole order state at a safe point: the first record of a compacted journal."""
    orders: list = field(default_factory=list)        # export_order() of every order kept
    aliases: list = field(default_factory=list)       # [session, ClOrdID, order_id]: replaced/cancel ids
    exec_ids: list = field(default_factory=list)      # [venue, venue ClOrdID, ExecID] of live venue orders
    risk_states: list = field(default_factory=list)   # RiskState fields in force (firm, per session)
    counts: dict = field(default_factory=dict)
    at: float = 0.0


@kind("stopped")
@dataclass(slots=True, kw_only=True)
class Stopped:
    """A clean stop: everything before it was sent."""
    at: float = 0.0


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
        return _from_array(obj)
    if isinstance(obj, list):
        return _legacy(obj)
    raise ValueError(f"not a record: {obj!r:.80}")


_utc_second, _utc_text = -1, ""


def utc_now() -> str:
    """UTC time as ISO text to the microsecond; the date and time of day formatted once a second."""
    global _utc_second, _utc_text
    t = time.time()
    s = int(t)
    if s != _utc_second:
        _utc_second, _utc_text = s, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(s))
    return f"{_utc_text}.{int((t - s) * 1e6):06d}Z"


class Journal:
    """Append-only writer. ``write`` raises ``OSError`` if the record did not reach the kernel."""

    def __init__(self, path: str | Path, wall: Callable[[], str] = utc_now,
                 mono: Callable[[], float] = time.monotonic) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._wall, self._mono = wall, mono
        self.next_n = _count_lines(self.path) + 1
        self._fd: int | None = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        if not _ends_with_newline(self.path):
            os.write(self._fd, b"\n")      # a torn last line must not swallow the next record
        self.records_written = 0

    def write(self, record: Any) -> int:
        """Append one record; returns its number ``n``."""
        if self._fd is None:
            raise OSError("journal is closed")
        n = self.next_n
        os.write(self._fd, self._line(record, n))
        self.next_n += 1
        self.records_written += 1
        return n

    def _line(self, record: Any, n: int) -> bytes:
        """The record's line, byte for byte what ``json.dumps`` (compact, ensure_ascii) writes for
        ``[kind, n, utc, mono, *fields]``, built by hand: the json module's generic walk and its
        float formatting were most of the journal's cost per order (tests/core/test_journal.py
        checks the two agree, awkward text included)."""
        cls = record.__class__
        head = f"[{_KIND_TEXT[cls]},{n},{_text(self._wall())},{self._mono():.6f},"
        hot = _HOT.get(cls)
        if hot is not None:
            try:
                return (head + hot(record) + "]\n").encode("ascii")
            except TypeError:          # a value of an unexpected type: the generic writer takes it
                pass
        out = [head[1:-1]]
        for get, row, many in _WRITER[cls]:
            v = get(record)
            if row is None:
                out.append(_text(v))
            elif many:
                out.append("[" + ",".join(["[" + ",".join(map(_text, row(x))) + "]" for x in v]) + "]")
            else:
                out.append("[" + ",".join(map(_text, row(v))) + "]")
        return ("[" + ",".join(out) + "]\n").encode("ascii")

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def size(self) -> int:
        """Bytes in the journal file now (0 when closed)."""
        return os.fstat(self._fd).st_size if self._fd is not None else 0

    def compact(self, snapshot: "Snapshot", keep_old: bool = True) -> Path | None:
        """Replace the journal by one ``snapshot`` record (see the module docstring).
        Returns the old file's new name (``<journal>.1``) or None. Raises OSError; the
        journal is then unchanged and still open."""
        if self._fd is None:
            raise OSError("journal is closed")
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


_FLOATS: dict[float, str] = {}     # float -> its JSON text: prices and quantities repeat
_FLOATS_MAX = 4096


def _float_text(v: float) -> str:
    if v != v or v in (_INF, -_INF):
        return _dumps(v)               # NaN, Infinity, -Infinity, as json writes them
    text = float.__repr__(v)           # what json writes: the shortest text that reads back exactly
    if v != 0.0:                       # (0.0 == -0.0: zeros are not cached, their sign would be lost)
        if len(_FLOATS) >= _FLOATS_MAX:
            _FLOATS.clear()
        _FLOATS[v] = text
    return text


_INF = float("inf")


def _text(v: Any) -> str:
    """One value as ``json.dumps(v, separators=(",", ":"), ensure_ascii=True)`` writes it."""
    cls = v.__class__
    if cls is str:
        return _esc(v)
    if cls is float:
        return _FLOATS.get(v) or _float_text(v)
    if v is None:
        return "null"
    if cls is int:
        return int.__repr__(v)
    if cls is list:
        return "[" + ",".join(map(_text, v)) + "]"
    return _dumps(v)                   # bool, dict, subclasses, anything else: the json module


# The two kinds written per order, as fixed templates (no walk over the layout, no call per str).
# Their field lists are checked against the dataclasses at import (_check_hot), so a change of a
# record's fields cannot silently write a different layout; a value of an unexpected type (a str
# field holding None, say) raises TypeError inside and the generic writer takes the record.

def _intent_text(i: OrderIntent) -> str:
    return (f"[{_esc(i.oms_session)},{_esc(i.cl_ord_id)},{_esc(i.symbol)},{_esc(i.side)},{_text(i.qty)},"
            f"{_esc(i.ord_type)},{'null' if i.price is None else _text(i.price)},{_esc(i.tif)},"
            f"{'null' if i.ex_destination is None else _esc(i.ex_destination)},{_text(i.received_at)}]")


def _child_text(c: ChildOrder) -> str:
    return (f"[{_esc(c.venue)},{_text(c.qty)},{'null' if c.price is None else _text(c.price)},{_esc(c.ord_type)},"
            f"{_esc(c.tif)}]")


def _accepted_text(r: "Accepted") -> str:
    return (f"{_intent_text(r.intent)},{_esc(r.order_id)},[{','.join(map(_child_text, r.children))}],"
            f"[{','.join(map(_esc, r.venue_ids))}],{_esc(r.policy)},{_esc(r.reason)},{_text(r.at)}")


def _venue_report_text(r: "VenueReport") -> str:
    e = r.report
    return (f"[{_esc(e.venue)},{_esc(e.cl_ord_id)},{'null' if e.orig_cl_ord_id is None else _esc(e.orig_cl_ord_id)},"
            f"{_esc(e.exec_id)},{_esc(e.exec_type)},{_esc(e.ord_status)},{_text(e.cum_qty)},{_text(e.leaves_qty)},"
            f"{_text(e.avg_px)},{_text(e.last_qty)},{_text(e.last_px)},"
            f"{'null' if e.venue_order_id is None else _esc(e.venue_order_id)},"
            f"{'null' if e.text is None else _esc(e.text)}],{_text(r.at)}")


_HOT: dict[type, Callable[[Any], str]] = {Accepted: _accepted_text, VenueReport: _venue_report_text}


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
    undelivered: list = field(default_factory=list)   # OMS-bound outputs of the last record, unsent maybe
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
    last_outputs: list = []      # a later line (even a torn one) means the hub went on: these were sent
    last: Any = None
    for line, rec in read_records(path):
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
        last, last_outputs = rec, outs
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
    live = {c.cl_ord_id for o in orders.open.values() for c in o.live_children()}
    exec_ids = [list(k) for k in orders.seen_exec_ids if k[1] in live]
    return Snapshot(orders=out, aliases=aliases, exec_ids=exec_ids,
                    risk_states=[_encode(r) for r in risk_states], counts=dict(orders.counts), at=at)


def restore_snapshot(snap: Snapshot, orders: OrderManager) -> None:
    """Replace ``orders``' state by the snapshot's (the inverse of ``make_snapshot``)."""
    from gateway.core.orders import OmsOrder, VenueOrder
    orders.by_oms.clear()
    orders.by_order_id.clear()
    orders.by_venue_id.clear()
    orders.open.clear()
    orders.seen_exec_ids.clear()
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
            orders.by_venue_id[child.cl_ord_id] = (child, None)
            if not child.acked and not child.done:
                orders.in_flight[child.venue] = orders.in_flight.get(child.venue, 0) + 1
        orders.by_oms[(order.session, order.cl_ord_id)] = order
        orders.by_order_id[order.order_id] = order
        if not order.done:
            orders.open[order.order_id] = order
    for session, cid, order_id in snap.aliases:
        order = orders.by_order_id.get(order_id)
        if order is not None:
            orders.by_oms.setdefault((session, cid), order)
    orders.seen_exec_ids.update(tuple(k) for k in snap.exec_ids)
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
