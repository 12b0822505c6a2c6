"""The FIX side of risk events (thin quickfix edge; the engine itself never sees quickfix)."""
from __future__ import annotations

import quickfix as fix

from gateway.fix.quickfix_backend import new_message, utc_timestamp
from gateway.core.model import RiskReject

_TEXT_CHUNK = 900   # keep each News line short enough for OMS screens and logs


def risk_state_news(headline: str, text: str) -> fix.Message:
    """A News (35=B) message telling an OMS session about a kill-switch trip or reset."""
    msg = new_message("B")
    msg.setField(42, utc_timestamp())          # OrigTime
    msg.setField(61, "1")                      # Urgency: 1 = Flash
    msg.setField(148, headline)                # Headline
    chunks = [text[i:i + _TEXT_CHUNK] for i in range(0, len(text), _TEXT_CHUNK)] or [""]
    for chunk in chunks:
        line = fix.Group(33, 58)               # NoLinesOfText -> Text
        line.setField(58, chunk)
        msg.addGroup(line)
    return msg


def trip_news(reason: str) -> fix.Message:
    return risk_state_news("KILL SWITCH: trading halted", f"Kill switch tripped: {reason}. "
                           "New orders are rejected and open orders are being canceled.")


def reset_news(by: str) -> fix.Message:
    return risk_state_news("Trading resumed", f"Kill switch reset by {by}; new orders are accepted.")


def reject_fields(rej: RiskReject) -> tuple[tuple[int, str], ...]:
    """The fields a risk reject adds to an ExecutionReport 39=8: OrdRejReason and Text."""
    return ((103, str(rej.ord_rej_reason)), (58, rej.text))
