"""Hand-built event sequences for the backtest tests (times in microseconds)."""
from __future__ import annotations

from gateway.apps.backtest.config import load_config
from gateway.apps.backtest.engine import Replay
from gateway.core.recording import ASK, BID, CHANGE, CLEAR, DELETE, NEW, SNAPSHOT, TRADE, UPDATE, from_rows

US = 1000  # ns


def snap(t_us, bids, asks, venue="A", symbol="SYM", feed_us=0):
    t = int(t_us * US)
    rows = [(t, t + feed_us * US, venue, symbol, CLEAR, 0, 0.0, 0.0, 0)]
    rows += [(t, t + feed_us * US, venue, symbol, SNAPSHOT, BID, p, q, NEW) for p, q in bids]
    rows += [(t, t + feed_us * US, venue, symbol, SNAPSHOT, ASK, p, q, NEW) for p, q in asks]
    return rows


def upd(t_us, side, price, qty, venue="A", symbol="SYM", feed_us=0, action=None):
    t = int(t_us * US)
    act = action if action is not None else (DELETE if qty == 0 else CHANGE)
    return [(t, t + int(feed_us * US), venue, symbol, UPDATE, side, price, qty, act)]


def trade(t_us, price, qty, aggressor, venue="A", symbol="SYM", feed_us=0):
    t = int(t_us * US)
    return [(t, t + int(feed_us * US), venue, symbol, TRADE, aggressor, price, qty, 0)]


def config(entry_us=100.0, response_us=100.0, queue="risk_averse", **extra):
    over = {"backtest.default_venue.entry_us": entry_us, "backtest.default_venue.response_us": response_us,
            "backtest.queue": queue, "backtest.synthesize_probes": True}
    over.update(extra)
    return load_config(None, over)


def replay(rows, strategy, cfg=None, probes=()):
    rec = from_rows(rows, probes)
    r = Replay(rec, strategy, cfg or config())
    return r, r.run()
