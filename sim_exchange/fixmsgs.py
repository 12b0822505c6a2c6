"""Engine events and market-data entries -> quickfix FIX 4.4 messages.

Repeating groups use quickfix44's generated group classes, so group fields come out in
the dictionary's order (279, 269, 55, 270, 271 for X), which the counterparty validates.
"""
from __future__ import annotations

import quickfix as fix
import quickfix44 as fix44

from gateway.fixedge import new_message, utc_timestamp
from sim_exchange.events import TRADE, CancelReject, ExecReport
from sim_exchange.marketdata import MDEntry


def fmt_num(value: float | int) -> str:
    """A FIX Price/Qty: no float noise, no trailing zeros ('1.1', '100')."""
    if isinstance(value, int):
        return str(value)
    text = f"{value:.10f}".rstrip("0").rstrip(".")
    return text if text not in ("", "-0") else "0"


def execution_report(er: ExecReport, venue: str) -> fix.Message:
    msg = new_message("8")
    msg.setField(37, er.order_id)
    msg.setField(11, er.cl_ord_id)
    if er.orig_cl_ord_id:
        msg.setField(41, er.orig_cl_ord_id)
    msg.setField(17, er.exec_id)
    msg.setField(150, er.exec_type)
    msg.setField(39, er.ord_status)
    msg.setField(55, er.symbol)
    msg.setField(54, er.side)
    msg.setField(38, fmt_num(er.order_qty))
    msg.setField(40, er.ord_type)
    if er.price is not None:
        msg.setField(44, fmt_num(er.price))
    msg.setField(59, er.tif)
    msg.setField(14, fmt_num(er.cum_qty))
    msg.setField(151, fmt_num(er.leaves_qty))
    msg.setField(6, fmt_num(er.avg_px))
    if er.exec_type == TRADE:
        msg.setField(31, fmt_num(er.last_px))
        msg.setField(32, fmt_num(er.last_qty))
        msg.setField(30, venue)
    if er.ord_rej_reason is not None:
        msg.setField(103, str(er.ord_rej_reason))
    if er.text:
        msg.setField(58, er.text[:200])
    msg.setField(60, utc_timestamp())
    return msg


def cancel_reject(cr: CancelReject) -> fix.Message:
    msg = new_message("9")
    msg.setField(37, cr.order_id)
    msg.setField(11, cr.cl_ord_id)
    msg.setField(41, cr.orig_cl_ord_id)
    msg.setField(39, cr.ord_status)
    msg.setField(434, cr.response_to)
    msg.setField(102, str(cr.reason))
    msg.setField(58, cr.text[:200])
    msg.setField(60, utc_timestamp())
    return msg


def snapshot(req_id: str, symbol: str, entries: list[MDEntry]) -> fix.Message:
    msg = new_message("W")
    msg.setField(262, req_id)
    msg.setField(55, symbol)
    group = fix44.MarketDataSnapshotFullRefresh.NoMDEntries()
    for e in entries:
        group.setField(269, e.entry_type)
        group.setField(270, fmt_num(e.price))
        group.setField(271, fmt_num(e.qty or 0))
        msg.addGroup(group)
    if not entries:
        msg.setField(268, "0")
    return msg


def incremental(req_id: str, entries: list[MDEntry]) -> fix.Message:
    msg = new_message("X")
    msg.setField(262, req_id)
    group = fix44.MarketDataIncrementalRefresh.NoMDEntries()
    for e in entries:
        group.clear()
        group.setField(279, e.action or "0")
        group.setField(269, e.entry_type)
        group.setField(55, e.symbol)
        group.setField(270, fmt_num(e.price))
        if e.qty is not None:
            group.setField(271, fmt_num(e.qty))
        msg.addGroup(group)
    return msg


def md_reject(req_id: str, text: str, reason: str = "0") -> fix.Message:
    """MarketDataRequestReject (Y); MDReqRejReason 281=0 unknown symbol."""
    msg = new_message("Y")
    msg.setField(262, req_id)
    msg.setField(281, reason)
    msg.setField(58, text[:200])
    return msg
