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


_last_ms = -1             # TransactTime(60) of the last report, per whole millisecond of time.time()
_last_text = ""


def _now() -> str:
    """TransactTime, millisecond precision: formatted once per millisecond (an order's
    reports, ack and fill or cancel, are written within the same one)."""
    global _last_ms, _last_text
    ms = int(time.time() * 1000)
    if ms != _last_ms:
        _last_text = utc_timestamp(ms / 1000, 3)
        _last_ms = ms
    return _last_text


_NUM_CACHE: dict[float, str] = {}     # prices and quantities repeat: format each once


def _num(value: float | int) -> str:
    """``fix_number`` with a bounded cache (a venue formats the same few prices all day)."""
    text = _NUM_CACHE.get(value)
    if text is None:
        if len(_NUM_CACHE) >= 4096:
            _NUM_CACHE.clear()
        text = _NUM_CACHE[value] = num(value)
    return text


def execution_report(er: ExecReport, venue: str, status_req_id: str | None = None) -> str:
    """An ExecutionReport body; ``status_req_id`` is echoed as OrdStatusReqID(790) (an answer to 35=H)."""
    orig = f"41={er.orig_cl_ord_id}\x01" if er.orig_cl_ord_id else ""
    price = f"44={_num(er.price)}\x01" if er.price is not None else ""
    head = (f"37={er.order_id}\x0111={er.cl_ord_id}\x01{orig}17={er.exec_id}\x01150={er.exec_type}\x01"
            f"39={er.ord_status}\x0155={er.symbol}\x0154={er.side}\x0138={_num(er.order_qty)}\x01"
            f"40={er.ord_type}\x01{price}59={er.tif}\x0114={_num(er.cum_qty)}\x01"
            f"151={_num(er.leaves_qty)}\x016={_num(er.avg_px)}\x01")
    tail = f"60={_now()}\x01"
    if er.exec_type == TRADE:
        head += f"31={_num(er.last_px)}\x0132={_num(er.last_qty)}\x0130={venue}\x01"
    if er.ord_rej_reason is not None:
        head += f"103={er.ord_rej_reason}\x01"
    if er.text:
        head += f"58={_text(er.text)}\x01"
    if status_req_id is not None:
        head += f"790={status_req_id}\x01"
    return head + tail


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
