"""The order journal: every order event, appended before anything is sent, replayed on start.

quickfix's FileStores keep the sequence numbers and the messages; this journal keeps what
only the gateway knows: which venue order belongs to which OMS order, and what happened
to it. Each line is one JSON array written with a single ``os.write`` on an O_APPEND file
descriptor: the kernel has it as soon as the call returns, so a SIGKILL loses nothing
already written (a power cut may; there is no fsync per order, by choice, for latency).

Replay drives the same ``OrderManager`` methods as the live path, with the ids and
timestamps recorded, and discards their output: the state after a restart is the state
before the crash, and no venue order is sent again. A torn last line is ignored.
"""
from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Iterator

from gateway.core.model import ChildOrder, OrderIntent
from gateway.core.orders import OrderManager, VenueExec

log = logging.getLogger("gateway.core.journal")
_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def intent_record(i: OrderIntent) -> list:
    return [i.oms_session, i.cl_ord_id, i.symbol, i.side, i.qty, i.ord_type, i.price, i.tif, i.ex_destination]


def intent_from(rec: list) -> OrderIntent:
    return OrderIntent(*rec)


def child_record(c: ChildOrder) -> list:
    return [c.venue, c.qty, c.price, c.ord_type, c.tif]


class Journal:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fd: int | None = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self.records_written = 0

    def write(self, record: list) -> None:
        if self._fd is None:
            return
        os.write(self._fd, (_dumps(record) + "\n").encode())
        self.records_written += 1

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    # ------------------------------------------------------------ the record kinds

    def accepted(self, intent: OrderIntent, order_id: str, children: list[ChildOrder], ids: list[str],
                 policy: str, reason: str, now: float) -> None:
        self.write(["A", intent_record(intent), order_id, [child_record(c) for c in children], ids,
                    policy, reason, now])

    def rejected(self, intent: OrderIntent, order_id: str, text: str, reason: int, now: float) -> None:
        self.write(["J", intent_record(intent), order_id, text, reason, now])

    def venue_exec(self, ev: VenueExec, now: float) -> None:
        self.write(["X", ev.venue, ev.cl_ord_id, ev.orig_cl_ord_id, ev.exec_id, ev.exec_type, ev.ord_status,
                    ev.cum_qty, ev.leaves_qty, ev.avg_px, ev.last_qty, ev.last_px, ev.venue_order_id,
                    ev.text, now])

    def cancel(self, session: str, cl_ord_id: str, orig: str, ids: list[str]) -> None:
        self.write(["C", session, cl_ord_id, orig, ids])

    def cancel_all(self, text: str, ids: list[str]) -> None:
        self.write(["K", text, ids])

    def replace(self, session: str, new: OrderIntent, orig: str, venue_id: str) -> None:
        self.write(["R", session, intent_record(new), orig, venue_id])

    def retry(self, order_id: str, spec: ChildOrder, venue_id: str, now: float) -> None:
        self.write(["Y", order_id, child_record(spec), venue_id, now])

    def cancel_reject(self, venue_cl_ord_id: str, text: str) -> None:
        self.write(["Z", venue_cl_ord_id, text])

    def send_failed(self, venue_cl_ord_id: str, text: str) -> None:
        self.write(["F", venue_cl_ord_id, text])

    def risk_state(self, state: str, reason: str, by: str) -> None:
        """A kill-switch trip or reset: a restart must not quietly resume trading."""
        self.write(["S", state, reason, by])


def read_records(path: str | Path) -> Iterator[list]:
    p = Path(path)
    if not p.exists():
        return
    with p.open("rb") as fh:
        for n, raw in enumerate(fh, 1):
            try:
                yield json.loads(raw)
            except ValueError:
                log.warning("journal %s line %d unreadable (torn write at a crash?): skipped", p, n)


def replay(path: str | Path, orders: OrderManager, risk_states: list | None = None) -> int:
    """Rebuild ``orders`` from the journal; returns the number of records applied.

    Kill-switch records (state, reason, by) are appended to ``risk_states`` in order.
    """
    risk, retry, reject_hook = orders.risk, orders.retry_route, orders.on_venue_reject
    # replay reconstructs; it must not re-run risk, re-route or count venue rejects again
    orders.risk, orders.on_venue_reject = None, None
    orders.retry_route = lambda order, remaining: None
    applied = 0
    try:
        for rec in read_records(path):
            if rec[0] == "S":
                if risk_states is not None:
                    risk_states.append(tuple(rec[1:4]))
            else:
                _apply(rec, orders)
            applied += 1
    finally:
        orders.risk, orders.retry_route, orders.on_venue_reject = risk, retry, reject_hook
    return applied


def _ids(ids: list[str]):
    it = iter(ids)
    return lambda: next(it)


def _apply(rec: list, orders: OrderManager) -> None:
    kind = rec[0]
    if kind == "A":
        _, intent, order_id, children, ids, policy, reason, now = rec
        orders.accept(intent_from(intent), order_id, [ChildOrder(*c) for c in children], ids, policy, reason, now)
    elif kind == "J":
        _, intent, order_id, text, reason, now = rec
        orders.reject_new(intent_from(intent), order_id, text, reason, now)
    elif kind == "X":
        ev = VenueExec(*rec[1:14])
        orders.on_venue_exec(ev, rec[14])
    elif kind == "C":
        _, session, cl_ord_id, orig, ids = rec
        orders.cancel(session, cl_ord_id, orig, _ids(ids))
    elif kind == "K":
        _, text, ids = rec
        orders.cancel_all(_ids(ids), text)
    elif kind == "R":
        _, session, intent, orig, venue_id = rec
        orders.replace(session, intent_from(intent), orig, venue_id)
    elif kind == "Y":
        _, order_id, spec, venue_id, now = rec
        order = orders.by_order_id.get(order_id)
        if order is not None:
            order.retried = True
            orders.add_retry(order, ChildOrder(*spec), venue_id, now)
    elif kind == "Z":
        orders.on_venue_cancel_reject(rec[1], rec[2])
    elif kind == "F":
        child = orders.find_child(rec[1])
        if child is not None:
            orders.send_failed(child, rec[2])
