"""``fixgw record``: record venues' market data and our latency probes to a recording directory.

We connect to the venues as the gateway's market-data client does (native engine
initiator sessions, one per venue, ``MarketFeed``) and write, through the sans-IO
``Recorder`` (``gateway/core/recording.py``) to Parquet:

- every W (snapshot: a CLEAR then one SNAPSHOT row per level) and every X entry (level
  update or trade) per venue and symbol, with two timestamps: ``ts_exch`` the venue's
  time from the message (MDEntryDate/MDEntryTime 272/273 of the entry when the venue
  sends them, else the message's SendingTime 52; our simulator sends SendingTime only,
  with millisecond precision, stamped before its injected latency) and ``ts_local`` our
  receive time (``time.time_ns()``, the same wall clock as the venue's on one machine);
- every probe answer (TestRequest -> Heartbeat) as ``(venue, sent_at, rtt)``.

Rows are taken from the raw (tag, value) pairs *before* the feed applies the message,
so a trade's aggressor is inferred from the touch before it, as ``gateway.core.mdfeed``
does, and entries the feed would drop (a book with no snapshot yet) are not written.

Three ways in:
- ``RecordingFeed``: a ``MarketFeed`` subclass (``fixgw record`` uses it);
- ``start_recording(feed, path) -> handle`` / ``handle.close()``: taps an existing feed
  (the demo's ``ClientRuntime.feed``) without changing its class;
- ``MarketTap``: the sans-IO part (pairs in, Recorder rows out), unit-tested alone.

    fixgw record --config configs/demo/sim.toml --duration 30 --out run.rec
    fixgw record --config gateway.toml --symbols EURUSD,AAPL --comp-id RECORD --out day.rec

``--config`` is a simulator TOML (``[[venues]] name, port``, host 127.0.0.1, tick sizes
from ``[[symbols]]``) or a gateway TOML (``[[venues]] name, host, port``). The venue
must accept our CompID: the simulator accepts FIXGW and CLIENT by default (``--comp-id``
default CLIENT); a RECORD identity needs ``counterparties`` in the venue's sim config.
"""
from __future__ import annotations

import argparse
import asyncio
import calendar
import json
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, Sequence

from gateway.apps.client.feed import MarketFeed, VenueAddress
from gateway.core.mdfeed import aggressor, md_entries, md_number
from gateway.core.model import BUY, SELL
from gateway.core.recording import (AGG_BUY, AGG_SELL, AGG_UNKNOWN, ASK, BID, CHANGE, DELETE, NEW, Recorder,
                                    RecordingWriter)

_ACTION = {"0": NEW, "1": CHANGE, "2": DELETE}
_DAYS: dict[str, int] = {}


def fix_time_ns(text: str | None, date: str | None = None) -> int | None:
    """UTCTimestamp ``YYYYMMDD-HH:MM:SS[.fff...]`` (or UTCTimeOnly ``HH:MM:SS[.f]`` with
    ``date`` YYYYMMDD) -> epoch ns; None when absent or unreadable."""
    if not text:
        return None
    try:
        if len(text) >= 17 and text[8] == "-":
            date, text = text[:8], text[9:]
        if not date:
            return None
        day = _DAYS.get(date)
        if day is None:
            if len(_DAYS) > 64:
                _DAYS.clear()
            day = _DAYS[date] = calendar.timegm((int(date[:4]), int(date[4:6]), int(date[6:8]), 0, 0, 0)) \
                * 1_000_000_000
        ns = (int(text[0:2]) * 3600 + int(text[3:5]) * 60 + int(text[6:8])) * 1_000_000_000
        if len(text) > 9:
            frac = text[9:]
            ns += int(frac) * 10 ** (9 - len(frac))
        return day + ns
    except (ValueError, IndexError):
        return None


