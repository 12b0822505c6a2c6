"""The kill switch's News (35=B) to OMS sessions validates against the FIX 4.4 dictionary,
ours and quickfix's, with a long reason split into LinesOfText."""
from __future__ import annotations

import time

from gateway.apps.server.oms import news_body
from gateway.common.paths import FIX44_XML
from gateway.fix.codec import encode, parse, utc_timestamp
from gateway.fix.dictionary import Dictionary


def _wire(body: str) -> bytes:
    header = f"49=FIXGW\x0156=OMS1\x0134=7\x0152={utc_timestamp(time.time())}\x01"
    return encode("FIX.4.4", "B", header, body)


def test_news_validates_in_both_dictionaries_and_splits_long_text():
    reason = "rolling loss: PnL fell 510.00 within 1s > loss_threshold 500 " + "x" * 1000
    wire = _wire(news_body("KILL SWITCH: trading halted", f"Kill switch tripped: {reason}"))
    msg = parse(wire)
    Dictionary.load(FIX44_XML).validate(msg)            # raises on a missing or misplaced field
    assert msg.get(148) == "KILL SWITCH: trading halted" and msg.get(33) == "2"
    assert "loss_threshold 500" in "".join(v for t, v in msg.pairs if t == 58)
    import quickfix as fix
    dd = fix.DataDictionary(str(FIX44_XML))
    dd.validate(fix.Message(wire.decode("latin-1"), dd, True))
