"""Live market state per venue: session up/down, probe RTTs, order-ack latency, L2 books.

``MarketState`` implements ``gateway.core.model.VenueListener``. It is sans-IO and
single-threaded: the gateway's one asyncio loop calls every method (venue edge: up/down,
admin and market data messages, the probe timer; router and risk: reads), so there is
no lock and no thread.

Sends go through the injected ``sender(session, msg_type, fields, groups) -> bool``; the
edge turns them into FIX (a TestRequest via ``SessionHandle.send_test_request``, a
MarketDataRequest via ``SessionHandle.send``). The edge drives:
- ``probe_next()`` from a loop timer (``probe_schedule()``: each venue in turn, once per
  ``probe_interval_ms``, spread over it) or ``probe_round()`` (all at once): one TestRequest (35=1,
  112=PRB-<venue>-<n>) per logged-on venue, never more often than ``min_probe_gap_s``
  per venue however often it is called, nor above the venue's ``probe_max_per_s`` (real
  venues throttle TestRequests); the Heartbeat answer (35=0 with that 112) is one sample.
  With ``probe_primed`` each probe is a pair: a primer TestRequest, then the measured one
  the moment the primer's Heartbeat is back, both against the cap; the primer's round trip
  is kept apart as ``rtt_cold`` (see "Primed probes" in docs/operations.md);
- ``subscribe_pending()`` after a logon (``on_venue_up`` calls it, or the edge a moment later): one
  MarketDataRequest per configured symbol (263=1 snapshot+updates, 264=md_depth, 265=1
  incremental, 267: bid, offer, trade) with a unique MDReqID (262). A reconnect subscribes
  again; books stay stale until the new snapshot (W) arrives.

Each probe answer is split at the transport edge (see "Our floor" in
docs/operations.md): ``decided`` (``new_probe``), ``handed`` (the sender returned: the bytes
are in the socket), ``received`` (the session handle's ``received_at``: the Heartbeat's
bytes came off the socket, before parsing) and ``handled`` (here). Per venue:
- ``rtt``: handled - decided, the whole round trip as we see it;
- ``lat``: received - handed, the venue's part (kernel, link, the venue's software and any
  time its answer waited for our loop): what the router ranks by and status shows;
and once for the process, ``floor``: (handed - decided) + (handled - received), our own
send and receive path per probe. Without ``received_at`` (quickfix) ``lat`` is rtt minus
the send path and ``floor`` gets no sample.

Market data (W, X, Y) is applied by ``gateway.core.mdfeed.VenueBooks``, the one parser of
W/X in the gateway; messages may be our codec's ``Message`` (``.pairs``), raw text or bytes.
"""
from __future__ import annotations

import itertools
import logging
import time
from typing import TYPE_CHECKING, Any, Callable, Final

from gateway.core.book import BID, OFFER, TRADE, L2Book
from gateway.common.clock import MONOTONIC, Clock, MonotonicClock
from gateway.core.latency import INF, LatencyEstimator, ProbeTrace, ProbeTracker, _num, probe_trace
from gateway.core.mdfeed import VenueBooks

if TYPE_CHECKING:  # the router package imports this module; no import cycle at run time
    from gateway.core.router.config import RoutingConfig

log = logging.getLogger("market")
Fields = list[tuple[int, str]]
OutFields = list[tuple[int, Any]]      # what we send: values are formatted with str() (264=md_depth is an int)
# sender(session, msg_type, body_fields, groups) -> sent?; groups: [(count_tag, [entry_fields, ...])]
Sender = Callable[[Any, str, OutFields, list[tuple[int, list[OutFields]]]], bool]
_TRACE: Final[ProbeTrace | None] = probe_trace("gw")   # bench-only hop stamps (latency.ProbeTrace)
MIN_PROBE_GAP_S = 0.01      # at most 100 probes/s per venue, whatever probe_interval_ms says
PROBE_MAX_PER_S = 20.0      # default per-venue cap (VenueConfig.probe_max_per_s)
CAP_TOLERANCE = 0.1         # a probe may go this fraction of its gap early (timer jitter)
MIN_PROBE_TICK_S = 0.002    # probe_next's timer no finer than this (loop timers are ~ms)
HB_MIN_SAMPLES = 3          # heartbeat intervals before their jitter is shown


