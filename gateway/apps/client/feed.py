"""Market data sessions straight to the venues: books per venue and our own RTT probes.

``MarketFeed`` is an ``Application`` for one initiator engine holding a session per
venue (we are another market participant there, e.g. CLIENT -> ALPHA). On logon it
subscribes (V: snapshot + incremental, bids, offers and trades for every symbol), keeps
an L2 book per venue and symbol from W/X (``gateway.core.mdfeed``), and probes each
venue with its own TestRequests on a loop timer (one RTT sample per Heartbeat that
echoes our TestReqID). It implements ``gateway.core.strategies.base.MarketView``.

Everything runs on the engine's loop thread; listeners are called with each change after
it is applied to the books, in message order.
"""
from __future__ import annotations

import asyncio
import itertools
import logging
from dataclasses import dataclass
from typing import Callable, Sequence

from gateway.common.clock import MONOTONIC, Clock
from gateway.core.book import L2Book
from gateway.core.latency import INF, LatencyEstimator, ProbeTracker
from gateway.core.mdfeed import VenueBooks, md_request_body
from gateway.fix.engine import BaseApplication, SessionHandle, Unsupported

log = logging.getLogger("client.feed")

# listener(kind "book"|"trade", venue, symbol, price, qty, aggressor side or None, at)
Listener = Callable[[str, str, str, float, float, "str | None", float], None]


@dataclass(frozen=True, slots=True, kw_only=True)
class VenueAddress:
    name: str                 # the venue's CompID (our TargetCompID)
    host: str
    port: int


class MarketFeed(BaseApplication):
    def __init__(self, venues: Sequence[VenueAddress], symbols: Sequence[str], tick_sizes: dict[str, float], *,
                 depth: int = 5, probe_interval_s: float = 0.05, clock: Clock = MONOTONIC,
                 md_prefix: str = "MD") -> None:
        self.addresses = {v.name: v for v in venues}
        self.symbols = list(symbols)
        self.ticks = dict(tick_sizes)
        self.depth = depth
        self.clock = clock
        self.probe_interval_s = probe_interval_s
        self.md_prefix = md_prefix
        self.books = {v.name: VenueBooks(v.name, lambda s: L2Book(s, clock)) for v in venues}
        self.latency = {v.name: LatencyEstimator(clock, window=200, stale_after_s=INF) for v in venues}
        self.probes = ProbeTracker(clock, prefix=f"{md_prefix}PRB")
        self.sessions: dict[str, SessionHandle] = {}       # venue -> logged-on session
        self.listeners: list[Listener] = []
        self.on_ready: Callable[[], None] | None = None
        self.stats = {"md_messages": 0, "md_rejects": 0, "md_skipped": 0, "probes": 0}
        # When the bytes of the message being handled were read from the socket (the engine's
        # transport edge; None with the quickfix backend): the listeners may read it.
        self.last_read_at: float | None = None
        self._req_ids = itertools.count(1)
        self._probe_handle: asyncio.TimerHandle | None = None

    # ------------------------------------------------------------ MarketView
    def venues(self) -> Sequence[str]:
        return list(self.addresses)

    def book(self, venue: str, symbol: str) -> L2Book | None:
        vb = self.books.get(venue)
        book = vb.books.get(symbol) if vb is not None else None
        return None if book is None or book.stale else book

    def rtt_us(self, venue: str) -> float:
        est = self.latency.get(venue)
        return INF if est is None or venue not in self.sessions else est.route_us

    def tick_size(self, symbol: str) -> float:
        return self.ticks.get(symbol, 0.01)

    def ready(self) -> bool:
        """Every venue logged on and every symbol's book seen on every venue."""
        return len(self.sessions) == len(self.addresses) and all(
            self.book(v, s) is not None for v in self.addresses for s in self.symbols)

    # ------------------------------------------------------------ sessions
    def on_logon(self, session: SessionHandle) -> None:
        venue = session.target_comp_id
        if venue not in self.addresses:
            return
        self.sessions[venue] = session
        vb = self.books[venue]
        vb.req_symbols.clear()
        vb.mark_stale()
        req_id = f"{self.md_prefix}-{venue}-{next(self._req_ids)}"
        for symbol in self.symbols:
            vb.req_symbols[req_id] = symbol
        session.send("V", md_request_body(req_id, self.symbols, self.depth))
        self._ensure_probing()

    def on_logout(self, session: SessionHandle, reason: str) -> None:
        venue = session.target_comp_id
        self.sessions.pop(venue, None)
        self.probes.clear(venue)
        if venue in self.books:
            self.books[venue].mark_stale()

    def on_admin(self, session: SessionHandle, msg) -> None:
        if msg.msg_type != "0":
            return
        venue = session.target_comp_id
        rtt = self.probes.on_heartbeat(venue, msg.get(112))
        if rtt is not None and venue in self.latency:
            self.latency[venue].add(rtt)

    def on_message(self, session: SessionHandle, msg) -> None:
        venue = session.target_comp_id
        vb = self.books.get(venue)
        mt = msg.msg_type
        if vb is None or mt not in ("W", "X", "Y"):
            raise Unsupported(f"MsgType {mt} not handled by the market data client")
        self.stats["md_messages"] += 1
        self.last_read_at = getattr(session, "received_at", None)
        if mt == "Y":
            self.stats["md_rejects"] += 1
            log.warning("venue %s rejected market data: %s", venue, msg.get(58))
            return
        skipped = vb.skipped
        changes = vb.on_snapshot(msg.pairs) if mt == "W" else vb.on_incremental(msg.pairs)
        self.stats["md_skipped"] += vb.skipped - skipped
        now = self.clock.now()
        for symbol, kind, px, qty, aggressor in changes:
            for listener in self.listeners:
                listener(kind, venue, symbol, px, qty, aggressor, now)
        if self.on_ready is not None and self.ready():
            ready, self.on_ready = self.on_ready, None
            ready()

    # ------------------------------------------------------------ probes
    def _ensure_probing(self) -> None:
        if self._probe_handle is None and self.probe_interval_s > 0:
            loop = asyncio.get_running_loop()
            self._probe_handle = loop.call_later(self.probe_interval_s, self._probe_round)

    def _probe_round(self) -> None:
        self._probe_handle = None
        for venue, session in list(self.sessions.items()):
            if session.send_test_request(self.probes.new_probe(venue)):
                self.stats["probes"] += 1
        if self.sessions:
            self._ensure_probing()

    def stop(self) -> None:
        if self._probe_handle is not None:
            self._probe_handle.cancel()
            self._probe_handle = None

    def snapshot(self) -> dict:
        """Per venue: logged on, RTT estimate and top of book (for live views and reports)."""
        out = {}
        for venue in self.addresses:
            est = self.latency[venue]
            tops = {}
            for symbol in self.symbols:
                book = self.book(venue, symbol)
                tops[symbol] = None if book is None else {"bid": book.best_bid(), "ask": book.best_ask()}
            out[venue] = {"up": venue in self.sessions, "rtt_us": None if est.route_us == INF else est.route_us,
                          "samples": est.count, "books": tops}
        return out
