"""What the matching engine says, as small event objects (h11 style).

The FIX adapter turns these into ExecutionReports, OrderCancelRejects and market-data
updates; tests read them directly. FIX enumerations are kept as their wire characters.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Final

# ExecType (150) / OrdStatus (39)  (Final: compiled code reads them as constants)
NEW: Final = "0"
PARTIAL: Final = "1"
FILLED: Final = "2"
CANCELED: Final = "4"
REPLACED: Final = "5"
REJECTED: Final = "8"
TRADE: Final = "F"
EXPIRED: Final = "C"

# OrdRejReason (103)
REJ_OTHER: Final = 99
REJ_UNKNOWN_SYMBOL: Final = 1
REJ_DUPLICATE: Final = 6
REJ_UNSUPPORTED: Final = 11          # unsupported order characteristic (side, OrdType, TimeInForce)
REJ_INCORRECT_QTY: Final = 13
REJ_INVALID_PRICE: Final = 99        # FIX 4.4 has no code for a bad price: Other, with Text

# CxlRejReason (102)
CXL_TOO_LATE: Final = 0
CXL_UNKNOWN_ORDER: Final = 1
CXL_OTHER: Final = 99
CXL_DUPLICATE_CLORDID: Final = 6

# CxlRejResponseTo (434)
RESPONSE_TO_CANCEL: Final = "1"
RESPONSE_TO_REPLACE: Final = "2"


@dataclass(slots=True, init=False)
class ExecReport:
    """One ExecutionReport for the order's owner. (``__init__`` written out: the one a
    dataclass generates stays interpreted code when this module is compiled, and two
    reports are made per order.)"""
    owner: str
    order_id: str
    cl_ord_id: str
    orig_cl_ord_id: str | None
    exec_id: str
    exec_type: str
    ord_status: str
    symbol: str
    side: str
    ord_type: str
    tif: str
    order_qty: float
    price: float | None       # the order's limit price
    cum_qty: float
    leaves_qty: float
    avg_px: float
    last_px: float = 0.0
    last_qty: float = 0.0
    ord_rej_reason: int | None = None
    text: str | None = None
    time: float = 0.0         # engine clock (monotonic seconds)

    def __init__(self, owner: str, order_id: str, cl_ord_id: str, orig_cl_ord_id: str | None, exec_id: str,
                 exec_type: str, ord_status: str, symbol: str, side: str, ord_type: str, tif: str,
                 order_qty: float, price: float | None, cum_qty: float, leaves_qty: float, avg_px: float,
                 last_px: float = 0.0, last_qty: float = 0.0, ord_rej_reason: int | None = None,
                 text: str | None = None, time: float = 0.0) -> None:
        self.owner = owner
        self.order_id = order_id
        self.cl_ord_id = cl_ord_id
        self.orig_cl_ord_id = orig_cl_ord_id
        self.exec_id = exec_id
        self.exec_type = exec_type
        self.ord_status = ord_status
        self.symbol = symbol
        self.side = side
        self.ord_type = ord_type
        self.tif = tif
        self.order_qty = order_qty
        self.price = price
        self.cum_qty = cum_qty
        self.leaves_qty = leaves_qty
        self.avg_px = avg_px
        self.last_px = last_px
        self.last_qty = last_qty
        self.ord_rej_reason = ord_rej_reason
        self.text = text
        self.time = time


@dataclass(slots=True)
class CancelReject:
    """An OrderCancelReject (35=9) for a cancel or cancel/replace that cannot be done."""
    owner: str
    cl_ord_id: str
    orig_cl_ord_id: str
    order_id: str             # 'NONE' when the order is unknown
    ord_status: str
    response_to: str          # RESPONSE_TO_CANCEL / RESPONSE_TO_REPLACE
    reason: int
    text: str
    time: float = 0.0


@dataclass(slots=True)
class TradePrint:
    """A trade on the tape (market data 269=2)."""
    symbol: str
    price: float
    qty: float
    aggressor_side: str
    time: float = 0.0


@dataclass(slots=True)
class BookTouched:
    """The book of ``symbol`` changed in this step (market data recomputes its levels)."""
    symbol: str