def parse_fields(msg: Any) -> Fields:
    """(tag, value) pairs of a FIX message: our codec ``Message`` (``.pairs``), str or bytes."""
    pairs = getattr(msg, "pairs", None)
    if pairs is not None:
        return pairs
    text = msg.decode("latin-1") if isinstance(msg, bytes) else str(msg)
    out: Fields = []
    for part in text.split("\x01"):
        tag, sep, value = part.partition("=")
        if sep and tag.isdigit():
            out.append((int(tag), value))
    return out


def get_field(msg: Any, tag: int) -> str | None:
    get = getattr(msg, "get", None)
    if get is not None and not isinstance(msg, (str, bytes)):
        return get(tag)
    for t, v in parse_fields(msg):
        if t == tag:
            return v
    return None


def body_text(fields: OutFields, groups: list[tuple[int, list[OutFields]]] | tuple[()] = ()) -> str:
    """FIX body wire text of ``sender`` arguments: fields, then each group (count, entries)."""
    parts = [f"{t}={v}\x01" for t, v in fields]
    for count_tag, entries in groups:
        parts.append(f"{count_tag}={len(entries)}\x01")
        parts.extend(f"{t}={v}\x01" for entry in entries for t, v in entry)
    return "".join(parts)


class VenueState:
    """Everything known about one venue."""

    __slots__ = ("name", "up", "session_id", "lat", "rtt", "ack", "hb", "feed", "books", "pending_since",
                 "needs_subscribe", "md_req", "md_rejects", "logons", "last_md_at", "last_probe_at",
                 "probe", "market_data", "probe_gap_s", "probe_tat", "stale_after_s", "last_hb_at",
                 "probes_capped", "last_other_at", "cold", "primer_id")

    def __init__(self, name: str, cfg: "RoutingConfig", clock: Clock, *, probe: bool = True,
                 market_data: bool = True, probe_max_per_s: float = PROBE_MAX_PER_S) -> None:
        if not probe_max_per_s > 0:
            raise ValueError("probe_max_per_s must be > 0")
        self.name = name
        self.probe = probe                # our TestRequests on this session (off: a venue that throttles them)
        self.market_data = market_data    # subscribe to its books on logon
        self.up = False
        self.session_id: Any = None
        # The cap, as a virtual schedule (GCRA): the next probe is due at probe_tat.
        self.probe_gap_s = 1.0 / probe_max_per_s
        self.probe_tat = -INF
        self.probes_capped = 0
        # A cap slower than the probe timer stretches staleness with it: the router must
        # not drop a venue only because we probe it as often as it allows (a primed probe
        # is two TestRequests, so one sample per two gaps).
        self.stale_after_s = max(cfg.latency_stale_after_s,
                                 cfg.stale_after_intervals * self.probe_gap_s * (2 if cfg.probe_primed else 1))
        self.lat = LatencyEstimator(clock, cfg.latency_window, cfg.ewma_alpha,
                                    self.stale_after_s, cfg.recent_samples)
        self.rtt = LatencyEstimator(clock, cfg.latency_window, cfg.ewma_alpha,
                                    self.stale_after_s, cfg.recent_samples)
        self.ack = LatencyEstimator(clock, cfg.latency_window, cfg.ewma_alpha, INF, cfg.recent_samples)
        # probe_primed: the primers' round trips (both ends cold), shown beside the measured probes'
        self.cold = LatencyEstimator(clock, cfg.latency_window, cfg.ewma_alpha, INF, cfg.recent_samples)
        self.primer_id: str | None = None         # the primer awaiting its Heartbeat
        # Passive: intervals between the venue's own Heartbeats (its jitter is p90 - p10).
        self.hb = LatencyEstimator(clock, cfg.latency_window, cfg.ewma_alpha, INF, cfg.recent_samples)
        self.last_hb_at: float | None = None
        # The venue's last message seen that was not its own Heartbeat (a probe answer, an
        # order's first report, market data): its heartbeat timer restarted then, so the
        # interval around it is not one heartbeat period.
        self.last_other_at: float | None = None
        self.feed = VenueBooks(name, lambda s: L2Book(s, clock, cfg.depletion_tau_s))
        self.books: dict[str, L2Book] = self.feed.books       # the same dict: the router reads it
        for s in cfg.md_symbols:
            self.feed.book(s)
        self.pending_since: float | None = None   # send time of the oldest unanswered probe
        self.needs_subscribe = False
        self.md_req: dict[str, str] = self.feed.req_symbols   # MDReqID -> symbol
        self.md_rejects: dict[str, str] = {}      # symbol -> reason (35=Y)
        self.logons = 0
        self.last_md_at: float | None = None
        self.last_probe_at: float = -INF


