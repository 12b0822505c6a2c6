"""Engine events and market-data entries -> quickfix FIX 4.4 messages.

Repeating groups use quickfix44's generated group classes, so group fields come out in
the dictionary's order (279, 269, 55, 270, 271 for X), which the counterparty validates.
"""
from __future__ import annotations

import quickfix as fix
import quickfix44 as fix44

from gateway.fix.quickfix_backend import fix_number, message_from_body, new_message, utc_timestamp
from gateway.core.matching.events import TRADE, CancelReject, ExecReport
from gateway.core.matching.marketdata import MDEntry


fmt_num = fix_number     # FIX Price/Qty text, shared with the gateway


def flat_message(msg_type: str, fields: list[tuple[int, str]]) -> fix.Message:
    """A message without repeating groups, parsed from text: about 4x cheaper than one
    setField call per tag. quickfix fills in the session header, BodyLength and CheckSum
    when it sends; values must not contain SOH.
    """
    return message_from_body(msg_type, "".join(f"{tag}={value}\x01" for tag, value in fields))


def execution_report(er: ExecReport, venue: str, status_req_id: str | None = None) -> fix.Message:
    """An ExecutionReport; ``status_req_id`` is echoed as OrdStatusReqID(790) (an answer to 35=H)."""
    f = [(37, er.order_id), (11, er.cl_ord_id)]
    if er.orig_cl_ord_id:
        f.append((41, er.orig_cl_ord_id))
    f += [(17, er.exec_id), (150, er.exec_type), (39, er.ord_status), (55, er.symbol), (54, er.side),
          (38, fmt_num(er.order_qty)), (40, er.ord_type)]
    if er.price is not None:
        f.append((44, fmt_num(er.price)))
    f += [(59, er.tif), (14, fmt_num(er.cum_qty)), (151, fmt_num(er.leaves_qty)), (6, fmt_num(er.avg_px))]
    if er.exec_type == TRADE:
        f += [(31, fmt_num(er.last_px)), (32, fmt_num(er.last_qty)), (30, venue)]
    if er.ord_rej_reason is not None:
        f.append((103, str(er.ord_rej_reason)))
    if er.text:
        f.append((58, _text(er.text)))
    if status_req_id is not None:
        f.append((790, status_req_id))
    f.append((60, utc_timestamp()))
    return flat_message("8", f)


def cancel_reject(cr: CancelReject) -> fix.Message:
    return flat_message("9", [(37, cr.order_id), (11, cr.cl_ord_id), (41, cr.orig_cl_ord_id), (39, cr.ord_status),
                              (434, cr.response_to), (102, str(cr.reason)), (58, _text(cr.text)),
                              (60, utc_timestamp())])


def _text(text: str) -> str:
    return text.replace("\x01", " ")[:200]


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
