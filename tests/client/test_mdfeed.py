"""gateway.core.mdfeed: W/X pairs -> per-venue books and fanned-out changes (sans-IO)."""
from __future__ import annotations

from gateway.common.clock import FakeClock
from gateway.core.book import L2Book
from gateway.core.mdfeed import VenueBooks, md_entries, md_request_body


def pairs(text: str) -> list[tuple[int, str]]:
    return [(int(k), v) for k, v in (f.split("=", 1) for f in text.split("|") if f)]


def books() -> VenueBooks:
    clock = FakeClock()
    return VenueBooks("ALPHA", lambda s: L2Book(s, clock))


SNAP = "35=W|262=R1|55=EURUSD|268=3|269=0|270=1.10000|271=500|269=1|270=1.10001|271=300|269=2|270=1.1|271=5|10=000|"


def test_entries_split_on_the_first_entry_tag_and_stop_at_the_trailer():
    head, entries = md_entries(pairs(SNAP))
    assert head[55] == "EURUSD" and len(entries) == 3 and entries[1] == {269: "1", 270: "1.10001", 271: "300"}


def test_snapshot_then_incremental_trade_aggressor_and_level_change():
    vb = books()
    assert vb.on_snapshot(pairs(SNAP)) == [("EURUSD", "book", 0.0, 0.0, None)]   # last print not fanned out
    book = vb.books["EURUSD"]
    assert book.best_bid() == (1.1, 500) and book.best_ask() == (1.10001, 300)
    x = "35=X|262=R1|268=2|279=0|269=2|55=EURUSD|270=1.10001|271=100|279=1|269=1|55=EURUSD|270=1.10001|271=200|"
    out = vb.on_incremental(pairs(x))
    assert out == [("EURUSD", "trade", 1.10001, 100.0, "1"), ("EURUSD", "book", 0.0, 0.0, None)]
    assert book.best_ask() == (1.10001, 200)
    hit = vb.on_incremental(pairs("35=X|268=1|279=0|269=2|55=EURUSD|270=1.1|271=50|"))
    assert hit == [("EURUSD", "trade", 1.1, 50.0, "2")]                            # at the bid: a seller


def test_incremental_before_snapshot_is_dropped_and_bad_entries_counted():
    vb = books()
    assert vb.on_incremental(pairs("35=X|268=1|279=0|269=0|55=EURUSD|270=1.1|271=5|")) == []
    vb.on_snapshot(pairs(SNAP))
    out = vb.on_incremental(pairs("35=X|268=2|279=0|269=0|55=EURUSD|271=5|279=0|269=9|55=EURUSD|270=1.2|271=1|"))
    assert out == [] and vb.skipped == 2
    vb.mark_stale()
    assert vb.on_incremental(pairs("35=X|268=1|279=0|269=0|55=EURUSD|270=1.1|271=5|")) == []


def test_snapshot_without_symbol_uses_the_request_id():
    vb = books()
    vb.req_symbols["R9"] = "AAPL"
    vb.on_snapshot(pairs("35=W|262=R9|268=1|269=0|270=190.01|271=100|"))
    assert vb.books["AAPL"].best_bid() == (190.01, 100)


def test_md_request_body_lists_types_and_symbols():
    body = md_request_body("REQ", ["EURUSD", "AAPL"], 5)
    assert body.startswith("262=REQ\x01263=1\x01264=5\x01265=1\x01267=3\x01269=0\x01269=1\x01269=2\x01")
    assert body.endswith("146=2\x0155=EURUSD\x0155=AAPL\x01")
