"""Live market state per venue: session up/down, probe RTTs, order-ack latency, L2 books.

``MarketState`` implements ``gateway.core.model.VenueListener``; the gateway's venue
Application calls it from quickfix's initiator thread(s), the router reads it from the
OMS acceptor's thread. Concurrency: every write (W/X/Y, probe answers, up/down) and every
router read happens under ``MarketState.lock`` (an ``RLock``, held for microseconds; no
I/O is done while holding it). Messages are parsed before the lock is taken.

Probing and subscribing run on ONE background thread (``start()``), which blocks on an
``Event.wait`` between rounds (the GIL trap: never spin while quickfix runs):
- every ``probe_interval_ms`` it sends a TestRequest (35=1, 112=PRB-<venue>-<n>) on each
  logged-on venue session; the Heartbeat answer (35=0 with that 112) is one RTT sample;
- after a logon (``on_venue_up``) it sends one MarketDataRequest per configured symbol
  (263=1 snapshot+updates, 264=md_depth, 265=1 incremental, 267: bid, offer, trade) with
  a unique MDReqID (262). A reconnect subscribes again; books stay stale until the new
  snapshot (W) arrives.

Messages are read from their wire text (``msg.toString()``), so the same code accepts
quickfix messages, raw strings (tests, replays) and bytes.
"""
from __future__ import annotations

import itertools
import logging
import threading
import time
from typing import TYPE_CHECKING, Any, Callable, Iterable

from gateway.core.book import BID, DELETE, OFFER, TRADE, L2Book
from gateway.fix.quickfix_backend import field_pairs
from gateway.common.clock import MONOTONIC, Clock
from gateway.core.latency import INF, LatencyEstimator, ProbeTracker

if TYPE_CHECKING:  # the router package imports this module; no import cycle at run time
    from gateway.core.router.config import RoutingConfig

log = logging.getLogger("market")
Fields = list[tuple[int, str]]
# sender(session_id, msg_type, body_fields, groups) -> sent?; groups: [(count_tag, [entry_fields, ...])]
Sender = Callable[[Any, str, Fields, list[tuple[int, list[Fields]]]], bool]


def quickfix_sender(session_id: Any, msg_type: str, fields: Fields,
                    groups: list[tuple[int, list[Fields]]]) -> bool:
    """Build a quickfix message and send it on ``session_id`` (the default sender)."""
    import quickfix as fix

    from gateway.fix.quickfix_backend import new_message, send

    msg = new_message(msg_type)
    for tag, value in fields:
        msg.setField(tag, str(value))
    for count_tag, entries in groups:
        for entry in entries:
            group = fix.Group(count_tag, entry[0][0])
            for tag, value in entry:
                group.setField(tag, str(value))
            msg.addGroup(group)
    return send(msg, session_id)


def parse_fields(msg: Any) -> Fields:
    """(tag, value) pairs of a FIX message: quickfix Message, str or bytes."""
    if isinstance(msg, bytes):
        text = msg.decode("latin-1")
    elif isinstance(msg, str):
        text = msg
    else:
        text = msg.toString()
    return field_pairs(text)


def get_field(msg: Any, tag: int) -> str | None:
    if isinstance(msg, (str, bytes)):
        for t, v in parse_fields(msg):
            if t == tag:
                return v
        return None
    return msg.getField(tag) if msg.isSetField(tag) else None


class VenueState:
    """Everything known about one venue. Mutated only under ``MarketState.lock``."""

    __slots__ = ("name", "up", "session_id", "lat", "ack", "books", "pending_since",
                 "needs_subscribe", "md_req", "md_rejects", "logons", "last_md_at")

    def __init__(self, name: str, cfg: "RoutingConfig", clock: Clock) -> None:
        self.name = name
        self.up = False
        self.session_id: Any = None
        self.lat = LatencyEstimator(clock, cfg.latency_window, cfg.ewma_alpha,
                                    cfg.latency_stale_after_s, cfg.recent_samples)
        self.ack = LatencyEstimator(clock, cfg.latency_window, cfg.ewma_alpha, INF, cfg.recent_samples)
        self.books: dict[str, L2Book] = {s: L2Book(s, clock, cfg.depletion_tau_s) for s in cfg.md_symbols}
        self.pending_since: float | None = None   # send time of the oldest unanswered probe
        self.needs_subscribe = False
        self.md_req: dict[str, str] = {}          # MDReqID -> symbol
        self.md_rejects: dict[str, str] = {}      # symbol -> reason (35=Y)
        self.logons = 0
        self.last_md_at: float | None = None


