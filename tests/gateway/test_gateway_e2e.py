"""End to end over loopback: raw OMS client -> gateway process -> simulator processes.

Two simulator processes (ALPHA, BRAVO) so that one venue can go down alone. Background
flow is off: the seeded initial book is the only liquidity, so outcomes are exact. Every
test runs against the gateway on both FIX engines (``engine = "native" | "quickfix"``).
"""
from __future__ import annotations

import pytest

from gateway.common import procs
from gateway.fix.raw import ConnectionClosed, utc_now
from stack import ENGINES, Oms

TERMINAL = {"2", "4", "8", "C"}


@pytest.fixture(params=ENGINES)
def live(stack, request):
    stack.engine = request.param
    stack.start_sim("a", [{"name": "ALPHA", "seed": 1}])
    stack.start_sim("b", [{"name": "BRAVO", "seed": 2}])
    stack.start_gateway()
    return stack


def book_top(stack, venue: str) -> dict:
    """Best bid/ask of AAPL on a venue, from a market data snapshot."""
    c = stack.venue_client(venue)
    c.send("V", [(262, "top"), (263, "0"), (264, 1), (267, 2), (269, "0"), (269, "1"), (146, 1), (55, "AAPL")])
    msg = c.recv_type("W", 5)
    top, side = {}, None
    for tag, value in msg.pairs:
        if tag == b"269":
            side = {b"0": "bid", b"1": "ask"}.get(value)
        elif tag == b"270" and side:
            top[side] = float(value)
        elif tag == b"271" and side:
            top[side + "_qty"] = float(value)
    c.close()
    return top


def terminal(reports):
    ends = [r for r in reports if r[39] in TERMINAL]
    assert len(ends) == 1, f"want exactly one terminal report, got {reports}"
    return ends[0]


def test_fill_partial_miss_with_venue_and_ids_mapped_back(live):
    top = book_top(live, "ALPHA")
    oms = live.oms()
    oms.order("f1", qty=100, price=f"{top['ask']:.2f}")
    reps = oms.reports("f1")
    end = terminal(reps)
    assert end[39] == "2" and float(end[14]) == 100 and float(end[151]) == 0
    assert end[30] == "ALPHA" and end[37].startswith("O") and end[198]        # our OrderID, venue's kept
    assert float(end[6]) == pytest.approx(top["ask"])

    oms.order("p1", qty=1_000_000, price=f"{top['ask'] + 0.01:.2f}")      # more than two levels hold
    reps = oms.reports("p1")
    fills = [r for r in reps if r[150] == "F"]
    end = terminal(reps)
    assert fills and end[39] == "4" and 0 < float(end[14]) < 1_000_000 and float(end[151]) == 0
    assert float(end[14]) == pytest.approx(sum(float(r[32]) for r in fills))

    oms.order("m1", qty=100, price=f"{top['bid'] - 1:.2f}")               # IOC far from the touch
    end = terminal(oms.reports("m1"))
    assert (end[39], float(end[14])) == ("4", 0)

    st = live.status()
    assert st["orders"]["filled"] == 1 and st["orders"]["canceled"] == 2 and st["orders"]["open"] == 0


def test_rejects_are_reported_never_silent(live):
    oms = live.oms()
    oms.order("r1", price="190.001")                                      # off tick: venue rejects
    end = terminal(oms.reports("r1"))
    assert end[39] == "8" and "tick" in end[58] and "ALPHA" in end[58]
    oms.order("r1", price="190.00")                                       # duplicate ClOrdID
    end = terminal(oms.reports("r1"))
    assert end[39] == "8" and "duplicate" in end[58] and end[103] == "6"
    oms.order("r2", extra=[(100, "NOWHERE")])
    end = terminal(oms.reports("r2"))
    assert end[39] == "8" and "unknown venue 'NOWHERE'" in end[58]
    oms.order("r3", symbol="ZZZZ")
    end = terminal(oms.reports("r3"))
    assert end[39] == "8" and "unknown symbol" in end[58]
    oms.order("r4", qty=0)
    assert "OrderQty must be positive" in terminal(oms.reports("r4"))[58]


