"""The OMS ExecutionReport text (``OmsApplication.send_exec``): the one-build template of a working
venue order's reports and the general path write the same fields, in the same order."""
from __future__ import annotations

from types import SimpleNamespace

from gateway.apps.server.oms import OmsApplication
from gateway.core.model import BUY, IOC, LIMIT, OrderIntent
from gateway.core.orders import OmsOrder, ReportToOms

SOH = "\x01"


class _Handle:
    def __init__(self) -> None:
        self.sent: list[tuple[str, str, str]] = []

    def send(self, msg_type: str, body: str, extra_header: str = "") -> bool:
        self.sent.append((msg_type, body, extra_header))
        return True


def _app() -> tuple[OmsApplication, _Handle]:
    app = OmsApplication([], lambda ev: None, lambda *a: None, SimpleNamespace(by_callbacks=False))
    handle = _Handle()
    app.handles["OMS1"] = handle
    return app, handle


def _report(order: OmsOrder, **kw) -> ReportToOms:
    base = dict(order=order, exec_type="F", ord_status="2", cl_ord_id="c1", orig_cl_ord_id=None, cum_qty=100.0,
                leaves_qty=0.0, avg_px=190.01, last_qty=100.0, last_px=190.01, last_mkt="ALPHA",
                venue_order_id="V1")
    base.update(kw)
    return ReportToOms(**base)


def _tags(body: str) -> list[tuple[str, str]]:
    return [tuple(f.split("=", 1)) for f in body.split(SOH) if f]   # type: ignore[misc]


def test_reports_of_a_working_venue_order_carry_every_field_in_order():
    app, handle = _app()
    order = OmsOrder(OrderIntent("OMS1", "c1", "AAPL", BUY, 100.0, LIMIT, 190.01, IOC, None, 0.0), "O1")
    cases = [
        (_report(order), [("32", "100"), ("31", "190.01")]),                                    # a whole fill
        (_report(order, ord_status="1", cum_qty=60.0, leaves_qty=40.0, last_qty=60.0, last_px=190.0, avg_px=190.0),
         [("32", "60"), ("31", "190")]),                                                        # a partial
        (_report(order, ord_status="1", cum_qty=100.0, last_qty=40.0, last_px=190.02, avg_px=190.015),
         [("32", "40"), ("31", "190.02")]),                                                     # last != cum
        (_report(order, exec_type="0", ord_status="0", cum_qty=0.0, leaves_qty=100.0, avg_px=0.0, last_qty=0.0,
                 last_px=0.0), []),                                                             # an ack
    ]
    for ex, fill in cases:
        app.send_exec(ex, "E1")
        msg_type, body, extra = handle.sent[-1]
        tags = _tags(body)
        assert msg_type == "8" and extra == "" and body.endswith(SOH)
        assert tags[-1][0] == "60" and len(tags[-1][1]) == len("20260101-00:00:00.000000")
        leaves = "0" if ex.leaves_qty == 0 else "40" if ex.leaves_qty == 40 else "100"
        want = ([("37", "O1"), ("11", "c1"), ("17", "E1"), ("150", ex.exec_type), ("39", ex.ord_status),
                 ("55", "AAPL"), ("54", "1"), ("38", "100"), ("40", "2"), ("44", "190.01"), ("59", "3")]
                + fill + [("30", "ALPHA"), ("198", "V1"), ("151", leaves)])
        assert tags[:len(want)] == want, body
        assert [t for t, _ in tags[len(want):]] == ["14", "6", "60"]


def test_the_other_reports_keep_their_optional_fields():
    app, handle = _app()
    order = OmsOrder(OrderIntent("OMS1", "c2", "AAPL", BUY, 100.0, LIMIT, 190.01, IOC, None, 0.0), "O2")
    app.send_exec(_report(order, exec_type="5", ord_status="0", cl_ord_id="c3", orig_cl_ord_id="c2",
                          last_qty=0.0, cum_qty=0.0, avg_px=0.0, leaves_qty=100.0), "E2")
    tags = dict(_tags(handle.sent[-1][1]))
    assert tags["41"] == "c2" and tags["30"] == "ALPHA" and tags["198"] == "V1" and "32" not in tags
    app.send_exec(_report(order, exec_type="8", ord_status="8", last_mkt=None, venue_order_id=None, last_qty=0.0,
                          cum_qty=0.0, avg_px=0.0, text="no\x01route", ord_rej_reason=99, poss_resend=True), "E3")
    msg_type, body, extra = handle.sent[-1]
    tags = dict(_tags(body))
    assert tags["58"] == "no route" and tags["103"] == "99" and "30" not in tags and "198" not in tags
    assert extra == "97=Y\x01"
