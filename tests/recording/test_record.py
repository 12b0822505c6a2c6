"""``fixgw record`` and ``start_recording``: sans-IO tap units, and a loopback run against a ``fixgw sim``."""
from __future__ import annotations

import json
import sys

import numpy as np
import pytest

from gateway.apps.backtest.record import MarketTap, fix_time_ns, start_recording
from gateway.apps.client.feed import MarketFeed, VenueAddress
from gateway.common import procs
from gateway.apps.demo.tomlout import dumps
from gateway.core.recording import (AGG_BUY, ASK, BID, CLEAR, DELETE, SNAPSHOT, TRADE, UPDATE, Recorder,
                                    read_recording)
from gateway.fix.codec import Message

T52 = "20260101-10:00:00.123"
T52_NS = 1767261600_123_000_000


def msg(mt: str, body: str) -> Message:
    pairs = [(8, "FIX.4.4"), (9, "0"), (35, mt), (34, "2"), (49, "ALPHA"), (52, T52), (56, "CLIENT")]
    pairs += [(int(t), v) for t, v in (f.split("=", 1) for f in body.strip("\x01").split("\x01"))]
    return Message(pairs, b"", mt)


class Session:
    target_comp_id = "ALPHA"


SNAP = "262=R1\x0155=EURUSD\x01268=2\x01269=0\x01270=1.1\x01271=900\x01269=1\x01270=1.2\x01271=100\x01"
INC = ("262=R1\x01268=3\x01279=0\x01269=2\x0155=EURUSD\x01270=1.2\x01271=40\x01"
       "279=1\x01269=1\x0155=EURUSD\x01270=1.2\x01271=60\x01"
       "279=2\x01269=0\x0155=EURUSD\x01270=1.1\x01273=10:00:00.200\x01272=20260101\x01")


def rows(batches):
    import pyarrow as pa
    return pa.Table.from_batches(batches).to_pylist()


def test_fix_time_ns():
    assert fix_time_ns(T52) == T52_NS
    assert fix_time_ns("10:00:00.5", "20260101") == 1767261600_500_000_000
    assert fix_time_ns("20260101-10:00:00.123456") == 1767261600_123_456_000
    assert fix_time_ns("garbage") is None and fix_time_ns(None) is None


def test_tap_on_feed_records_before_apply_with_both_clocks():
    batches = []
    feed = MarketFeed([VenueAddress(name="ALPHA", host="127.0.0.1", port=1)], ["EURUSD"], {"EURUSD": 0.1})
    now = iter(range(2_000_000_000_000_000_000, 2_000_000_000_000_000_000 + 100))


    rec = Recorder(batches.append)
    tap = MarketTap(rec, feed.books.get)
    s = Session()
    # an incremental before any snapshot: the feed drops it, the tap does not record it
    tap.on_md("ALPHA", "X", msg("X", INC).pairs, next(now))
    feed.books["ALPHA"].req_symbols["R1"] = "EURUSD"
    for mt, body in (("W", SNAP), ("X", INC)):
        m = msg(mt, body)
        tap.on_md("ALPHA", mt, m.pairs, next(now))
        feed.on_message(s, m)
    rec.flush()
    got = rows(batches)
    kinds = [(r["kind"], r["side"], r["price"], r["qty"], r["action"]) for r in got]
    assert kinds == [(CLEAR, 0, 0.0, 0.0, 0), (SNAPSHOT, BID, 1.1, 900.0, 0), (SNAPSHOT, ASK, 1.2, 100.0, 0),
                     (TRADE, AGG_BUY, 1.2, 40.0, 0), (UPDATE, ASK, 1.2, 60.0, 1), (UPDATE, BID, 1.1, 0.0, DELETE)]
    assert {r["venue"] for r in got} == {"ALPHA"} and {r["symbol"] for r in got} == {"EURUSD"}
    assert [r["ts_exch"] for r in got] == [T52_NS] * 5 + [1767261600_200_000_000]   # 273 wins over 52
    assert got[0]["ts_local"] < got[3]["ts_local"]
    assert tap.stats["dropped"] == 3
    assert feed.book("ALPHA", "EURUSD").best_ask() == (1.2, 60.0)     # the feed still applied everything


def test_start_recording_taps_and_detaches(tmp_path):
    feed = MarketFeed([VenueAddress(name="ALPHA", host="127.0.0.1", port=1)], ["EURUSD"], {"EURUSD": 0.1})
    feed.books["ALPHA"].req_symbols["R1"] = "EURUSD"
    h = start_recording(feed, tmp_path / "r.rec")
    feed.on_message(Session(), msg("W", SNAP))
    feed.on_message(Session(), msg("X", INC))
    pid = feed.probes.new_probe("ALPHA")
    feed.on_admin(Session(), msg("0", f"112={pid}\x01"))
    summary = h.close()
    assert "on_message" not in feed.__dict__ and "on_heartbeat" not in feed.probes.__dict__
    feed.on_message(Session(), msg("X", INC))          # after close: applied, not recorded
    assert h.close()["events"] == summary["events"] == 6
    rec = read_recording(tmp_path / "r.rec")
    assert len(rec) == 6 and rec.venues == ["ALPHA"] and rec.symbols == ["EURUSD"]
    assert len(rec.probe_rtt) == 1 and 0 <= rec.probe_rtt[0] < 1.0
    assert feed.latency["ALPHA"].count == 1