def test_malformed_and_unsupported_messages_get_session_answers(live):
    oms = live.oms()
    oms.send("D", [(11, "bad1"), (55, "AAPL"), (38, 1), (40, "2"), (44, "1"), (60, utc_now())])   # no Side
    rej = oms.recv_type("3", 5)
    assert rej.get(373) == b"1" and rej.get(371) == b"54"
    oms.send("R", [(131, "q1"), (146, 1), (55, "AAPL")])                 # QuoteRequest: not ours
    bmr = oms.recv_type("j", 5)
    assert bmr.get(380) == b"3" and bmr.get(372) == b"R"
    oms.order("ok1", price=None)                                          # the session still works
    assert terminal(oms.reports("ok1"))[39] in TERMINAL
    assert live.status()["gateway"]["callback_errors"] == 0


def test_unknown_comp_id_and_bad_password_are_refused(live):
    for sender, extra in (("INTRUDER", []), ("OMS2", [(554, "wrong")])):
        c = Oms(port=live.oms_port, sender=sender, target="FIXGW", timeout=3).connect()
        try:
            answer = c.logon(extra=extra)
        except (ConnectionClosed, TimeoutError, OSError):
            answer = None
        assert answer is None or answer.get(35) == b"5", f"{sender} was let in"
        c.close()
    good = live.oms(sender="OMS2", extra=[(554, "pw")])
    good.order("pw1", price=None)
    assert terminal(good.reports("pw1"))[39] in TERMINAL


def test_cancel_and_replace_follow_the_order_to_its_venue(live):
    top = book_top(live, "ALPHA")
    passive = f"{top['bid'] - 0.05:.2f}"
    oms = live.oms()
    oms.order("d1", qty=100, price=passive, tif="0")
    reps = oms.reports("d1", timeout=2, until_terminal=False)
    assert [r[150] for r in reps] == ["0"]
    oms.cancel("d1c", "d1")
    reps = oms.reports("d1c")
    assert [r[150] for r in reps] == ["6", "4"] and reps[-1][41] == "d1" and reps[-1][39] == "4"
    oms.cancel("d1c2", "d1")                                               # too late
    rej = oms.reports("d1c2")[0]
    assert rej[35] == "9" and rej[102] == "0" and rej[434] == "1"
    oms.cancel("x1", "never-sent")
    assert oms.reports("x1")[0][102] == "1"
    oms.send("H", [(11, "d1"), (55, "AAPL"), (54, "1"), (790, "sr-1")])  # OrderStatusRequest
    st = oms.reports("d1", timeout=3, until_terminal=False)
    assert [(r[150], r[39], r[790]) for r in st] == [("I", "4", "sr-1")]   # OrdStatusReqID echoed
    oms.send("H", [(11, "nope"), (55, "AAPL"), (54, "1")])
    assert [(r[150], r[39], r[58], r[790]) for r in oms.reports("nope", timeout=3)] == [
        ("I", "8", "unknown order", None)]                                 # no 790 asked: none echoed

    oms.order("d2", qty=100, price=passive, tif="0")
    oms.reports("d2", timeout=2, until_terminal=False)
    oms.replace("d2r", "d2", qty=150, price=f"{top['bid'] - 0.04:.2f}")
    rep = oms.reports("d2r", timeout=3, until_terminal=False)
    assert rep[0][150] == "5" and rep[0][41] == "d2" and float(rep[0][151]) == 150
    oms.replace("d2r2", "d2r", qty=150, price=f"{top['ask'] + 0.02:.2f}")  # now marketable
    reps = oms.reports("d2r2")
    assert reps[0][150] == "5" and terminal(reps)[39] == "2" and float(terminal(reps)[14]) == 150
    assert live.status()["orders"]["replaced"] == 2


def test_venue_down_is_never_routed_to_and_reported(live):
    procs.stop(live.sims["b"])
    live.wait_status(lambda st: not next(v for v in st["venues"] if v["name"] == "BRAVO")["logged_on"],
                     "BRAVO logged out")
    oms = live.oms()
    oms.order("vd1", extra=[(100, "BRAVO")])
    end = terminal(oms.reports("vd1"))
    assert end[39] == "8" and "BRAVO" in end[58] and "down" in end[58]
    oms.order("vd2", price=None, extra=[(100, "ALPHA")])
    assert terminal(oms.reports("vd2"))[30] == "ALPHA"
    events = [e["event"] for e in live.status()["events"] if e["name"] == "BRAVO"]
    assert "logon" in events and "logout" in events