class MarketTap:
    """Raw market data pairs and probe samples -> ``Recorder`` rows (sans-IO, no clock of its own).

    ``books(venue)`` gives the venue's ``VenueBooks`` as they are *before* the message is
    applied (symbol of a W/X without 55 from its MDReqID, staleness, touch for aggressors).
    Thread-safe against ``close`` (one lock; the feed runs on one loop thread).
    """

    def __init__(self, recorder: Recorder, books: Callable[[str], Any]) -> None:
        self.recorder = recorder
        self.books = books
        self.lock = threading.Lock()
        self.closed = False
        self.stats = {"messages": 0, "rows": 0, "probes": 0, "no_venue_time": 0, "dropped": 0}

    def on_md(self, venue: str, msg_type: str, pairs, ts_local: int) -> None:
        if msg_type not in ("W", "X"):
            return
        head, entries = md_entries(pairs)
        sending = fix_time_ns(head.get(52))
        vb = self.books(venue)
        req_symbols = vb.req_symbols if vb is not None else {}
        default = head.get(55) or req_symbols.get(head.get(262, ""))
        rec = self.recorder
        with self.lock:
            if self.closed:
                return
            self.stats["messages"] += 1
            n0 = rec.events
            if msg_type == "W":
                if not default:
                    return
                ts = self._ts(entries[0] if entries else {}, sending, head, ts_local)
                bids, asks = [], []
                for e in entries:
                    px, qty = md_number(e.get(270)), md_number(e.get(271)) or 0.0
                    if px is None:
                        continue
                    if e.get(269) == "0":
                        bids.append((px, qty))
                    elif e.get(269) == "1":
                        asks.append((px, qty))
                rec.snapshot(venue, default, ts, ts_local, bids, asks)
            else:
                before: dict[str, tuple] = {}
                for e in entries:
                    symbol = e.get(55) or default
                    px = md_number(e.get(270))
                    if not symbol or px is None:
                        continue
                    book = vb.books.get(symbol) if vb is not None else None
                    if book is None or book.stale:
                        self.stats["dropped"] += 1          # the feed drops it too: no snapshot yet
                        continue
                    if symbol not in before:
                        before[symbol] = (book.best_bid(), book.best_ask())
                    kind = e.get(269)
                    ts = self._ts(e, sending, head, ts_local)
                    if kind == "2":
                        if e.get(279) != "2":
                            rec.trade(venue, symbol, ts, ts_local, px, md_number(e.get(271)) or 0.0,
                                      _AGG_CODE[aggressor(*before[symbol], px)])
                    elif kind in ("0", "1"):
                        action = _ACTION.get(e.get(279, "0"))
                        if action is None:
                            continue
                        rec.update(venue, symbol, ts, ts_local, BID if kind == "0" else ASK, px,
                                   md_number(e.get(271)) or 0.0, action)
            self.stats["rows"] += rec.events - n0

    def _ts(self, entry: dict, sending: int | None, head: dict, ts_local: int) -> int:
        t = fix_time_ns(entry.get(273), entry.get(272) or head.get(272)) if 273 in entry else None
        if t is None:
            t = sending
        if t is None:
            self.stats["no_venue_time"] += 1
            return ts_local
        return t

    def on_probe(self, venue: str, rtt_s: float, received_ns: int) -> None:
        with self.lock:
            if self.closed:
                return
            self.recorder.probe(venue, received_ns - int(rtt_s * 1e9), rtt_s)
            self.stats["probes"] += 1


_AGG_CODE = {BUY: AGG_BUY, SELL: AGG_SELL, None: AGG_UNKNOWN}
_TRADE_ENTRY = (269, "2")          # MDEntryType = Trade, as the codec's pairs hold it


def _tap_probes(feed: MarketFeed, tap: MarketTap, wall_ns: Callable[[], int]) -> Callable[[], None]:
    """Every RTT sample the feed's ProbeTracker hands to its estimators also goes to ``tap``."""
    tracker = feed.probes
    original = tracker.on_heartbeat

    def on_heartbeat(venue: str, test_req_id: str | None) -> float | None:
        rtt = original(venue, test_req_id)
        if rtt is not None:
            tap.on_probe(venue, rtt, wall_ns())
        return rtt
    tracker.on_heartbeat = on_heartbeat

    def undo() -> None:
        if tracker.__dict__.get("on_heartbeat") is on_heartbeat:
            del tracker.on_heartbeat
    return undo


class RecordingFeed(MarketFeed):
    """A ``MarketFeed`` that hands every W/X (raw pairs, before they are applied) and every
    probe sample to a ``Recorder``; otherwise the feed unchanged (books, probes, listeners)."""

    def __init__(self, venues: Sequence[VenueAddress], symbols: Sequence[str], tick_sizes: dict[str, float],
                 recorder: Recorder, *, wall_ns: Callable[[], int] = time.time_ns, **kw: Any) -> None:
        super().__init__(venues, symbols, tick_sizes, **kw)
        self.wall_ns = wall_ns
        self.tap = MarketTap(recorder, self.books.get)
        _tap_probes(self, self.tap, wall_ns)

    def on_message(self, session, msg) -> None:
        self.tap.on_md(session.target_comp_id, msg.msg_type, msg.pairs, self.wall_ns())
        super().on_message(session, msg)

    def on_admin(self, session, msg) -> None:
        super().on_admin(session, msg)     # a probe answer reaches the tap through the ProbeTracker


