"""One OMS session floods the gateway (thousands of orders as fast as the socket takes
them); another session's orders are still answered within normal latency, and the venue
never holds more unanswered orders than ``risk.max_in_flight_per_venue``: the excess is
rejected with a reason. The venue is ``HoldingVenue`` (answers after a hold), so the
in-flight count is measured on the venue's side of the wire."""
from __future__ import annotations

import statistics
import threading
import time

from gateway.common import procs
from gateway.fix.raw import ConnectionClosed, utc_now
from tests.chaos.fakevenue import HoldingVenue
from tests.stack import Stack

CAP = 20
FLOOD = 3000


def _probe(oms, n: int, tag: str, rejected: list | None = None) -> list[float]:
    """``n`` orders one at a time; ms from send to the first answer (ack or reject)."""
    out = []
    for i in range(n):
        cl = f"{tag}-{i}"
        t0 = time.perf_counter()
        oms.order(cl, tif="3", extra=[(100, "FV")])
        first = oms.recv_until(lambda m: m.get(35) in (b"8", b"9") and m.get(11) == cl.encode(), timeout=10)
        out.append((time.perf_counter() - t0) * 1e3)
        if rejected is not None and first.get(150) == b"8":
            rejected.append((first.get(58) or b"").decode(errors="replace"))
        oms.reports(cl, timeout=5)            # drain to its end
    return out


def test_flood_from_one_session_leaves_the_other_answered_and_caps_the_venue(tmp_path):
    port = procs.free_port()
    venue = HoldingVenue("FV", port, hold_s=0.01).start()
    stack = Stack(tmp_path)
    stack.venue_ports["FV"] = port
    try:
        stack.start_gateway(clients=[{"comp_id": "OMS1", "password": "p1"}, {"comp_id": "OMS2", "password": "p2"}],
                            routing={"default_venue": "FV", "md_symbols": ["AAPL"]},
                            risk={"max_in_flight_per_venue": CAP})
        flooder = stack.oms("OMS1", extra=[(554, "p1")])
        quiet = stack.oms("OMS2", extra=[(554, "p2")])
        _probe(quiet, 10, "warm")
        before = _probe(quiet, 40, "before")

        answers = {"8": 0, "busy": 0, "other_rejects": 0, "reasons": {}}
        done = threading.Event()

        def drain() -> None:
            deadline = time.monotonic() + 60
            while not done.is_set() and time.monotonic() < deadline:
                try:
                    m = flooder.recv(0.2)
                except (ConnectionClosed, OSError):
                    return
                if m is None or m.get(35) not in (b"8", b"9"):
                    continue
                if m.get(39) in (b"4", b"8", b"2"):
                    answers["8"] += 1
                if m.get(150) == b"8":
                    text = (m.get(58) or b"").decode(errors="replace")
                    key = "busy" if "in flight" in text else "other_rejects"
                    answers[key] += 1
                    answers["reasons"][text[:60]] = answers["reasons"].get(text[:60], 0) + 1

        reader = threading.Thread(target=drain, daemon=True)
        reader.start()
        blob = b"".join(flooder.build("D", [(11, f"F{i}"), (55, "AAPL"), (54, "1"), (38, 1), (40, "2"),
                                            (44, "190.01"), (59, "3"), (100, "FV"), (60, utc_now())]).encode()
                        for i in range(FLOOD))
        t0 = time.perf_counter()
        sender = threading.Thread(target=lambda: flooder.send_raw(blob), daemon=True)
        sender.start()
        quiet_rejects: list[str] = []
        during = _probe(quiet, 40, "during", quiet_rejects)
        sender.join(30)
        deadline = time.monotonic() + 30
        while answers["8"] < FLOOD and time.monotonic() < deadline:
            time.sleep(0.05)
        flood_s = time.perf_counter() - t0
        done.set()
        reader.join(2)
        p50_before, p50_during = statistics.median(before), statistics.median(during)
        print(f"\nflood {FLOOD} orders from OMS1 in {flood_s:.2f} s: terminal answers {answers['8']}, "
              f"in-flight rejects {answers['busy']}, other rejects {answers['other_rejects']} {answers['reasons']}; "
              f"venue received {venue.orders}, max held at once {venue.max_held} (cap {CAP}); "
              f"OMS2 first-answer p50 before {p50_before:.2f} ms, during {p50_during:.2f} ms, "
              f"max during {max(during):.2f} ms; OMS2 orders rejected during the flood {len(quiet_rejects)}/40 "
              f"{sorted(set(r[:50] for r in quiet_rejects))}")
        assert venue.max_held <= CAP, f"venue held {venue.max_held} unanswered orders > cap {CAP}"
        assert answers["8"] == FLOOD, f"flood: {answers['8']}/{FLOOD} orders ended"
        assert answers["busy"] > 0, "the flood never met the in-flight cap"
        assert venue.orders + answers["busy"] + answers["other_rejects"] >= FLOOD
        assert p50_during <= max(5 * p50_before, p50_before + 50.0), (p50_before, p50_during)
    finally:
        stack.stop()
        venue.stop()
