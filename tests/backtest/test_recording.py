"""Recordings: Parquet round trip (batched Recorder and whole-array writer), CSV, LOBSTER."""
from __future__ import annotations

import numpy as np

from gateway.core.recording import (AGG_BUY, AGG_SELL, ASK, BID, CHANGE, CLEAR, DELETE, NEW, SNAPSHOT, TRADE,
                                    UPDATE, RecordingWriter, from_rows, read_csv, read_lobster, read_recording,
                                    write_recording)
from gateway.apps.backtest.synth import synthetic

COLS = ("ts_exch", "ts_local", "kind", "side", "price", "qty", "action")


def _same(a, b):
    for c in COLS:
        np.testing.assert_array_equal(getattr(a, c), getattr(b, c), err_msg=c)
    assert [a.venues[i] for i in a.venue] == [b.venues[i] for i in b.venue]
    assert [a.symbols[i] for i in a.symbol] == [b.symbols[i] for i in b.symbol]
    np.testing.assert_array_equal(a.probe_rtt, b.probe_rtt)
    assert [a.venues[i] for i in a.probe_venue] == [b.venues[i] for i in b.probe_venue]


def test_recorder_writes_batches_and_reads_back(tmp_path):
    with RecordingWriter(tmp_path / "r.rec", batch_rows=3) as rec:   # several row groups
        rec.snapshot("A", "EURUSD", 10, 15, [(1.1, 5.0)], [(1.2, 6.0)])
        rec.update("B", "EURUSD", 20, 30, ASK, 1.21, 2.0, NEW)
        rec.trade("A", "EURUSD", 25, 31, 1.2, 1.0, AGG_BUY)
        rec.update("A", "BTCUSD", 26, 32, BID, 50_000.5, 0.0, DELETE)
        rec.probe("A", 5, 0.00025)
        rec.probe("B", 6, 0.0009)
    got = read_recording(tmp_path / "r.rec")
    want = from_rows([(10, 15, "A", "EURUSD", CLEAR, 0, 0.0, 0.0, 0),
                      (10, 15, "A", "EURUSD", SNAPSHOT, BID, 1.1, 5.0, NEW),
                      (10, 15, "A", "EURUSD", SNAPSHOT, ASK, 1.2, 6.0, NEW),
                      (20, 30, "B", "EURUSD", UPDATE, ASK, 1.21, 2.0, NEW),
                      (25, 31, "A", "EURUSD", TRADE, AGG_BUY, 1.2, 1.0, 0),
                      (26, 32, "A", "BTCUSD", UPDATE, BID, 50_000.5, 0.0, DELETE)],
                     [("A", 5, 0.00025), ("B", 6, 0.0009)])
    _same(got, want)
    import pyarrow.parquet as pq
    assert pq.ParquetFile(tmp_path / "r.rec" / "events.parquet").metadata.num_row_groups >= 2


def test_write_recording_round_trip(tmp_path):
    rec = synthetic(5_000, seed=3)
    _same(read_recording(write_recording(rec, tmp_path / "s.rec", batch_rows=1_000)), rec)


def test_csv_layout(tmp_path):
    (tmp_path / "e.csv").write_text(
        "ts_exch,ts_local,venue,symbol,kind,side,price,qty,action\n"
        "1,2,A,SYM,clear,,,,\n"
        "1,2,A,SYM,snapshot,bid,99.5,10,new\n"
        "3,4,A,SYM,update,ask,100.5,0,delete\n"
        "5,6,A,SYM,trade,sell,99.5,2,\n")
    (tmp_path / "p.csv").write_text("venue,sent_at,rtt\nA,1,0.0004\n")
    rec = read_csv(tmp_path / "e.csv", tmp_path / "p.csv")
    assert rec.kind.tolist() == [CLEAR, SNAPSHOT, UPDATE, TRADE]
    assert rec.side.tolist() == [0, BID, ASK, AGG_SELL]
    assert rec.action.tolist() == [NEW, NEW, DELETE, NEW]
    assert rec.probe_rtt.tolist() == [0.0004]


def test_lobster_import_of_a_tiny_handmade_file(tmp_path):
    # 2 levels. Messages: time, type, id, size, price*1e4, direction
    (tmp_path / "msg.csv").write_text(
        "34200.000000001,1,1,10,1000000,1\n"      # buy limit 10 @ 100.00 (book row 0 = after it)
        "34200.5,1,2,5,1001000,-1\n"              # sell limit 5 @ 100.10
        "34201.0,4,1,4,1000000,1\n"               # 4 of the resting buy executed (a sell aggressor)
        "34202.0,3,2,5,1001000,-1\n")             # the sell order deleted
    E = 9999999999
    (tmp_path / "book.csv").write_text(
        f"1002000,3,1000000,10,{E},0,-{E},0\n"
        f"1001000,5,1000000,10,1002000,3,-{E},0\n"
        f"1001000,5,1000000,6,1002000,3,-{E},0\n"
        f"1002000,3,1000000,6,{E},0,-{E},0\n")
    rec = read_lobster(tmp_path / "msg.csv", tmp_path / "book.csv", venue="NASDAQ", symbol="AAPL")
    rows = list(zip(rec.kind.tolist(), rec.side.tolist(), rec.price.tolist(), rec.qty.tolist(), rec.action.tolist()))
    assert rows == [(CLEAR, 0, 0.0, 0.0, 0),
                    (SNAPSHOT, BID, 100.0, 10.0, NEW), (SNAPSHOT, ASK, 100.2, 3.0, NEW),
                    (UPDATE, ASK, 100.1, 5.0, NEW),
                    (TRADE, AGG_SELL, 100.0, 4.0, 0), (UPDATE, BID, 100.0, 6.0, CHANGE),
                    (UPDATE, ASK, 100.1, 0.0, DELETE)]
    assert rec.ts_exch.tolist()[0] == 34_200_000_000_001
    assert rec.venues == ["NASDAQ"] and rec.symbols == ["AAPL"]
