"""hops.py's analysis: FIX messages rebuilt from recorded loopback segments, an order followed hop by hop."""
from __future__ import annotations

import pytest

from gateway.apps.demo import hops


def frame(sender, target, msg_type, body=""):
    return f"8=FIX.4.4\x019=1\x0135={msg_type}\x0149={sender}\x0156={target}\x01{body}10=000\x01".encode()


def write(path, segments):
    with open(path, "wb") as f:
        for ts, sport, dport, payload in segments:
            f.write(hops.REC.pack(ts, sport, dport, len(payload)))
            f.write(payload)


def test_an_entry_is_followed_from_market_data_to_its_fill(tmp_path):
    nos = frame("DEMO", "FIXGW", "D", "11=E1\x0155=EURUSD\x0154=1\x01")
    segments = [
        (1.0000, 9102, 5000, frame("BRAVO", "CLIENT", "X", "268=1\x01")),
        (1.0005, 6000, 9100, nos[:20]),                                  # the NOS in two segments
        (1.0006, 6000, 9100, nos[20:]),
        (1.0009, 7000, 9101, frame("FIXGW", "ALPHA", "D", "11=C1\x0155=EURUSD\x0154=1\x01")),
        (1.0012, 9101, 7000, frame("ALPHA", "FIXGW", "8", "11=C1\x01150=0\x0139=0\x01")),
        (1.0014, 9100, 6000, frame("FIXGW", "DEMO", "8", "11=E1\x01150=0\x0139=0\x01")),
        (1.0018, 9101, 7000, frame("ALPHA", "FIXGW", "8", "11=C1\x01150=F\x0139=2\x0132=100\x01")),
        (1.0020, 9100, 6000, frame("FIXGW", "DEMO", "8", "11=E1\x01150=F\x0139=2\x0132=100\x01")),
    ]
    path = tmp_path / "h.bin"
    write(path, segments)
    msgs = hops.read_messages(path)
    assert [m.msg_type for m in msgs] == ["X", "D", "D", "8", "8", "8", "8"]
    (row,) = hops.follow_entries(msgs)
    assert row["venue"] == "ALPHA" and row["outcome"] == "fill" and row["c_out"] == 1.0006
    s = hops.summarize([row])
    assert s["md->c_out"]["p50_us"] == pytest.approx(600.0)
    assert s["c_out->g_out"]["p50_us"] == pytest.approx(300.0)
    assert s["g_out->v_out"]["p50_us"] == pytest.approx(300.0)
    assert s["v_out->g_back"]["p50_us"] == pytest.approx(200.0)
    assert s["v_out->v_fill"]["p50_us"] == pytest.approx(600.0)
    assert s["v_fill->g_fill"]["p50_us"] == pytest.approx(200.0)
    assert "md->g_fill" in hops.render(s)
