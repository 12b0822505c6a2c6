"""What a restart must keep besides the orders: positions, open exposure, used ClOrdIDs and a
tripped kill switch (rebuilt from the order journal, no sockets)."""
from __future__ import annotations

from gateway.apps.server.config import GatewayConfig
from gateway.common.configfile import validate_config
from gateway.core import journal as J
from gateway.core.hub import OmsNewOrder
from gateway.core.journal import Journal
from gateway.core.model import BUY, DAY, IOC, LIMIT, ChildOrder, OrderIntent
from gateway.core.orders import VenueExecutionReport
from gateway.apps.server.app import Gateway

S = "FIX.4.4:FIXGW->OMS1"


def config(tmp_path, **risk) -> GatewayConfig:
    return validate_config({"store_dir": str(tmp_path), "oms": {"port": 1, "clients": [{"comp_id": "OMS1"}]},
                            "venues": [{"name": "ALPHA", "port": 2}], "admin": {"port": 0},
                            "routing": {"policy": "dma", "default_venue": "ALPHA"}, "risk": risk}, GatewayConfig)


def test_positions_exposure_ids_and_halt_survive_a_restart(tmp_path):
    cfg = config(tmp_path, max_position=120)
    j = Journal(cfg.journal_path)
    filled = OrderIntent(S, "c1", "AAPL", BUY, 100, LIMIT, 190.0, IOC)
    j.write(J.Accepted(intent=filled, order_id="O1", children=[ChildOrder("ALPHA", 100, 190.0, LIMIT, IOC)],
                       venue_ids=["G1"], policy="dma"))
    j.write(J.VenueReport(report=VenueExecutionReport(
        venue="ALPHA", cl_ord_id="G1", exec_id="X1", exec_type="F", ord_status="2", cum_qty=100, leaves_qty=0,
        avg_px=190.0, last_qty=100, last_px=190.0, venue_order_id="V1")))
    resting = OrderIntent(S, "c2", "AAPL", BUY, 15, LIMIT, 189.0, DAY)
    j.write(J.Accepted(intent=resting, order_id="O2", children=[ChildOrder("ALPHA", 15, 189.0, LIMIT, DAY)],
                       venue_ids=["G2"], policy="dma"))
    j.write(J.VenueReport(report=VenueExecutionReport(
        venue="ALPHA", cl_ord_id="G2", exec_id="X2", exec_type="0", ord_status="0", leaves_qty=15,
        venue_order_id="V2")))
    j.write(J.RiskState(state="HALTED", reason="rolling loss: test", by="auto"))
    j.close()

    gw = Gateway(cfg)
    snap = gw.risk.snapshot()
    assert snap["positions"]["AAPL"]["qty"] == 100 and snap["open_orders"] == 1
    assert snap["state"] == "HALTED" and "still halted after a restart" in snap["trip_reason"]
    gw.risk.reset(by="tester")
    # the used ClOrdID: refused by the order index, before risk is asked (risk keeps no second set)
    (dup,) = gw.core.handle(OmsNewOrder(intent=OrderIntent(S, "c1", "AAPL", BUY, 1, LIMIT, 190.0, IOC)))
    assert dup.ord_status == "8" and "duplicate ClOrdID" in dup.text
    # 100 held + 15 open + 10 new > 120: the limit still sees what happened before the crash
    over = gw.risk.check(OrderIntent(S, "c3", "AAPL", BUY, 10, LIMIT, 190.0, IOC))
    assert over is not None and over.check == "max_position"
    gw.journal.close()


def test_a_reset_before_the_crash_is_kept(tmp_path):
    cfg = config(tmp_path)
    j = Journal(cfg.journal_path)
    j.write(J.RiskState(state="HALTED", reason="manual: test", by="alice"))
    j.write(J.RiskState(state="ACTIVE", reason="reset", by="alice"))
    j.close()
    gw = Gateway(cfg)
    assert gw.risk.state == "ACTIVE"
    gw.journal.close()