class RecordingHandle:
    """What ``start_recording`` returns: ``close()`` detaches from the feed and finishes the files."""

    def __init__(self, feed: MarketFeed, writer: RecordingWriter, tap: MarketTap, undo: list) -> None:
        self.feed, self.writer, self.tap, self._undo = feed, writer, tap, undo
        self.path = writer.path

    def close(self) -> dict:
        """Idempotent; safe from any thread (the tap's lock orders it against the loop)."""
        for fn in self._undo:
            fn()
        self._undo = []
        with self.tap.lock:
            if not self.tap.closed:
                self.tap.closed = True
                self.writer.close()
        return {**self.tap.stats, "path": str(self.path), "events": self.writer.recorder.events,
                "probes": self.writer.recorder.probes}

    def __enter__(self) -> "RecordingHandle":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def start_recording(feed: MarketFeed, path: str | Path, meta: dict | None = None,
                    wall_ns: Callable[[], int] = time.time_ns, batch_rows: int = 16_384) -> RecordingHandle:
    """Record what an existing ``MarketFeed`` receives from now on. The feed's class is not
    changed: its ``on_message`` and its ProbeTracker's ``on_heartbeat`` are wrapped on the
    instance until ``close()``.

    Call it before the feed's engine starts (the venues' snapshots are then recorded as
    they arrive), or on the feed's loop thread once it runs (``runtime.call(lambda:
    start_recording(runtime.feed, path))``): every book the feed already holds is then
    written first as a snapshot of its current levels, stamped now (both clocks), so the
    recording replays from a full book."""
    meta = {"source": "start_recording", "venues": list(feed.addresses), "symbols": list(feed.symbols),
            "tick_sizes": dict(feed.ticks), "clock": "ts_local = time.time_ns() at receipt", **(meta or {})}
    writer = RecordingWriter(path, batch_rows=batch_rows, meta=meta)
    tap = MarketTap(writer.recorder, feed.books.get)
    now = wall_ns()
    for venue, vb in feed.books.items():
        for symbol, book in vb.books.items():
            if not book.stale:
                writer.recorder.snapshot(venue, symbol, now, now, book.levels("0"), book.levels("1"))
    original = feed.on_message

    def on_message(session, msg) -> None:
        # [demo helper, round 3] The feed (and the strategy's order) first, then the tap: the
        # order path does not wait for the recording. The tap reads the books only for a
        # trade's aggressor (the touch before the print) and staleness, which a W or a
        # trade-free X does not change; a message with a trade entry is tapped first, as before.
        ts = wall_ns()
        if _TRADE_ENTRY in msg.pairs:
            tap.on_md(session.target_comp_id, msg.msg_type, msg.pairs, ts)
            original(session, msg)
            return
        try:
            original(session, msg)
        finally:
            tap.on_md(session.target_comp_id, msg.msg_type, msg.pairs, ts)
    feed.on_message = on_message

    def undo_md() -> None:
        if feed.__dict__.get("on_message") is on_message:
            del feed.on_message
    return RecordingHandle(feed, writer, tap, [undo_md, _tap_probes(feed, tap, wall_ns)])


# ---------------------------------------------------------------- fixgw record

def venues_from_config(path: str | Path) -> tuple[list[VenueAddress], list[str], dict[str, float]]:
    """Venues (name, host, port), symbols and tick sizes from a sim or gateway TOML."""
    import tomllib
    data = tomllib.loads(Path(path).read_text())
    venues = [VenueAddress(name=v["name"], host=v.get("host", "127.0.0.1"), port=int(v["port"]))
              for v in data.get("venues") or []]
    if not venues:
        raise SystemExit(f"{path}: no [[venues]] with name and port")
    ticks = {s["symbol"]: float(s["tick_size"]) for s in data.get("symbols") or [] if "tick_size" in s}
    symbols = [s["symbol"] for s in data.get("symbols") or []] or \
        list((data.get("routing") or {}).get("md_symbols") or [])
    return venues, symbols, ticks


