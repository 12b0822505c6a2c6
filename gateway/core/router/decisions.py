"""The decision log: every routing decision with its reason and the numbers behind it.

The hot path only appends one record to a bounded ring (``decision_log_size``); dicts for
people and JSON are built lazily by ``recent()`` and the exports. With a
``decision_log_path`` a background thread appends new records as JSON lines once a
second (and at ``close()``/interpreter exit): no file write per order.

A record is a tuple of plain values (text, numbers, None and tuples of them: ``_record``), not
the decision and its intent: the collector untracks such a tuple when it finds it holds no
tracked object (within its first two collections: a tuple is untracked after what it holds), so
the ring (10,000 decisions by default, one per order) adds nothing for the older collections
to visit, where a kept ``RoutingDecision`` was four survivors per order (the decision, its
children and scores lists, a ``ChildOrder``) and a record tuple, each visited by every later
collection until the ring dropped it (issue 12, round 5).

No lock: one thread records (the gateway's loop; the backtester's own), and the views run
there too (the admin thread asks through the loop, ``Gateway.on_loop``). The one other
thread, the flusher, only takes records from ``_unwritten``, a deque whose ``append`` and
``popleft`` are atomic, so a record appended while it writes waits for the next flush. Copies
of the ring (``list(deque)``) and of the counts (``dict(d)``) are single C calls that hold the
GIL throughout, should a view ever run on another thread.
"""
from __future__ import annotations

import atexit
import json
import threading
from collections import deque
from pathlib import Path
import time
from typing import Any, Callable, Final

from gateway.core.model import ChildOrder, OrderIntent, RoutingDecision

# One per-venue score tuple, as the policies record them.
SCORE_FIELDS = ("venue", "up", "latency_us", "stale", "available", "vanish_qty", "fill_prob", "price")
REJECTED: Final = "(rejected)"
_wall_time: Final = time.time    # a static when compiled: no module dict read per record


def score_dict(row: tuple) -> dict[str, Any]:
    d = dict(zip(SCORE_FIELDS, row))
    lat = d.get("latency_us")
    d["latency_us"] = None if lat is None or lat == float("inf") else round(lat, 1)
    for k in ("available", "vanish_qty", "fill_prob"):
        if isinstance(d.get(k), float):
            d[k] = round(d[k], 6)
    return d


# A ring record: (wall time, policy, reason, decided_at, decision_us, <the intent's fields in
# order: _INTENT_FIELDS>, score rows, <children>). ``score rows`` is a tuple of the policy's score
# tuples; ``children`` are flat, to the record's end: the ``ChildOrder`` fields in order
# (_CHILD_FIELDS), five values per child, one after the other. Flat, because every tuple the ring
# keeps is one more object the collector counts towards its next young collection (untracked
# there, but counted): a record is one tuple of its own (the score rows are the policy's).
_INTENT_FIELDS = ("oms_session", "cl_ord_id", "symbol", "side", "qty", "ord_type", "price", "tif", "ex_destination")
_CHILD_FIELDS = ("venue", "qty", "price", "ord_type", "tif")
_W: Final = 5                     # len(_CHILD_FIELDS)
_INTENT_AT: Final = 5
_SCORES_AT: Final = 14             # _INTENT_AT + len(_INTENT_FIELDS) (asserted below)
_CHILDREN_AT: Final = 15
assert _SCORES_AT == _INTENT_AT + len(_INTENT_FIELDS) and _CHILDREN_AT == _SCORES_AT + 1


def _record(decision: RoutingDecision, intent: OrderIntent, wall: float) -> tuple:
    """The ring's record of ``decision``: plain values only (see the module docstring)."""
    children = decision.children
    scores = decision.scores
    srows: tuple = scores if type(scores) is tuple else tuple(scores)
    i = intent
    if len(children) == 1:
        c = children[0]
        return (wall, decision.policy, decision.reason, decision.decided_at, decision.decision_us, i.oms_session,
                i.cl_ord_id, i.symbol, i.side, i.qty, i.ord_type, i.price, i.tif, i.ex_destination, srows,
                c.venue, c.qty, c.price, c.ord_type, c.tif)
    flat: list = [wall, decision.policy, decision.reason, decision.decided_at, decision.decision_us, i.oms_session,
                  i.cl_ord_id, i.symbol, i.side, i.qty, i.ord_type, i.price, i.tif, i.ex_destination, srows]
    for c in children:
        flat += [c.venue, c.qty, c.price, c.ord_type, c.tif]
    return tuple(flat)


def _child_rows(rec: tuple) -> list[tuple]:
    """The record's children, one tuple of ``_CHILD_FIELDS`` each."""
    return [rec[k:k + _W] for k in range(_CHILDREN_AT, len(rec), _W)]


def _decision(rec: tuple) -> RoutingDecision:
    """A ring record back as a ``RoutingDecision`` (its children new ``ChildOrder`` objects)."""
    return RoutingDecision(rec[1], [ChildOrder(*row) for row in _child_rows(rec)], rec[2],
                           rec[_SCORES_AT], rec[3], rec[4])


