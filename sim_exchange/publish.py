"""Engine events -> a venue's messages: one place for both venue engines (native, quickfix).

``EventPublisher`` is the base of ``venuecore.VenueCore`` (``native.NativeVenue``) and of
``venue.Venue`` (quickfix); compiled with mypyc (``gateway/common/accel.py``). They supply how
one message goes out (``_send_report``, ``_send_cancel_reject``, ``_send_incremental``), who
is subscribed (``_md_targets``), when held messages leave (``_begin_step``, ``_reports_out``,
``_end_step``) and what follows a step (``_after_publish``).

Invariants (both engines):
- every event of an engine step is published even if one fails: each report and each
  market-data message is caught, counted in ``stats["publish_errors"]`` and logged;
- per counterparty, a step's reports leave in engine order and before any of that step's
  market data; then one X per subscription per step (trades first, then the level changes);
- background flow (owners starting with ``FLOW_OWNER_PREFIX``) gets no ExecutionReports;
- an order's reports leave together: every report of a step is formatted and queued first,
  then ``_reports_out`` hands each counterparty's reports to the wire at once (native: one
  write per counterparty, ack and fills or the IOC's cancel in one segment), and only then is
  the step's market data formatted. Sends between ``_begin_step`` and ``_end_step`` are
  batched (native: the engine's send batch; quickfix writes each message as it is sent).
"""
from __future__ import annotations

import logging
from typing import Any, Iterable

from mypy_extensions import mypyc_attr

from gateway.core.matching.engine import MatchingEngine
from gateway.core.matching.events import TRADE as TRADE_REPORT
from gateway.core.matching.events import BookTouched, CancelReject, ExecReport, TradePrint
from gateway.core.matching.marketdata import TRADE, MDEntry, Subscription
from sim_exchange.flow import FLOW_OWNER_PREFIX

log = logging.getLogger("sim.publish")


@mypyc_attr(allow_interpreted_subclasses=True)      # venue.Venue (quickfix) and native.NativeVenue
class EventPublisher:
    name: str
    engine: MatchingEngine
    stats: dict[str, int]
    order_log: Any                                    # status.OrderLog

    # -- what each engine provides
    def _send_report(self, er: ExecReport) -> None:
        raise NotImplementedError

    def _send_cancel_reject(self, cr: CancelReject) -> None:
        raise NotImplementedError

    def _send_incremental(self, counterparty: str, req_id: str, entries: list[MDEntry]) -> None:
        raise NotImplementedError

    def _md_targets(self) -> Iterable[tuple[str, list[Subscription]]]:
        """(counterparty, its subscriptions), a copy safe to iterate while sending."""
        raise NotImplementedError

    def _begin_step(self) -> Any:
        """A step's sends begin: hold them until ``_reports_out`` / ``_end_step`` (a token for it)."""
        return None

    def _reports_out(self, owners: list[str]) -> None:
        """Every report of the step is queued: send what each of ``owners`` has, now."""

    def _end_step(self, token: Any) -> None:
        """The step is published: send whatever is still held (the market data)."""

    def _after_publish(self, touched: list[str]) -> None:
        """Books of ``touched`` symbols changed in this step (the market's hook)."""

    # -- the shared part
    def _publish(self, events: list) -> None:
        touched: list[str] = []
        trades: dict[str, list[TradePrint]] = {}
        owners: list[str] = []                 # counterparties with reports, in engine order
        token = self._begin_step()
        try:
            for ev in events:
                try:
                    owner = self._publish_one(ev, touched, trades)
                except Exception:  # noqa: BLE001 - one bad report must not drop the rest of the step
                    self.stats["publish_errors"] += 1
                    log.exception("%s: cannot publish %r", self.name, ev)
                    continue
                if owner is not None and owner not in owners:
                    owners.append(owner)
            if owners:
                try:
                    self._reports_out(owners)
                except Exception:  # noqa: BLE001 - the market data still goes out
                    self.stats["publish_errors"] += 1
                    log.exception("%s: cannot send the reports of a step", self.name)
            if touched:
                self._publish_md(touched, trades)
        finally:
            self._end_step(token)
        if touched:
            self._after_publish(touched)

    def _publish_one(self, ev: Any, touched: list[str], trades: dict[str, list[TradePrint]]) -> str | None:
        """Publish one event; the owner a report went to, else None."""
        if isinstance(ev, ExecReport):
            if ev.owner.startswith(FLOW_OWNER_PREFIX):
                return None
            self.stats["exec_reports"] += 1
            if ev.exec_type == TRADE_REPORT:
                self.order_log.report(ev)            # fills are what it counts
            self._send_report(ev)
            return ev.owner
        if isinstance(ev, (BookTouched, TradePrint)):
            if isinstance(ev, TradePrint):
                trades.setdefault(ev.symbol, []).append(ev)
            if ev.symbol not in touched:
                touched.append(ev.symbol)
        elif isinstance(ev, CancelReject):
            self._send_cancel_reject(ev)
            return ev.owner
        return None

    def _publish_md(self, touched: list[str], trades: dict[str, list[TradePrint]]) -> None:
        """One X per subscription per engine step, with every level change and trade."""
        for cp, subs in self._md_targets():
            for sub in subs:
                try:
                    entries: list[MDEntry] = []
                    for symbol in touched:
                        if symbol not in sub.symbols:
                            continue
                        for t in trades.get(symbol, ()):
                            entries.append(MDEntry("0", TRADE, symbol, t.price, t.qty))
                        entries += sub.update(self.engine, symbol)
                    if entries:
                        self.stats["md_messages"] += 1
                        self._send_incremental(cp, sub.req_id, entries)
                except Exception:  # noqa: BLE001
                    self.stats["publish_errors"] += 1
                    log.exception("%s: cannot publish market data to %s", self.name, cp)