def record(venues: Sequence[VenueAddress], symbols: Sequence[str], ticks: dict[str, float], out: str | Path,
           duration_s: float, comp_id: str = "CLIENT", depth: int = 5, probe_interval_s: float = 0.05,
           heartbeat_s: int = 30, connect_timeout_s: float = 15.0, stop: threading.Event | None = None,
           progress: Callable[[dict], None] | None = None) -> dict:
    """Connect, record for ``duration_s`` (or until ``stop`` is set), close the files; a summary."""
    from gateway.fix.engine import create_engine
    from gateway.fix.settings import SessionSettings
    from gateway.fix.transport import new_event_loop

    meta = {"source": "fixgw record", "comp_id": comp_id, "venues": [v.name for v in venues],
            "symbols": list(symbols), "tick_sizes": ticks, "started_ns": time.time_ns(),
            "clock": "ts_local = time.time_ns() at receipt"}
    writer = RecordingWriter(out, meta=meta, batch_rows=16_384)
    feed = RecordingFeed(venues, symbols, ticks, writer.recorder, depth=depth, probe_interval_s=probe_interval_s,
                         md_prefix=comp_id)
    settings = [SessionSettings(sender_comp_id=comp_id, target_comp_id=v.name, role="initiator",
                                heartbeat_s=heartbeat_s, reset_on_logon=True) for v in venues]
    hosts = {s.key: [(v.host, v.port)] for s, v in zip(settings, venues)}
    stop = stop or threading.Event()
    summary: dict = {"out": str(out)}

    async def main() -> None:
        engine = create_engine("native", "initiator", settings, feed, hosts=hosts)
        ready = asyncio.Event()
        feed.on_ready = ready.set
        await engine.start()
        try:
            try:
                await asyncio.wait_for(ready.wait(), connect_timeout_s)
            except asyncio.TimeoutError:
                summary["warning"] = (f"not every venue/book up after {connect_timeout_s:.0f}s: "
                                      f"up={sorted(feed.sessions)}")
            t_end = time.monotonic() + duration_s
            while not stop.is_set():
                left = t_end - time.monotonic()
                if left <= 0:
                    break
                await asyncio.sleep(min(1.0, left))
                if progress is not None:
                    progress({"events": writer.recorder.events, "probes": writer.recorder.probes,
                              "up": sorted(feed.sessions)})
        finally:
            feed.stop()
            await engine.stop()

    loop = new_event_loop()
    try:
        loop.run_until_complete(main())
    finally:
        loop.close()
        with feed.tap.lock:
            feed.tap.closed = True
            writer.close()
    summary.update({**feed.tap.stats, "events": writer.recorder.events, "probes": writer.recorder.probes,
                    "feed": dict(feed.stats)})
    return summary


def main(argv: list[str] | None = None, prog: str = "fixgw record", command: str = "record") -> int:
    ap = argparse.ArgumentParser(prog=prog, description="Record venues' market data and latency probes to Parquet.")
    ap.add_argument("--config", required=True, help="simulator or gateway TOML with [[venues]] name, (host), port")
    ap.add_argument("--symbols", help="comma-separated (default: the config's [[symbols]] / routing.md_symbols)")
    ap.add_argument("--duration", type=float, default=60.0, help="seconds (Ctrl-C ends earlier)")
    ap.add_argument("--out", required=True, help="recording directory (events.parquet + probes.parquet)")
    ap.add_argument("--comp-id", default="CLIENT", help="our SenderCompID on the venue sessions")
    ap.add_argument("--venues", help="comma-separated subset of the config's venues")
    ap.add_argument("--depth", type=int, default=5)
    ap.add_argument("--probe-interval", type=float, default=0.05, help="seconds between probes per venue (0: none)")
    args = ap.parse_args(argv)
    venues, symbols, ticks = venues_from_config(args.config)
    if args.venues:
        keep = set(args.venues.split(","))
        venues = [v for v in venues if v.name in keep]
    if args.symbols:
        symbols = [s for s in args.symbols.split(",") if s]
    if not symbols:
        raise SystemExit(f"{prog}: no symbols (use --symbols)")
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    summary = record(venues, symbols, ticks, args.out, args.duration, args.comp_id, args.depth,
                     args.probe_interval, stop=stop)
    print(json.dumps(summary, indent=1))
    return 0 if summary["events"] else 1


if __name__ == "__main__":
    sys.exit(main())
