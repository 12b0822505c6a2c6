"""The fidelity check's pieces: the live trading window on a replayed strategy, the table, the
verdict; and one short live run recorded and replayed end to end (bounded)."""
from __future__ import annotations

import json

import pytest

from gateway.apps.backtest.fidelity import WindowedStrategy, main, table, verdict


class Inner:
    name = "inner"
    timer_interval_s = 0.01

    def __init__(self):
        self.calls = []

    def on_book(self, ev, m):
        self.calls.append(("book", ev.at))
        return ["b"]

    def on_trade(self, ev, m):
        self.calls.append(("trade", ev.at))
        return []

    def on_timer(self, now, m):
        self.calls.append(("timer", now))
        return []

    def on_report(self, ev, m):
        self.calls.append(("report",))
        return ["r"]

    def stop(self, now, m):
        self.calls.append(("stop", now))
        return ["s"]

    def stats(self):
        return {"n": len(self.calls)}


class Ev:
    def __init__(self, at):
        self.at = at


def test_windowed_strategy_gates_like_the_live_driver():
    inner = Inner()
    w = WindowedStrategy(inner, 1.0, 2.0)
    assert w.on_book(Ev(0.5), None) == [] and w.on_timer(0.9, None) == []
    assert w.on_book(Ev(1.5), None) == ["b"]
    assert w.on_report(Ev(1.6), None) == ["r"]
    assert w.on_book(Ev(2.1), None) == ["s", "b"]          # stop at the window's end, exits go on
    assert w.stop(3.0, None) == []                           # end of data: already stopped
    assert [c[0] for c in inner.calls] == ["book", "report", "stop", "book"]
    assert w.stats() == {"n": 4} and w.timer_interval_s == 0.01


def test_table_and_verdict():
    live = {"orders": 10, "order_fill_rate": 0.5, "entry_fill_rate": 0.4, "round_trips": 4, "missed": 6,
            "win_rate": 0.25, "pnl": -10.0, "open_at_end": 0}
    rep = {**live, "entry_fill_rate": 0.43, "pnl": -3.0, "round_trips": 5}
    text = table(live, rep)
    assert "| entry fill rate (round trips / entries) | 40.0% | 43.0% | +3.0 pp |" in text
    assert "| round trips | 4 | 5 | +1 |" in text
    assert verdict(live, rep) == {"fill_rate_within_5pp": True, "pnl_same_sign": True}
    assert verdict(live, {**rep, "pnl": 1.0, "entry_fill_rate": 0.6}) == {"fill_rate_within_5pp": False,
                                                                          "pnl_same_sign": False}


@pytest.mark.timeout(120)
def test_fidelity_end_to_end_short_run(tmp_path, capsys):
    """sim + gateway + scalper for 3 s, recorded by the client's feed, replayed: both columns filled."""
    assert main(["--duration", "3", "--out", str(tmp_path)]) == 0
    res = json.loads((tmp_path / "fidelity.json").read_text())
    assert res["recording"]["events"] > 100 and res["recording"]["probes"] > 10
    assert res["replay"]["events"] == res["recording"]["events"]
    assert res["live"]["orders"] is not None and res["replay"]["orders"] is not None
    assert "| live | replay |" in capsys.readouterr().out
    # replaying the saved run again gives the same replay figures (deterministic)
    assert main(["--replay-only", str(tmp_path / "fidelity.json"), "--out", str(tmp_path / "again")]) == 0
    again = json.loads((tmp_path / "again" / "fidelity.json").read_text())
    assert again["replay"]["pnl"] == res["replay"]["pnl"] and again["replay"]["orders"] == res["replay"]["orders"]
