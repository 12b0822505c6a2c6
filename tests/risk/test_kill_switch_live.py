"""The kill switch through real sockets: losing fills trip it, open orders on every venue end
canceled, the OMS is told, later orders are rejected, and a person's reset restores trading."""
from __future__ import annotations

import pytest

from stack import ENGINES


@pytest.mark.parametrize("engine", ENGINES)
def test_losing_burst_trips_cancels_everything_and_reset_restores(stack, engine):
    stack.engine = engine
    stack.start_sim("a", [{"name": "ALPHA", "seed": 1}])
    stack.start_sim("b", [{"name": "BRAVO", "seed": 2}])
    stack.start_gateway(routing={"policy": "dma"},
                        risk={"loss_window_s": 2.0, "loss_threshold": 20.0, "max_order_qty": 10000})
    stack.wait_status(lambda st: all(not b.get("stale", True) for v in st["venues"]
                                     for b in v["market"].get("books", {}).values()) and st["venues"],
                      "books of both venues")
    oms = stack.oms()
    for cid, venue in (("rest-a", "ALPHA"), ("rest-b", "BRAVO")):     # resting far from the touch
        oms.order(cid, qty=100, price="180.00", tif="0", extra=[(100, venue)])
        assert [r[150] for r in oms.reports(cid, timeout=3, until_terminal=False)] == ["0"]

    news = None
    for i in range(6):                                                 # buy the ask, sell the bid
        oms.order(f"b{i}", side="1", qty=2000, price="191.00")
        oms.reports(f"b{i}")
        oms.order(f"s{i}", side="2", qty=2000, price="189.00")
        oms.reports(f"s{i}")
        st = stack.status()
        if st["risk"]["state"] == "HALTED":
            break
    assert st["risk"]["state"] == "HALTED", st["risk"]
    assert "loss" in st["risk"]["trip_reason"]

    seen = {}
    for _ in range(20):                                                # News + unsolicited cancels
        msg = oms.recv(2)
        if msg is None:
            break
        if msg.get(35) == b"B":
            news = msg
        elif msg.get(35) == b"8" and msg.get(39) == b"4":
            seen[msg.get(11).decode()] = msg.get(58).decode()
        if news is not None and len(seen) == 2:
            break
    assert news is not None and b"KILL SWITCH" in news.get(148)
    assert set(seen) == {"rest-a", "rest-b"} and all("kill switch" in t for t in seen.values())
    st = stack.wait_status(lambda s: s["orders"]["open"] == 0, "no open orders")
    assert all(v["open_orders"] == 0 for v in st["venues"])

    oms.order("after", price="191.00")
    rej = oms.reports("after")[-1]
    assert rej[39] == "8" and "kill" in rej[58].lower()

    answer = stack.post("/reset", {"by": "tester"})
    assert answer["risk"]["state"] == "ACTIVE"
    oms.order("again", price="191.00", qty=100)
    assert oms.reports("again")[-1][39] == "2"
    assert stack.status()["risk"]["trips"] == 1
