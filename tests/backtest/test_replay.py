"""The whole replay on synthetic 3-venue data: scalp router + risk + report; and a Dask sweep."""
from __future__ import annotations

import time

from bt_strategies import TouchScalper
from gateway.apps.backtest.config import load_config
from gateway.apps.backtest.engine import Replay
from gateway.apps.backtest.report import write_report
from gateway.apps.backtest.synth import synthetic
from gateway.core.book import L2Book


def test_scalp_replay_routes_across_venues_and_writes_the_report(tmp_path):
    rec = synthetic(30_000, seed=5)
    cfg = load_config(None, {"backtest.venues.ALPHA.taker_bps": 1.0, "backtest.queue": "probabilistic"})
    res = Replay(rec, TouchScalper(every=100), cfg).run()
    assert res["orders_sent"] > 50 and res["fill_rate"] > 0.5
    assert sum(res["routes"].values()) == res["stats"]["children"]
    assert res["ledger"]["fees_by_venue"]["ALPHA"] > 0
    # the live risk engine booked the same fills as the backtest's ledger
    assert abs(res["risk"]["realized_pnl"] - res["ledger"]["realized_gross"]) < 1e-6
    paths = write_report(res, tmp_path / "out")
    text = paths["markdown"].read_text()
    assert "## Summary" in text and "fill_rate" in text and paths["json"].exists()


def test_replay_is_deterministic():
    rec1, rec2 = synthetic(10_000, seed=9), synthetic(10_000, seed=9)
    cfg = load_config(None, {"backtest.default_venue.latency": "normal", "backtest.default_venue.jitter_us": 30})
    a = Replay(rec1, TouchScalper(every=40), cfg).run()
    b = Replay(rec2, TouchScalper(every=40), cfg).run()
    assert a["fills"] == b["fills"] and a["ledger"] == b["ledger"]


def test_lazy_cumulative_depth_answers_like_a_full_recount():
    """L2Book builds its cumulative depth on read (book.py): every depth answer equals a
    recount of the levels after each update, reads interleaved with bursts of updates."""
    import random
    rnd = random.Random(4)
    book = L2Book("X")
    book.apply_snapshot([(99.5, 3.0), (99.0, 4.0)], [(100.5, 2.0), (101.0, 5.0)])

    def recount(order_side, px):
        side = "1" if order_side == "1" else "0"
        lv = book.levels(side)
        ok = [q for p, q in lv if px is None or (p <= px + 1e-9 if order_side == "1" else p >= px - 1e-9)]
        return float(sum(ok))

    def sweep(order_side, qty):
        acc = 0.0
        for p, q in book.levels("1" if order_side == "1" else "0"):
            acc += q
            if acc >= qty - 1e-9:
                return p
        return None
    for n in range(800):
        args = (rnd.choice("01"), rnd.choice("01"), 100 + rnd.randint(-5, 5) * 0.5, float(rnd.randint(0, 9)))
        args = ("2" if args[3] == 0 else args[0],) + args[1:]
        book.apply_update(*args)
        if n % rnd.choice((1, 3, 7)):
            continue
        for side in ("1", "2"):
            for px in (None, 99.0, 100.0, 101.5):
                assert book.qty_available(side, px) == recount(side, px)
            assert book.sweep_price(side, 7) == sweep(side, 7)
    book.apply_snapshot([], [])
    assert book.qty_available("1", None) == 0.0 and book.sweep_price("2", 1) is None


def test_sweep_of_8_parameter_sets_on_a_local_cluster():
    from gateway.apps.backtest.sweep import run_sweep
    grid = {"backtest.queue": ["risk_averse", "probabilistic"],
            "backtest.default_venue.entry_us": [100.0, 800.0],
            "backtest.params.every": [50, 200]}
    base = {"backtest.strategy": "bt_strategies:TouchScalper"}
    t0 = time.perf_counter()
    seen = []
    rows = run_sweep(["synth:8000:2"], {**{k: [v] for k, v in base.items()}, **grid}, processes=False,
                     workers=2, progress=lambda d, n: seen.append((d, n)))
    assert len(rows) == 8 and seen[-1] == (8, 8)
    assert {(r["backtest.queue"], r["backtest.default_venue.entry_us"], r["backtest.params.every"]) for r in rows} \
        == {(q, e, n) for q in grid["backtest.queue"] for e in grid["backtest.default_venue.entry_us"]
            for n in grid["backtest.params.every"]}
    assert all(r["events"] > 7000 for r in rows)
    assert time.perf_counter() - t0 < 30


def test_cli_backtest_writes_a_report(tmp_path, capsys):
    from gateway.apps.backtest.cli import main
    assert main(["synth", "--events", "3000", "--out", str(tmp_path / "s.rec")]) == 0
    assert main(["--data", str(tmp_path / "s.rec"), "--strategy", "bt_strategies:TouchScalper",
                 "--set", "backtest.params.every=20", "--out", str(tmp_path / "rep")]) == 0
    assert (tmp_path / "rep" / "report.md").exists() and (tmp_path / "rep" / "fills.csv").exists()
    assert '"fill_rate"' in capsys.readouterr().out


def test_the_fast_book_event_equals_the_dataclass_one():
    from gateway.apps.backtest.engine import _BU_AT, _BU_SYMBOL, _BU_VENUE
    from gateway.core.strategies.base import BookUpdated
    ev = object.__new__(BookUpdated)
    _BU_VENUE(ev, "A")
    _BU_SYMBOL(ev, "S")
    _BU_AT(ev, 1.5)
    assert ev == BookUpdated(venue="A", symbol="S", at=1.5) and hash(ev) == hash(BookUpdated(venue="A", symbol="S", at=1.5))
    import dataclasses
    import pytest
    with pytest.raises(dataclasses.FrozenInstanceError):
        ev.at = 2.0


def test_a_registered_tactic_runs_by_name():
    import pytest
    pytest.importorskip("gateway.core.strategies.registry")   # lands with the tactics branch
    from gateway.apps.backtest.engine import load_strategy
    rec = synthetic(20_000, seed=11)
    strat = load_strategy("scalper", {"symbols": ["SYM"], "qty": 1, "imbalance_ratio": 2.0})
    cfg = load_config(None, {"backtest.tick_sizes.SYM": 0.01})
    res = Replay(rec, strat, cfg).run()
    assert res["orders_sent"] > 0 and res["risk"]["state"] == "ACTIVE"