class MarketState:
    """Venue sessions, latency estimates and books; the router's view of the world."""

    def __init__(self, cfg: "RoutingConfig", clock: Clock = MONOTONIC, sender: Sender | None = None) -> None:
        self.cfg = cfg
        self.clock = clock
        # the real clock's now() is time.perf_counter, called directly (no method call per read)
        self._now: Callable[[], float] = time.perf_counter if type(clock) is MonotonicClock else clock.now
        # With the real clock, a probe's send half counts only this thread's CPU time (``_probe``);
        # a fake clock (tests, replay) keeps the wall split.
        self._cpu: Callable[[], float] | None = time.thread_time if type(clock) is MonotonicClock else None
        self.sender: Sender = sender or _no_sender
        # probe_primed: how the measured probe follows its primer's answer. The gateway passes
        # its loop's call_soon, so the probe is written outside the receive callback at once
        # (inside it, the engine would hold the write to the chunk's end, and its "handed"
        # stamp would come before its bytes left); None (tests, replay): sent right away.
        self.defer: Callable[[Callable[[], Any]], Any] | None = None
        self.primed = cfg.probe_primed
        self.venues: dict[str, VenueState] = {}
        self.venue_list: list[VenueState] = []    # stable order, for the router's loop
        self.probes = ProbeTracker(clock)
        # Our own floor per probe (send path + receive path), all venues together.
        self.floor = LatencyEstimator(clock, cfg.latency_window, cfg.ewma_alpha, INF, cfg.recent_samples)
        self.floor_send = LatencyEstimator(clock, cfg.latency_window, cfg.ewma_alpha, INF, cfg.recent_samples)
        self.floor_receive = LatencyEstimator(clock, cfg.latency_window, cfg.ewma_alpha, INF, cfg.recent_samples)
        self.rank_recent = cfg.rank_latency == "recent"
        self.stale_after_s = cfg.latency_stale_after_s
        self.inflight_grace_s = cfg.probe_interval_s / 2
        self.min_probe_gap_s = max(MIN_PROBE_GAP_S, cfg.probe_interval_s * 0.5)
        self._md_seq = itertools.count(1)
        self._turn = 0                  # probe_next's rotation
        self.probes_sent = 0
        self.probes_capped = 0
        self.send_failures = 0
        self._errors = 0

    @property
    def parse_errors(self) -> int:
        """Market data entries or messages that could not be read (counted, never raised)."""
        return self._errors + sum(v.feed.skipped for v in self.venue_list)

    # ------------------------------------------------------------ venue lifecycle
    def register_venue(self, venue: str, *, probe: bool = True, market_data: bool = True,
                       probe_max_per_s: float = PROBE_MAX_PER_S) -> VenueState:
        v = self.venues.get(venue)
        if v is None:
            v = self.venues[venue] = VenueState(venue, self.cfg, self.clock, probe=probe, market_data=market_data,
                                                probe_max_per_s=probe_max_per_s)
            self.venue_list = [*self.venue_list, v]
        return v

    def on_venue_up(self, venue: str, session_id: Any, subscribe: bool = True) -> None:
        """A venue logged on. ``subscribe=False``: the caller runs ``subscribe_pending()`` later
        (the gateway does, a moment after the logon exchange has settled)."""
        v = self.register_venue(venue)
        v.up = True
        v.session_id = session_id
        v.logons += 1
        v.pending_since = None
        v.primer_id = None
        v.last_hb_at = None
        self.probes.clear(venue)
        v.feed.mark_stale()             # until the new subscription's snapshot
        v.needs_subscribe = True
        if subscribe:
            self.subscribe_pending()

    def on_venue_down(self, venue: str) -> None:
        v = self.register_venue(venue)
        v.up = False
        v.session_id = None
        v.needs_subscribe = False
        v.pending_since = None
        v.primer_id = None
        self.probes.clear(venue)
        v.feed.mark_stale()

    # ------------------------------------------------------------ inbound messages
    def on_venue_admin(self, venue: str, msg: Any, msg_type: str) -> None:
        if msg_type != "0":
            return
        test_req_id = get_field(msg, 112)
        if test_req_id is None:
            self._on_venue_heartbeat(venue)
            return
        probes = self.probes
        if not probes.is_ours(test_req_id):      # the answer to the session's own TestRequest
            self._venue_sent_other(venue, self.clock.now())
            return
        rtt = probes.on_heartbeat(venue, test_req_id)
        v = self.venues.get(venue)
        if v is None:
            return
        v.pending_since = probes.oldest_pending_at(venue)
        v.last_other_at = probes.answered_at if rtt is not None else self.clock.now()
        if test_req_id == v.primer_id:
            self._on_primer_answer(v, rtt)
        elif rtt is not None:
            self._probe_sample(v, rtt, probes.answered_handed_at)
            if _TRACE is not None:      # bench-only (FIXGW_PROBE_TRACE): decided, handed, received, handled
                at = probes.answered_at
                _TRACE.add("gw", test_req_id, at - rtt, probes.answered_handed_at or 0.0,
                           getattr(v.session_id, "received_at", None) or 0.0, at)

    def _venue_sent_other(self, venue: str, now: float) -> None:
        v = self.venues.get(venue)
        if v is not None:
            v.last_other_at = now

    def _on_primer_answer(self, v: VenueState, rtt: float | None) -> None:
        """A primer came back: both ends and the path between have just run the probe's code,
        so the measured probe goes now (``defer``: the loop's next turn). The primer's own
        round trip, taken cold, is kept apart (``rtt_cold``): it is no latency sample."""
        v.primer_id = None
        if rtt is None:
            return
        v.cold.add(rtt, self.probes.answered_at)
        defer = self.defer
        if defer is None:
            self._send_probe(v)
        else:
            logons = v.logons       # a session that dropped and came back meanwhile gets no stray probe
            defer(lambda: self._send_probe(v) if v.logons == logons else 0)

    def _probe_sample(self, v: VenueState, rtt: float, handed: float | None) -> None:
        """Split one answered probe into the venue's part and ours (module docstring).
        Every figure comes from the answer's one clock stamp (``answered_at``)."""
        now = self.probes.answered_at
        v.rtt.add(rtt, now)
        if handed is None:               # no send stamp (a sender that failed late): all venue
            v.lat.add(rtt, now)
            return
        decided = now - rtt
        received = getattr(v.session_id, "received_at", None)
        if received is None or not handed <= received <= now:
            v.lat.add(now - handed, now)  # the receive path is not separable on this backend
            return
        v.lat.add(received - handed, now)
        send, receive = handed - decided, now - received
        self.floor.add(send + receive, now)
        self.floor_send.add(send, now)
        self.floor_receive.add(receive, now)

    def _on_venue_heartbeat(self, venue: str) -> None:
        """The venue's own periodic Heartbeat (no 112): its arrival interval, for jitter.
        An interval with anything else from the venue in it (market data, a probe answer, an
        order's report: each restarts the venue's heartbeat timer) is not one heartbeat
        period: skipped."""
        v = self.venues.get(venue)
        if v is None:
            return
        now = self.clock.now()
        last = v.last_hb_at
        if (last is not None and (v.last_md_at is None or v.last_md_at < last)
                and (v.last_other_at is None or v.last_other_at < last)):
            v.hb.add(now - last)
        v.last_hb_at = now

    def on_venue_app(self, venue: str, msg: Any, msg_type: str) -> bool:
        """W / X / Y from a venue: applied, True. Anything else: False (not market data)."""
        if msg_type not in ("W", "X", "Y"):
            return False
        v = self.venues.get(venue)
        if v is None:
            return True
        try:
            pairs = parse_fields(msg)
            if msg_type == "W":
                v.feed.on_snapshot(pairs)
            elif msg_type == "X":
                v.feed.on_incremental(pairs)
            else:
                self._on_md_reject(v, pairs)
                return True
            v.last_md_at = self.clock.now()
        except (ValueError, KeyError, TypeError):
            self._errors += 1
            log.warning("venue %s: unreadable market data %s", venue, msg_type, exc_info=True)
        return True

    def _on_md_reject(self, v: VenueState, fields: Fields) -> None:
        d = dict(fields)
        symbol = v.md_req.get(d.get(262, ""), d.get(262, "?"))
        v.md_rejects[symbol] = d.get(58) or f"MDReqRejReason={d.get(281, '?')}"
        log.warning("venue %s rejected market data for %s: %s", v.name, symbol, v.md_rejects[symbol])

    # ------------------------------------------------------------ order-ack latency
    def record_ack(self, venue: str, seconds: float, at: float | None = None) -> None:
        """An order acknowledgement time; ``at``: when it came (default: the clock now)."""
        v = self.venues.get(venue) or self.register_venue(venue)
        v.ack.add(seconds, at)
        v.last_other_at = self.clock.now() if at is None else at

    # ------------------------------------------------------------ probing / subscribing (loop-driven)
    def probe_round(self) -> int:
        """One TestRequest on each logged-on venue not probed within ``min_probe_gap_s``
        (nor over its cap); returns how many went out. ``probe_next`` spreads the same
        probes over the interval instead (what the gateway's timer does)."""
        now = self.clock.now()
        sent = 0
        for v in self.venue_list:
            sent += self._probe(v, now)
        return sent

    def probe_schedule(self) -> tuple[float, int]:
        """(tick in seconds, venues per tick) for ``probe_next``: every probed venue once per
        ``probe_interval_s``, their probes spread over it rather than sent back to back, so a
        venue's answer never waits in our socket while we encode the next venue's probe (that
        wait would count as the venue's latency, more for the venues probed first)."""
        n = max(1, sum(1 for v in self.venue_list if v.probe))
        interval = self.cfg.probe_interval_s
        per_tick = max(1, -(-int(n * MIN_PROBE_TICK_S * 1e6) // int(interval * 1e6)))   # ceil
        return interval * per_tick / n, per_tick

    def probe_next(self, count: int = 1) -> int:
        """The next ``count`` probed venues in turn get their probe (see ``probe_schedule``)."""
        probed = [v for v in self.venue_list if v.probe]
        if not probed:
            return 0
        now = self.clock.now()
        sent = 0
        for _ in range(min(count, len(probed))):
            v = probed[self._turn % len(probed)]
            self._turn += 1
            sent += self._probe(v, now)
        return sent

    def _probe(self, v: VenueState, now: float) -> int:
        if not v.up or v.session_id is None or not v.probe:
            return 0
        gap = v.probe_gap_s
        if now - v.last_probe_at < self.min_probe_gap_s or now < v.probe_tat - gap * CAP_TOLERANCE:
            self.probes_capped += 1
            v.probes_capped += 1
            return 0
        v.last_probe_at = now
        if self.primed:
            # Two TestRequests against the venue's cap: the primer now, the measured probe
            # when the primer's Heartbeat is back (``_on_primer_answer``).
            v.probe_tat = (v.probe_tat if v.probe_tat > now else now) + 2 * gap
            v.primer_id = self._test_request(v)
            return 0 if v.primer_id is None else 1
        v.probe_tat = (v.probe_tat if v.probe_tat > now else now) + gap
        # with warm_probes on, the native engine runs the probe's code once on a throwaway
        # twin first, so a lone probe does not pay cold caches in our floor (transport.warm_up)
        warm = getattr(v.session_id, "warm_up", None)
        if warm is not None:
            warm()
        return self._send_probe(v)

    def _send_probe(self, v: VenueState) -> int:
        """The measured TestRequest: decided now, stamped when its bytes are in the socket."""
        if not v.up or v.session_id is None:
            return 0             # the session dropped between a primer and its probe
        cpu = self._cpu
        c0 = cpu() if cpu is not None else 0.0
        t0 = self.clock.now()
        rid = self._test_request(v)
        if rid is None:
            return 0
        # The sender returns once the bytes are in the socket (the native engine writes at
        # once outside a pump): the transport edge of the way out.
        handed = self.clock.now()
        if cpu is not None:
            # Our send half is the CPU this thread spent on it. Time off the CPU in between is
            # not ours: most often the venue itself, woken by our socket write onto our CPU,
            # preempting us and answering before the write returned (seen in ~1 probe in 6 on
            # the 2-core VM, bench_router.py trace). It moves to the venue's part.
            off = (handed - t0) - (cpu() - c0)
            if _TRACE is not None:      # bench-only: the wall stamps and the time off the CPU
                _TRACE.add("send", rid, t0, handed, off)
            if off > 0.0:
                handed -= off
        self.probes.handed(rid, handed)
        return 1

    def _test_request(self, v: VenueState) -> str | None:
        """One probe TestRequest (decided now: ``new_probe`` stamps it); its TestReqID, or None
        when it could not be sent (nothing left pending)."""
        rid = self.probes.new_probe(v.name)
        if v.pending_since is None:
            v.pending_since = self.probes.oldest_pending_at(v.name)
        if not self._send(v, "1", [(112, rid)], []):
            self.probes.clear(v.name)
            v.pending_since = None
            return None
        self.probes_sent += 1
        return rid

    def subscribe_pending(self) -> int:
        """Send the MarketDataRequests of venues that logged on since the last call."""
        n = 0
        for v in self.venue_list:
            if not (v.needs_subscribe and v.up and v.market_data):
                continue
            v.needs_subscribe = False
            v.md_rejects.clear()
            v.md_req.clear()            # a new session: the old MDReqIDs are gone
            for symbol in self.cfg.md_symbols:
                req_id = f"MD-{v.name}-{symbol}-{next(self._md_seq)}"
                v.md_req[req_id] = symbol
                fields = [(262, req_id), (263, "1"), (264, self.cfg.md_depth), (265, "1")]
                groups = [(267, [[(269, BID)], [(269, OFFER)], [(269, TRADE)]]), (146, [[(55, symbol)]])]
                self._send(v, "V", fields, groups)
                n += 1
        return n

    def _send(self, v: VenueState, msg_type: str, fields: OutFields, groups: list) -> bool:
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
        """(latency in us the router ranks by, stale?).

        A probe unanswered for more than half a probe interval raises the estimate to its
        age: a venue that hangs is seen before it goes stale. Shorter delays are left to the
        samples (two slow answers), so a scheduling hiccup of a few ms moves nothing.
        """
        if not v.probe:
            # Probes off: the passive figure, order acknowledgement time (NewOrderSingle ->
            # first report), which only moves when we trade, so it never goes stale.
            ack = v.ack
            return (ack.route_us if self.rank_recent else ack.ewma_us), False
        lat = v.lat
        us = lat.route_us if self.rank_recent else lat.ewma_us
        last = lat.last_at
        stale = last is None or now - last > v.stale_after_s
        pend = v.pending_since
        if pend is not None and now - pend > self.inflight_grace_s:
            age = (now - pend) * 1e6
            if age > us:
                us = age
        return us, stale

    def book_usable(self, v: VenueState, book: L2Book, now: float) -> bool:
        """Fresh enough to route on (see ``book_stale_after_s`` in router/config.py). """
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
        now: float | None = None                 # read once, and only when a venue has a book
        mids, last, last_at = [], None, -INF
        for v in self.venue_list:
            book = v.books.get(symbol)
            if book is None:
                continue
            if now is None:
                now = self._now()
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
        now = self.clock.now()
        floor_p50 = _num(self.floor.p50_us)
        out = {}
        for v in self.venue_list:
            route_us, stale = self.route_latency(v, now)
            lat = v.lat.snapshot()
            lat["route_us"] = None if route_us == INF else round(route_us, 3)
            lat["stale"] = stale
            lat["floor_p50_us"] = floor_p50
            books = {}
            for symbol, book in v.books.items():
                b = book.snapshot()
                b["stale"] = not self.book_usable(v, book, now)
                books[symbol] = b
            out[v.name] = {
                "up": v.up, "logons": v.logons, "probes": v.probe, "pending_probes": self.probes.pending(v.name),
                "latency": lat, "rtt": v.rtt.snapshot(), "ack": v.ack.snapshot(),
                **({"rtt_cold": v.cold.snapshot()} if self.primed else {}),
                "heartbeat": self.heartbeat_figures(v), "probe_max_per_s": round(1.0 / v.probe_gap_s, 3),
                "probes_capped": v.probes_capped, "books": books,
                "md_rejects": dict(v.md_rejects),
            }
        return out

    def heartbeat_figures(self, v: VenueState) -> dict:
        """The passive figure beside order-ack time: the venue's Heartbeat arrival interval
        and its jitter (p90 - p10), once there are a few intervals."""
        hb = v.hb
        if hb.count < HB_MIN_SAMPLES:
            return {"intervals": hb.count, "interval_p50_us": None, "jitter_us": None}
        return {"intervals": hb.count, "interval_p50_us": _num(hb.p50_us), "jitter_us": _num(hb.jitter_us)}

    def floor_snapshot(self) -> dict:
        """Our own floor per probe (send path + receive path); see the module docstring."""
        snap = self.floor.snapshot()
        for name, est in (("send", self.floor_send), ("receive", self.floor_receive)):
            snap[f"{name}_p50_us"], snap[f"{name}_p99_us"] = _num(est.p50_us), _num(est.p99_us)
        return snap

    def stats(self) -> dict:
        return {"probes_sent": self.probes_sent, "probes_capped": self.probes_capped,
                "probe_floor_p50_us": _num(self.floor.p50_us),
                "send_failures": self.send_failures,
                "probe_answers_unmatched": self.probes.unmatched, "probes_expired": self.probes.expired,
                "md_parse_errors": self.parse_errors}


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


def _no_sender(session: Any, msg_type: str, fields: OutFields, groups: list) -> bool:
    log.warning("no sender: %s not sent", msg_type)
    return False