def test_fixgw_record_against_sim_over_loopback(tmp_path):
    """A sim process with two venues and live flow; ``fixgw record`` for ~3 s; the file holds
    snapshots, updates and trades of both venues with venue and receive times, and probes."""
    ports = procs.free_ports(2)
    flow = {"enabled": True, "rate_per_s": 200, "marketable_fraction": 0.3, "cancel_fraction": 0.3,
            "mean_qty": 50, "initial_levels": 5, "level_qty": 300, "spread_ticks": 1}
    sim = {"store_dir": str(tmp_path / "sim-store"), "log_dir": "",
           "symbols": [{"symbol": "EURUSD", "tick_size": 0.00001, "ref_price": 1.1}],
           "venues": [{"name": "ALPHA", "port": ports[0], "seed": 1, "flow": flow,
                       "latency": {"base_us": 2000, "jitter_us": 0}},
                      {"name": "BRAVO", "port": ports[1], "seed": 2, "flow": flow}]}
    cfg = tmp_path / "sim.toml"
    cfg.write_text(dumps(sim))
    sim_proc = procs.start(procs.fixgw_command("sim", "--config", str(cfg)), tmp_path / "sim.log")
    try:
        procs.wait_for_ports(ports, 20, sim_proc)
        out = tmp_path / "run.rec"
        rec_proc = procs.start([sys.executable, "-m", "gateway.apps.backtest.record", "--config", str(cfg),
                                "--duration", "3", "--out", str(out)], tmp_path / "record.log")
        try:
            rc = rec_proc.wait(25)
        finally:
            procs.stop(rec_proc)
        log = (tmp_path / "record.log").read_text()
        assert rc == 0, log
        summary = json.loads(log[log.index("{"):])
        assert summary["events"] > 50 and summary["probes"] > 10
    finally:
        procs.stop(sim_proc)
    rec = read_recording(out)
    assert sorted(rec.venues) == ["ALPHA", "BRAVO"] and rec.symbols == ["EURUSD"]
    for v in range(2):
        kinds = set(rec.kind[rec.venue == v].tolist())
        assert {CLEAR, SNAPSHOT, UPDATE} <= kinds
    assert (rec.kind == TRADE).any()
    feed_lat = (rec.ts_local - rec.ts_exch) * 1e-9
    assert np.all(np.abs(feed_lat) < 1.0)                         # same wall clock
    alpha = rec.venues.index("ALPHA")
    # ALPHA's injected 2 ms is in the data: venue time (ms precision) vs our receive time
    assert np.median(feed_lat[rec.venue == alpha]) > 0.0015
    assert np.all(np.diff(rec.ts_local) >= 0)
    assert len(rec.probe_rtt) > 10
    assert np.median(rec.probe_rtt[rec.probe_venue == alpha]) > 0.003      # 2 ms each way


def test_start_recording_on_a_running_feed_writes_its_books_first(tmp_path):
    feed = MarketFeed([VenueAddress(name="ALPHA", host="127.0.0.1", port=1)], ["EURUSD"], {"EURUSD": 0.1})
    feed.books["ALPHA"].req_symbols["R1"] = "EURUSD"
    feed.on_message(Session(), msg("W", SNAP))
    h = start_recording(feed, tmp_path / "r.rec", wall_ns=lambda: 5)
    feed.on_message(Session(), msg("X", INC))
    h.close()
    rec = read_recording(tmp_path / "r.rec")
    assert rec.kind.tolist() == [CLEAR, SNAPSHOT, SNAPSHOT, TRADE, UPDATE, UPDATE]
    assert rec.ts_local.tolist() == [5] * 6 and rec.ts_exch[:3].tolist() == [5, 5, 5]


def test_start_recording_lets_the_feed_go_first_unless_a_trade_needs_the_touch_before(tmp_path):
    """The strategy's listeners (and the order they send) run before the tap for a W or a
    trade-free X; a message with a trade is tapped first (its aggressor reads the touch before).
    The rows are the same either way."""
    feed = MarketFeed([VenueAddress(name="ALPHA", host="127.0.0.1", port=1)], ["EURUSD"], {"EURUSD": 0.1})
    feed.books["ALPHA"].req_symbols["R1"] = "EURUSD"
    h = start_recording(feed, tmp_path / "r.rec")
    tapped_before_listener = []
    feed.listeners.append(lambda *a: tapped_before_listener.append(h.tap.stats["messages"]))
    feed.on_message(Session(), msg("W", SNAP))                    # tap after the listener: 0 seen
    book_only = "262=R1\x01268=1\x01279=1\x01269=1\x0155=EURUSD\x01270=1.2\x01271=70\x01"
    feed.on_message(Session(), msg("X", book_only))               # after: 1 seen
    feed.on_message(Session(), msg("X", INC))                     # a trade: tapped first, 3 seen
    summary = h.close()
    assert tapped_before_listener[0] == 0 and tapped_before_listener[1] == 1 and set(tapped_before_listener[2:]) == {3}
    rec = read_recording(tmp_path / "r.rec")
    assert summary["messages"] == 3 and summary["rows"] == len(rec) == 3 + 1 + 3