def decision_dict(rec: tuple, seq: int) -> dict[str, Any]:
    """A ring record as a JSON-able dict (the admin view, the JSONL export)."""
    return {
        "seq": seq, "time": rec[0], "policy": rec[1], **dict(zip(_INTENT_FIELDS, rec[_INTENT_AT:_SCORES_AT])),
        "rejected": len(rec) <= _CHILDREN_AT,
        "children": [dict(zip(_CHILD_FIELDS, row)) for row in _child_rows(rec)],
        "reason": rec[2], "decision_us": round(rec[4], 3),
        "scores": [score_dict(r) if isinstance(r, tuple) else r for r in rec[_SCORES_AT]],
    }


class DecisionLog:
    """Bounded ring of decision records (``_record``); counts per venue; JSONL export."""

    def __init__(self, size: int = 10_000, path: str | Path | None = None, flush_interval_s: float = 1.0) -> None:
        self._ring: deque = deque(maxlen=size)
        # the ring's append, bound once: a direct call of the C method per record, where
        # ``self._ring.append(rec)`` looks the method up (a bound method made) every time
        self._append: Callable[[tuple], None] = self._ring.append
        self._counts: dict[str, int] = {}
        self._seq = 0
        self.path = Path(path) if path else None
        self._unwritten: deque = deque()             # (seq, record) for the flusher (path only)
        self._stop = threading.Event()
        self._flusher_thread: threading.Thread | None = None
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._flusher_thread = threading.Thread(target=self._flusher, args=(flush_interval_s,),
                                            name="decision-log", daemon=True)
            self._flusher_thread.start()
            atexit.register(self.close)

    def record(self, decision: RoutingDecision, intent: OrderIntent) -> None:
        """Hot path: one record of plain values appended; nothing of the decision is kept."""
        counts = self._counts
        seq = self._seq = self._seq + 1
        rec = _record(decision, intent, _wall_time())
        self._append(rec)
        children = decision.children
        if children:
            for c in children:
                venue = c.venue
                counts[venue] = counts.get(venue, 0) + 1
        else:
            counts[REJECTED] = counts.get(REJECTED, 0) + 1
        if self.path is not None:
            self._unwritten.append((seq, rec))

    def _numbered(self, recs: list) -> list[tuple[int, tuple]]:
        """(seq, record) of the ring's last ``len(recs)`` records (``recs``: their list)."""
        first = self._seq - len(recs) + 1
        return [(first + k, r) for k, r in enumerate(recs)]

    def last_for(self, intent: OrderIntent, scan: int = 2000) -> RoutingDecision | None:
        """The latest decision recorded for this order (same session and ClOrdID), looking back
        at most ``scan`` records; a new ``RoutingDecision`` made from the record."""
        ring = self._ring
        n = len(ring)
        cid, session = intent.cl_ord_id, intent.oms_session
        for k in range(1, min(scan, n) + 1):
            rec = ring[n - k]
            if rec[_INTENT_AT + 1] == cid and rec[_INTENT_AT] == session:
                return _decision(rec)
        return None

    def __len__(self) -> int:
        return len(self._ring)

    @property
    def total(self) -> int:
        return self._seq

    def recent(self, n: int = 50) -> list[dict[str, Any]]:
        """The last ``n`` decisions, oldest first, as JSON-able dicts."""
        recs = self._numbered(list(self._ring)[-n:]) if n > 0 else []
        return [decision_dict(r, seq) for seq, r in recs]

    def counts_by_venue(self) -> dict[str, int]:
        """Child orders per venue since start; rejected decisions under '(rejected)'."""
        return dict(self._counts)

    def export_jsonl(self, path: str | Path) -> int:
        """Write every decision still in the ring to ``path`` (overwrites); returns the count."""
        return _write(Path(path), self._numbered(list(self._ring)), "w")

    def flush(self) -> int:
        """Append the records not yet written to ``decision_log_path``."""
        if self.path is None:
            return 0
        pending = self._unwritten
        recs = []
        for _ in range(len(pending)):        # popleft: atomic against the recording thread's append
            try:
                recs.append(pending.popleft())
            except IndexError:               # another flush (close) took the rest
                break
        return _write(self.path, recs, "a") if recs else 0

    def close(self) -> None:
        self._stop.set()
        if self._flusher_thread is not None and self._flusher_thread is not threading.current_thread():
            self._flusher_thread.join(2.0)
        self.flush()

    def _flusher(self, interval: float) -> None:
        while not self._stop.wait(interval):   # blocks between flushes: no spinning
            try:
                self.flush()
            except OSError:
                pass  # disk trouble must not stop routing; records stay in the ring


def _write(path: Path, recs: list, mode: str) -> int:
    with path.open(mode) as fh:
        for seq, rec in recs:
            fh.write(json.dumps(decision_dict(rec, seq), default=str) + "\n")
    return len(recs)