class MarketState:
    """Venue sessions, latency estimates and books; the router's view of the world."""

    def __init__(self, cfg: "RoutingConfig", clock: Clock = MONOTONIC, sender: Sender | None = None) -> None:
        self.cfg = cfg
        self.clock = clock
        self.sender: Sender = sender or quickfix_sender
        self.lock = threading.RLock()
        self.venues: dict[str, VenueState] = {}
        self.venue_list: list[VenueState] = []    # stable order, for the router's loop
        self.probes = ProbeTracker(clock)
        self.rank_recent = cfg.rank_latency == "recent"
        self.stale_after_s = cfg.latency_stale_after_s
        self.inflight_grace_s = cfg.probe_interval_s / 2
        self._md_seq = itertools.count(1)
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self.probes_sent = 0
        self.send_failures = 0
        self.parse_errors = 0

    # ------------------------------------------------------------ venue lifecycle
    def register_venue(self, venue: str) -> VenueState:
        with self.lock:
            v = self.venues.get(venue)
            if v is None:
                v = self.venues[venue] = VenueState(venue, self.cfg, self.clock)
                self.venue_list = [*self.venue_list, v]   # copy-on-write: readers keep their list
            return v

    def on_venue_up(self, venue: str, session_id: Any) -> None:
        with self.lock:
            v = self.register_venue(venue)
            v.up = True
            v.session_id = session_id
            v.logons += 1
            v.pending_since = None
            self.probes.clear(venue)
            for book in v.books.values():
                book.mark_stale()       # until the new subscription's snapshot
            v.needs_subscribe = True
        if self._thread is not None and self._thread.is_alive():
            self._wake.set()
        else:
            self.subscribe_pending()

    def on_venue_down(self, venue: str) -> None:
        with self.lock:
            v = self.register_venue(venue)
            v.up = False
            v.session_id = None
            v.needs_subscribe = False
            v.pending_since = None
            self.probes.clear(venue)
            for book in v.books.values():
                book.mark_stale()

    # ------------------------------------------------------------ inbound messages
    def on_venue_admin(self, venue: str, msg: Any, msg_type: str) -> None:
        if msg_type != "0":
            return
        test_req_id = get_field(msg, 112)
        if not self.probes.is_ours(test_req_id):
            return
        with self.lock:
            rtt = self.probes.on_heartbeat(venue, test_req_id)
            v = self.venues.get(venue)
            if v is None:
                return
            v.pending_since = self.probes.oldest_pending_at(venue)
            if rtt is not None:
                v.lat.add(rtt)

    def on_venue_app(self, venue: str, msg: Any, msg_type: str) -> bool:
        if msg_type not in ("W", "X", "Y"):
            return False
        try:
            fields = parse_fields(msg)
            if msg_type == "W":
                self._on_snapshot(venue, fields)
            elif msg_type == "X":
                self._on_incremental(venue, fields)
            else:
                self._on_md_reject(venue, fields)
        except (ValueError, KeyError, TypeError):
            self.parse_errors += 1
            log.warning("venue %s: unreadable market data %s", venue, msg_type, exc_info=True)
        return True

    def _on_snapshot(self, venue: str, fields: Fields) -> None:
        head, entries = _split_entries(fields, 268, 269)
        symbol = head.get(55)
        bids, asks = [], []
        last_trade = None
        for e in entries:
            kind = e.get(269)
            if kind == BID:
                bids.append((float(e[270]), float(e.get(271, 0))))
            elif kind == OFFER:
                asks.append((float(e[270]), float(e.get(271, 0))))
            elif kind == TRADE and 270 in e:
                last_trade = (float(e[270]), float(e.get(271, 0)))
        with self.lock:
            v = self.venues.get(venue)
            if v is None:
                return
            symbol = symbol or v.md_req.get(head.get(262, ""))
            book = self._book(v, symbol)
            if book is None:
                return
            book.apply_snapshot(bids, asks)
            if last_trade:
                book.on_trade(*last_trade)
            v.last_md_at = self.clock.now()

    def _on_incremental(self, venue: str, fields: Fields) -> None:
        head, entries = _split_entries(fields, 268, 279)
        parsed = []
        symbol = head.get(55)
        for e in entries:
            symbol = e.get(55, symbol)
            px = e.get(270)
            parsed.append((symbol, e.get(279), e.get(269), None if px is None else float(px),
                           float(e[271]) if 271 in e else None))
        with self.lock:
            v = self.venues.get(venue)
            if v is None:
                return
            default_symbol = v.md_req.get(head.get(262, ""))
            for symbol, action, kind, px, qty in parsed:
                book = self._book(v, symbol or default_symbol)
                if book is None or px is None or book.stale:
                    continue  # before the snapshot an update has nothing to apply to
                if kind == TRADE:
                    if action != DELETE:
                        book.on_trade(px, qty or 0.0)
                elif kind in (BID, OFFER):
                    book.apply_update(action, kind, px, qty)
            v.last_md_at = self.clock.now()

    def _on_md_reject(self, venue: str, fields: Fields) -> None:
        d = dict(fields)
        with self.lock:
            v = self.venues.get(venue)
            if v is None:
                return
            symbol = v.md_req.get(d.get(262, ""), d.get(262, "?"))
            v.md_rejects[symbol] = d.get(58) or f"MDReqRejReason={d.get(281, '?')}"
        log.warning("venue %s rejected market data for %s: %s", venue, symbol, v.md_rejects[symbol])

    def _book(self, v: VenueState, symbol: str | None) -> L2Book | None:
        if not symbol:
            return None
        book = v.books.get(symbol)
        if book is None:   # a symbol we did not ask for: keep it anyway, it is free information
            book = v.books[symbol] = L2Book(symbol, self.clock, self.cfg.depletion_tau_s)
        return book

    # ------------------------------------------------------------ order-ack latency
    def record_ack(self, venue: str, seconds: float) -> None:
        with self.lock:
            v = self.venues.get(venue) or self.register_venue(venue)
            v.ack.add(seconds)

    # ------------------------------------------------------------ probing / subscribing
    def start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="venue-probes", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _run(self) -> None:
        interval = self.cfg.probe_interval_s
        next_round = time.monotonic()
        while not self._stop.is_set():
            try:
                self.subscribe_pending()
                if time.monotonic() >= next_round:
                    self.probe_round()
                    next_round = time.monotonic() + interval
            except Exception:  # noqa: BLE001 - the probe thread must outlive a bad round
                log.exception("probe round failed")
            self._wake.wait(max(0.0, next_round - time.monotonic()))   # blocks: no spinning
            self._wake.clear()

    def probe_round(self) -> int:
        """Send one TestRequest on each logged-on venue session; returns how many went out."""
        with self.lock:
            targets = []
            for v in self.venue_list:
                if v.up and v.session_id is not None:
                    rid = self.probes.new_probe(v.name)
                    if v.pending_since is None:
                        v.pending_since = self.probes.oldest_pending_at(v.name)
                    targets.append((v, rid))
        sent = 0
        for v, rid in targets:
            if self._send(v, "1", [(112, rid)], []):
                sent += 1
            else:
                with self.lock:
                    self.probes.clear(v.name)
                    v.pending_since = None
        self.probes_sent += sent
        return sent

    def subscribe_pending(self) -> int:
        """Send the MarketDataRequests of venues that logged on since the last call."""
        with self.lock:
            todo = []
            for v in self.venue_list:
                if v.needs_subscribe and v.up:
                    v.needs_subscribe = False
                    v.md_rejects.clear()
                    v.md_req.clear()            # a new session: the old MDReqIDs are gone
                    for symbol in self.cfg.md_symbols:
                        req_id = f"MD-{v.name}-{symbol}-{next(self._md_seq)}"
                        v.md_req[req_id] = symbol
                        todo.append((v, req_id, symbol))
        for v, req_id, symbol in todo:
            fields = [(262, req_id), (263, "1"), (264, self.cfg.md_depth), (265, "1")]
            groups = [(267, [[(269, BID)], [(269, OFFER)], [(269, TRADE)]]), (146, [[(55, symbol)]])]
            self._send(v, "V", fields, groups)
        return len(todo)

    def _send(self, v: VenueState, msg_type: str, fields: Fields, groups) -> bool:
        session_id = v.session_id
        if session_id is None:
            return False
        try:
            ok = bool(self.sender(session_id, msg_type, fields, groups))
        except Exception:  # noqa: BLE001 - a send that fails is a venue problem, not ours
            log.exception("send %s to %s failed", msg_type, v.name)
            ok = False
        if not ok:
            self.send_failures += 1
        return ok

    # ------------------------------------------------------------ reads (router, risk, status)
    def route_latency(self, v: VenueState, now: float) -> tuple[float, bool]:
        """(latency in us the router ranks by, stale?). Call under ``lock``.

        A probe unanswered for more than half a probe interval raises the estimate to its
        age: a venue that hangs is seen before it goes stale. Shorter delays are left to the
        samples (two slow answers), so a scheduling hiccup of a few ms moves nothing.
        """
        lat = v.lat
        us = lat.route_us if self.rank_recent else lat.ewma_us
        last = lat.last_at
        stale = last is None or now - last > self.stale_after_s
        pend = v.pending_since
        if pend is not None and now - pend > self.inflight_grace_s:
            age = (now - pend) * 1e6
            if age > us:
                us = age
        return us, stale

    def book_usable(self, v: VenueState, book: L2Book, now: float) -> bool:
        """Fresh enough to route on (see ``book_stale_after_s`` in router/config.py). Under ``lock``."""
        if book.stale or not v.up:
            return False
        limit = self.cfg.book_stale_after_s
        if limit > 0 and (book.last_update is None or now - book.last_update > limit):
            last = v.lat.last_at
            return last is not None and now - last <= limit
        return True

    def mark_price(self, symbol: str) -> float | None:
        """A robust mid across venues (``robust_mark`` of the fresh books' mids), else the latest trade.

        Stale books and books of venues that are down are ignored, so one venue's stuck or
        off-market quotes cannot move the mark that the loss triggers use.
        """
        with self.lock:
            now = self.clock.now()
            mids, last, last_at = [], None, -INF
            for v in self.venue_list:
                book = v.books.get(symbol)
                if book is None:
                    continue
                if self.book_usable(v, book, now):
                    m = book.mid()
                    if m is not None:
                        mids.append(m)
                if book.last_trade_px is not None and (book.last_update or 0.0) > last_at:
                    last, last_at = book.last_trade_px, book.last_update or 0.0
            return robust_mark(mids) if mids else last

    def venue(self, name: str) -> VenueState | None:
        return self.venues.get(name)

    def up_venues(self) -> list[str]:
        return [v.name for v in self.venue_list if v.up]

    def snapshot(self) -> dict:
        with self.lock:
            now = self.clock.now()
            out = {}
            for v in self.venue_list:
                route_us, stale = self.route_latency(v, now)
                lat = v.lat.snapshot()
                lat["route_us"] = None if route_us == INF else round(route_us, 3)
                lat["stale"] = stale
                books = {}
                for symbol, book in v.books.items():
                    b = book.snapshot()
                    b["stale"] = not self.book_usable(v, book, now)
                    books[symbol] = b
                out[v.name] = {
                    "up": v.up, "logons": v.logons, "pending_probes": self.probes.pending(v.name),
                    "latency": lat, "ack": v.ack.snapshot(), "books": books,
                    "md_rejects": dict(v.md_rejects),
                }
            return out

    def stats(self) -> dict:
        return {"probes_sent": self.probes_sent, "send_failures": self.send_failures,
                "probe_answers_unmatched": self.probes.unmatched, "probes_expired": self.probes.expired,
                "md_parse_errors": self.parse_errors}


def _split_entries(fields: Iterable[tuple[int, str]], count_tag: int,
                   first_tag: int) -> tuple[dict[int, str], list[dict[int, str]]]:
    """Header fields (before the group) and the repeating-group entries, each a dict."""
    head: dict[int, str] = {}
    entries: list[dict[int, str]] = []
    in_group = False
    for tag, value in fields:
        if tag == count_tag:
            in_group = True
            continue
        if not in_group:
            head[tag] = value
        elif tag == first_tag:
            entries.append({tag: value})
        elif tag == 10:
            break
        elif entries:
            entries[-1][tag] = value
    return head, entries


MARK_BAND_FRAC = 0.01     # a mid more than 1% from the median of the venues' mids is off-market


def robust_mark(mids: list[float], band_frac: float = MARK_BAND_FRAC) -> float | None:
    """Median of the mids within ``band_frac`` of their median (the median itself if none is)."""
    if not mids:
        return None
    med = _median(mids)
    kept = [m for m in mids if abs(m - med) <= band_frac * abs(med)]
    return _median(kept) if kept else med


def _median(xs: list[float]) -> float:
    s = sorted(xs)
    n = len(s)
    return s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2.0
