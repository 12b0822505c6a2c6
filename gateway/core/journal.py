"""The order journal: every order event, written before it is applied or sent, replayed on start.

quickfix's FileStores keep the sequence numbers and the messages; this journal keeps what
only the gateway knows: which venue order belongs to which OMS order, and what happened
to it. Each line is one JSON object written with a single ``os.write`` on an O_APPEND file
descriptor: the kernel has it as soon as the call returns, so a SIGKILL loses nothing
already written (a power cut may; there is no fsync per order, by choice, for latency).

Record format (one line): ``{"kind": "accepted", "n": 12, "utc": "2026-12-01T14:56:54.123456Z",
"mono": 8812.5, <the record's fields by name>}``. Each kind is a frozen dataclass below:
its fields, defined once there, are the JSON keys, and replay rebuilds it by field name
(``Accepted(**fields)``), never by position. Nested values (``OrderIntent``,
``ChildOrder``, ``VenueExecutionReport``) are JSON objects keyed by their own field names.
JSON is written with ``ensure_ascii``: any str a FIX field may carry (bytes decoded as
latin-1, lone surrogates from surrogateescape) round-trips as ``\\uXXXX`` escapes.

Invariants:
- replay is TOTAL: any file the gateway wrote replays. A line that does not parse (a torn
  last line), an unknown kind, or a record the order manager cannot apply is counted,
  logged with its line number, and skipped; replay never raises for the file's content;
- replay drives the same ``OrderManager`` methods as the live path with the recorded ids
  and timestamps and keeps their outputs only to hand back what the LAST record asked to
  tell the OMS (the hub writes a record before it sends; one that is followed by another
  was sent, see ``ReplayResult.undelivered``);
- the pre-issue-13 format (JSON arrays with one-letter kinds) still replays (``_LEGACY``).

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
import os
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator

from gateway.core.model import ChildOrder, OrderIntent
from gateway.core.orders import OrderManager, RejectOmsCancel, ReportToOms, VenueExecutionReport

log = logging.getLogger("gateway.core.journal")
_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=True).encode


# ------------------------------------------------------------ the record kinds

@dataclass(frozen=True, kw_only=True)
class Accepted:
    intent: OrderIntent
    order_id: str
    children: list[ChildOrder]
    venue_ids: list[str]
    policy: str = ""
    reason: str = ""
    at: float = 0.0


@dataclass(frozen=True, kw_only=True)
class Rejected:
    intent: OrderIntent
    order_id: str
    text: str
    reason: int
    at: float = 0.0


@dataclass(frozen=True, kw_only=True)
class VenueReport:
    report: VenueExecutionReport
    at: float = 0.0


@dataclass(frozen=True, kw_only=True)
class Cancel:
    session: str
    cl_ord_id: str
    orig_cl_ord_id: str
    venue_ids: list[str]
    at: float = 0.0


@dataclass(frozen=True, kw_only=True)
class CancelAll:
    text: str
    venue_ids: list[str]
    session: str | None = None        # None: every open order (the kill switch)
    at: float = 0.0


@dataclass(frozen=True, kw_only=True)
class Replace:
    session: str
    new: OrderIntent
    orig_cl_ord_id: str
    venue_id: str
    at: float = 0.0


@dataclass(frozen=True, kw_only=True)
class Retry:
    order_id: str
    spec: ChildOrder
    venue_id: str
    at: float = 0.0


@dataclass(frozen=True, kw_only=True)
class RemainderDone:
    order_id: str
    text: str | None = None
    at: float = 0.0


@dataclass(frozen=True, kw_only=True)
class CancelRejected:
    venue_cl_ord_id: str
    text: str
    at: float = 0.0


@dataclass(frozen=True, kw_only=True)
class SendFailed:
    venue_cl_ord_id: str
    text: str
    at: float = 0.0


@dataclass(frozen=True, kw_only=True)
class RiskState:
    """A kill-switch trip or reset (or one session's suspension): a restart must not quietly resume."""
    state: str
    reason: str
    by: str
    session: str | None = None
    at: float = 0.0


@dataclass(frozen=True, kw_only=True)
class DayEnded:
    """Open Day orders end: ``venue``'s session ended (expired there), or (None) the configured
    day end: expired at once on ``down_venues``, a cancel per live venue order elsewhere (ids
    in ``venue_ids``), each order expired when its venue confirms."""
    text: str
    venue: str | None = None
    venue_ids: list[str] = field(default_factory=list)
    down_venues: list[str] = field(default_factory=list)
    at: float = 0.0


@dataclass(frozen=True, kw_only=True)
class Snapshot:
    """The whole order state at a safe point: the first record of a compacted journal."""
    orders: list = field(default_factory=list)        # export_order() of every order kept
    aliases: list = field(default_factory=list)       # [session, ClOrdID, order_id]: replaced/cancel ids
    exec_ids: list = field(default_factory=list)      # [venue, venue ClOrdID, ExecID] of live venue orders
    risk_states: list = field(default_factory=list)   # RiskState fields in force (firm, per session)
    counts: dict = field(default_factory=dict)
    at: float = 0.0


@dataclass(frozen=True, kw_only=True)
class Stopped:
    """A clean stop: everything before it was sent."""
    at: float = 0.0


KINDS: dict[str, type] = {
    "accepted": Accepted, "rejected": Rejected, "venue_report": VenueReport, "cancel": Cancel,
    "cancel_all": CancelAll, "replace": Replace, "retry": Retry, "remainder_done": RemainderDone,
    "cancel_reject": CancelRejected, "send_failed": SendFailed, "risk_state": RiskState, "stopped": Stopped,
    "day_ended": DayEnded, "snapshot": Snapshot,
}
KIND_OF = {cls: kind for kind, cls in KINDS.items()}
# nested values, by field name: rebuilt by their own field names
_NESTED: dict[str, type] = {"intent": OrderIntent, "new": OrderIntent, "spec": ChildOrder,
                            "report": VenueExecutionReport}


def _encode(value: Any) -> Any:
    if dataclasses.is_dataclass(value):
        return {f.name: _encode(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, list):
        return [_encode(v) for v in value]
    return value


def _build(cls: type, obj: dict) -> Any:
    """``cls(**obj)`` by field name; unknown keys are ignored, missing ones take their defaults."""
    names = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: v for k, v in obj.items() if k in names})


