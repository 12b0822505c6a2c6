"""The decision log: every routing decision with its reason and the numbers behind it.

The hot path only appends a tuple to a bounded ring (``decision_log_size``); dicts for
people and JSON are built lazily by ``recent()`` and the exports. With a
``decision_log_path`` a background thread appends new records as JSON lines once a
second (and at ``close()``/interpreter exit): no file write per order.

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
from time import time as wall_time
from typing import Any

from gateway.core.model import OrderIntent, RoutingDecision

# One per-venue score tuple, as the policies record them.
SCORE_FIELDS = ("venue", "up", "latency_us", "stale", "available", "vanish_qty", "fill_prob", "price")
REJECTED = "(rejected)"


def score_dict(row: tuple) -> dict[str, Any]:
    d = dict(zip(SCORE_FIELDS, row))
    lat = d.get("latency_us")
    d["latency_us"] = None if lat is None or lat == float("inf") else round(lat, 1)
    for k in ("available", "vanish_qty", "fill_prob"):
        if isinstance(d.get(k), float):
            d[k] = round(d[k], 6)
    return d


def decision_dict(decision: RoutingDecision, intent: OrderIntent, wall: float, seq: int) -> dict[str, Any]:
    return {
        "seq": seq, "time": wall, "policy": decision.policy, "oms_session": intent.oms_session,
        "cl_ord_id": intent.cl_ord_id, "symbol": intent.symbol, "side": intent.side, "qty": intent.qty,
        "ord_type": intent.ord_type, "price": intent.price, "tif": intent.tif,
        "ex_destination": intent.ex_destination, "rejected": decision.rejected,
        "children": [{"venue": c.venue, "qty": c.qty, "price": c.price, "ord_type": c.ord_type,
                      "tif": c.tif} for c in decision.children],
        "reason": decision.reason, "decision_us": round(decision.decision_us, 3),
        "scores": [score_dict(r) if isinstance(r, tuple) else r for r in decision.scores],
    }


class DecisionLog:
    """Bounded ring of decisions; counts per venue; JSONL export."""

    def __init__(self, size: int = 10_000, path: str | Path | None = None, flush_interval_s: float = 1.0) -> None:
        self._ring: deque = deque(maxlen=size)
        self._counts: dict[str, int] = {}
        self._seq = 0
        self.path = Path(path) if path else None
        self._unwritten: deque = deque()             # records for the flusher (path only)
        self._stop = threading.Event()
        self._flusher_thread: threading.Thread | None = None
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._flusher_thread = threading.Thread(target=self._flusher, args=(flush_interval_s,),
                                            name="decision-log", daemon=True)
            self._flusher_thread.start()
            atexit.register(self.close)

    def record(self, decision: RoutingDecision, intent: OrderIntent) -> None:
        """Hot path: one tuple appended (the intent is kept by reference)."""
        counts = self._counts
        seq = self._seq = self._seq + 1
        rec = (seq, wall_time(), decision, intent)
        self._ring.append(rec)
        children = decision.children
        if children:
            for c in children:
                venue = c.venue
                counts[venue] = counts.get(venue, 0) + 1
        else:
            counts[REJECTED] = counts.get(REJECTED, 0) + 1
        if self.path is not None:
            self._unwritten.append(rec)

    def last_for(self, intent: OrderIntent, scan: int = 2000) -> RoutingDecision | None:
        """The latest decision recorded for this order (same intent object, or same session and
        ClOrdID), looking back at most ``scan`` records."""
        ring = self._ring
        n = len(ring)
        for k in range(1, min(scan, n) + 1):
            _, _, d, it = ring[n - k]
            if it is intent or (it.cl_ord_id == intent.cl_ord_id and it.oms_session == intent.oms_session):
                return d
        return None

    def __len__(self) -> int:
        return len(self._ring)

    @property
    def total(self) -> int:
        return self._seq

    def recent(self, n: int = 50) -> list[dict[str, Any]]:
        """The last ``n`` decisions, oldest first, as JSON-able dicts."""
        recs = list(self._ring)[-n:] if n > 0 else []
        return [decision_dict(d, row, wall, seq) for seq, wall, d, row in recs]

    def counts_by_venue(self) -> dict[str, int]:
        """Child orders per venue since start; rejected decisions under '(rejected)'."""
        return dict(self._counts)

    def export_jsonl(self, path: str | Path) -> int:
        """Write every decision still in the ring to ``path`` (overwrites); returns the count."""
        return _write(Path(path), list(self._ring), "w")

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
        for seq, wall, d, row in recs:
            fh.write(json.dumps(decision_dict(d, row, wall, seq), default=str) + "\n")
    return len(recs)
