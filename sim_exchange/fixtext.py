"""Engine events and market-data entries -> FIX 4.4 message bodies as wire text (native engine).

The native session engine sends a body given as text ('11=X\\x0155=Y\\x01'); it adds the
header, BodyLength and CheckSum. Text is ``str`` decoded as latin-1 (gateway/fix/README.md),
so any byte a counterparty put in a ClOrdID or Symbol goes back out unchanged; only
Text(58), which we write ourselves from engine messages, is cleaned of SOH. Field and group
order follows the dictionary (279, 269, 55, 270, 271 in X entries), as ``fixmsgs.py`` does
for quickfix.
"""
from __future__ import annotations

import time

from gateway.core.matching.events import TRADE, CancelReject, ExecReport
from gateway.core.matching.marketdata import MDEntry
from gateway.fix.codec import fix_number as num
from gateway.fix.codec import utc_timestamp

SOH = "\x01"


def _text(text: str) -> str:
    return text.replace(SOH, " ")[:200]


def _now() -> str:
    return utc_timestamp(time.time(), 3)


def execution_report(er: ExecReport, venue: str, status_req_id: str | None = None) -> str:
    """An ExecutionReport body; ``status_req_id`` is echoed as OrdStatusReqID(790) (an answer to 35=H)."""
    parts = [f"37={er.order_id}\x0111={er.cl_ord_id}\x01"]
    if er.orig_cl_ord_id:
        parts.append(f"41={er.orig_cl_ord_id}\x01")
    parts.append(f"17={er.exec_id}\x01150={er.exec_type}\x0139={er.ord_status}\x0155={er.symbol}\x01"
                 f"54={er.side}\x0138={num(er.order_qty)}\x0140={er.ord_type}\x01")
    if er.price is not None:
        parts.append(f"44={num(er.price)}\x01")
    parts.append(f"59={er.tif}\x0114={num(er.cum_qty)}\x01151={num(er.leaves_qty)}\x016={num(er.avg_px)}\x01")
    if er.exec_type == TRADE:
        parts.append(f"31={num(er.last_px)}\x0132={num(er.last_qty)}\x0130={venue}\x01")
    if er.ord_rej_reason is not None:
        parts.append(f"103={er.ord_rej_reason}\x01")
    if er.text:
        parts.append(f"58={_text(er.text)}\x01")
    if status_req_id is not None:
        parts.append(f"790={status_req_id}\x01")
    parts.append(f"60={_now()}\x01")
    return "".join(parts)


def cancel_reject(cr: CancelReject) -> str:
    return (f"37={cr.order_id}\x0111={cr.cl_ord_id}\x0141={cr.orig_cl_ord_id}\x0139={cr.ord_status}\x01"
            f"434={cr.response_to}\x01102={cr.reason}\x0158={_text(cr.text)}\x0160={_now()}\x01")


def snapshot(req_id: str, symbol: str, entries: list[MDEntry]) -> str:
    parts = [f"262={req_id}\x0155={symbol}\x01268={len(entries)}\x01"]
    for e in entries:
        parts.append(f"269={e.entry_type}\x01270={num(e.price)}\x01271={num(e.qty or 0)}\x01")
    return "".join(parts)


def incremental(req_id: str, entries: list[MDEntry]) -> str:
    parts = [f"262={req_id}\x01268={len(entries)}\x01"]
    for e in entries:
        parts.append(f"279={e.action or '0'}\x01269={e.entry_type}\x0155={e.symbol}\x01270={num(e.price)}\x01")
        if e.qty is not None:
            parts.append(f"271={num(e.qty)}\x01")
    return "".join(parts)


def md_reject(req_id: str, text: str, reason: str = "0") -> str:
    return f"262={req_id}\x01281={reason}\x0158={_text(text)}\x01"
