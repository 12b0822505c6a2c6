"""What a restart must keep besides the orders: positions, open exposure, used ClOrdIDs and a
tripped kill switch (rebuilt from the order journal, no sockets)."""
from __future__ import annotations

from gateway.apps.server.config import GatewayConfig
from gateway.common.configfile import validate_config
from gateway.core.journal import Journal
from gateway.core.model import BUY, DAY, IOC, LIMIT, ChildOrder, OrderIntent
from gateway.core.orders import VenueExec
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
    j.accepted(filled, "O1", [ChildOrder("ALPHA", 100, 190.0, LIMIT, IOC)], ["G1"], "dma", "", 0.0)
    j.venue_exec(VenueExec("ALPHA", "G1", None, "X1", "F", "2", 100, 0, 190.0, 100, 190.0, "V1"), 0.0)
    resting = OrderIntent(S, "c2", "AAPL", BUY, 15, LIMIT, 189.0, DAY)
    j.accepted(resting, "O2", [ChildOrder("ALPHA", 15, 189.0, LIMIT, DAY)], ["G2"], "dma", "", 0.0)
    j.venue_exec(VenueExec("ALPHA", "G2", None, "X2", "0", "0", 0, 15, 0, 0, 0, "V2"), 0.0)
    j.risk_state("HALTED", "rolling loss: test", "auto")
    j.close()

    gw = Gateway(cfg)
    snap = gw.risk.snapshot()
    assert snap["positions"]["AAPL"]["qty"] == 100 and snap["open_orders"] == 1
    assert snap["state"] == "HALTED" and "still halted after a restart" in snap["trip_reason"]
    gw.risk.reset(by="tester")
    dup = gw.risk.check(OrderIntent(S, "c1", "AAPL", BUY, 1, LIMIT, 190.0, IOC))
    assert dup is not None and dup.check == "duplicate_cl_ord_id"
    # 100 held + 15 open + 10 new > 120: the limit still sees what happened before the crash
    over = gw.risk.check(OrderIntent(S, "c3", "AAPL", BUY, 10, LIMIT, 190.0, IOC))
    assert over is not None and over.check == "max_position"
    gw.journal.close()


def test_a_reset_before_the_crash_is_kept(tmp_path):
    cfg = config(tmp_path)
    j = Journal(cfg.journal_path)
    j.risk_state("HALTED", "manual: test", "alice")
    j.risk_state("ACTIVE", "reset", "alice")
    j.close()
    gw = Gateway(cfg)
    assert gw.risk.state == "ACTIVE"
    gw.journal.close()