def decode(obj: dict) -> Any:
    """A parsed journal line -> its record dataclass. Raises (KeyError, TypeError, ...) if it is not one."""
    cls = KINDS[obj["kind"]]
    fields = {}
    for f in dataclasses.fields(cls):
        if f.name not in obj:
            continue
        v = obj[f.name]
        if f.name in _NESTED:
            v = _build(_NESTED[f.name], v)
        elif f.name == "children":
            v = [_build(ChildOrder, c) for c in v]
        fields[f.name] = v
    return cls(**fields)


def utc_now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


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
        line = {"kind": KIND_OF[type(record)], "n": n, "utc": self._wall(), "mono": self._mono()}
        for f in dataclasses.fields(record):
            line[f.name] = _encode(getattr(record, f.name))
        os.write(self._fd, (_dumps(line) + "\n").encode("ascii"))
        self.next_n += 1
        self.records_written += 1
        return n

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
        line = {"kind": "snapshot", "n": 1, "utc": self._wall(), "mono": self._mono()}
        for f in dataclasses.fields(snapshot):
            line[f.name] = _encode(getattr(snapshot, f.name))
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, (_dumps(line) + "\n").encode("ascii"))
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
                obj = json.loads(raw)
                yield n, (_legacy(obj) if isinstance(obj, list) else decode(obj))
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

def _legacy_intent(r: list) -> OrderIntent:
    return OrderIntent(*r)


def _legacy_child(r: list) -> ChildOrder:
    return ChildOrder(*r)


def _legacy(rec: list) -> Any:
    k = rec[0]
    if k == "A":
        _, i, oid, ch, ids, pol, why, at = rec
        return Accepted(intent=_legacy_intent(i), order_id=oid, children=[_legacy_child(c) for c in ch],
                        venue_ids=ids, policy=pol, reason=why, at=at)
    if k == "J":
        _, i, oid, text, reason, at = rec
        return Rejected(intent=_legacy_intent(i), order_id=oid, text=text, reason=reason, at=at)
    if k == "X":
        names = ("venue", "cl_ord_id", "orig_cl_ord_id", "exec_id", "exec_type", "ord_status", "cum_qty",
                 "leaves_qty", "avg_px", "last_qty", "last_px", "venue_order_id", "text")
        return VenueReport(report=VenueExecutionReport(**dict(zip(names, rec[1:14]))), at=rec[14])
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