def test_gateway_crash_and_restart_recovers_orders_and_sequence_numbers(live):
    top = book_top(live, "ALPHA")
    bid = f"{top['bid']:.2f}"
    oms = live.oms()
    oms.order("k1", qty=100, price=bid, tif="0")                          # joins the best bid
    oms.order("k2", qty=100, price=f"{top['bid'] - 0.05:.2f}", tif="0")
    oms.reports("k1", timeout=2, until_terminal=False)
    oms.reports("k2", timeout=2, until_terminal=False)
    before = live.status()
    alpha_seq = next(v for v in before["venues"] if v["name"] == "ALPHA")["next_sender_seq"]

    procs.kill_hard(live.gateway)                                         # SIGKILL: no cleanup
    oms.close()
    seller = live.venue_client("ALPHA")                                   # trades while we are down
    seller.order("s1", side="2", qty=top["bid_qty"] + 100, price=bid)
    assert seller.reports("s1")

    live.start_gateway()
    st = live.status()
    assert st["gateway"]["recovered_records"] >= 4
    assert next(v for v in st["venues"] if v["name"] == "ALPHA")["next_sender_seq"] >= alpha_seq
    expected_in = oms.last_seq_in + 1
    oms.connect()
    ans = oms.logon(reset=False)                                          # same session, sequence continues
    assert ans.get(35) == b"A"
    if int(ans.get(34)) > expected_in:
        # quickfix stored the late fill in the OMS session while the OMS was away: a gap to fill
        oms.send("2", [(7, expected_in), (16, 0)])                        # what an OMS engine does on a gap
        flag = 43                                                          # resent: PossDupFlag
    else:
        flag = 97                # native: kept by the gateway and sent after the logon, PossResend
    late = oms.reports("k1")                                              # the fill that happened during the crash
    assert terminal(late)[39] == "2" and terminal(late)[30] == "ALPHA" and terminal(late)[flag] == "Y"
    oms.cancel("k2c", "k2")
    assert terminal(oms.reports("k2c"))[39] == "4"
    routed = live.status()["venues"][0]["orders_routed"]
    # the OMS resends an order the gateway already routed (PossDup): it must not reach the venue again
    oms.send("D", [(11, "k2"), (55, "AAPL"), (54, "1"), (38, 100), (40, "2"), (44, bid), (59, "0"),
                   (60, utc_now())], header=[(43, "Y"), (122, utc_now(-1))])
    answer = oms.reports("k2", timeout=2)          # its current status (ExecType I), never a second route
    assert [(r[150], r[39]) for r in answer][-1:] == [("I", "4")], answer
    st = live.status()
    assert st["venues"][0]["orders_routed"] == routed and st["gateway"]["resends_answered"] == 1


def test_a_retired_order_still_answers_the_oms_over_fix(stack):
    """``retire_after_s = 0``: a filled order's venue side leaves at the next tick; its status,
    a late cancel and a repeated ClOrdID are still answered as for any ended order."""
    import time
    stack.engine = "native"
    stack.start_sim("a", [{"name": "ALPHA", "seed": 1}])
    stack.start_sim("b", [{"name": "BRAVO", "seed": 2}])
    stack.start_gateway(extra={"retire_after_s": 0})
    top = book_top(stack, "ALPHA")
    oms = stack.oms()
    oms.order("r1", qty=100, price=f"{top['ask']:.2f}")
    end = terminal(oms.reports("r1"))
    assert end[39] == "2"
    deadline = time.monotonic() + 5
    while stack.status()["orders"]["retired"] < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    orders = stack.status()["orders"]
    assert (orders["retired"], orders["ended_held"]) == (1, 0)
    oms.send("H", [(11, "r1"), (55, "AAPL"), (54, "1")])
    (st,) = oms.reports("r1", timeout=3, until_terminal=False)
    assert (st[150], st[39], float(st[14]), st[37]) == ("I", "2", 100, end[37])
    oms.cancel("r1c", "r1")
    rej = oms.reports("r1c")[0]
    assert rej[35] == "9" and rej[102] == "0" and rej[37] == end[37]          # too late
    oms.order("r1", qty=100, price=f"{top['ask']:.2f}")
    dup = terminal(oms.reports("r1"))
    assert dup[39] == "8" and "duplicate" in dup[58]
