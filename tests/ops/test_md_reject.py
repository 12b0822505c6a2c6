"""A venue's BusinessMessageReject of our MarketDataRequest shows in status (market snapshot
md_rejects, with the venue's reason) and counts in metrics, as a 35=Y does."""
from __future__ import annotations

from gateway.apps.metrics import GatewayMetrics
from gateway.apps.server.config import VenueConfig
from gateway.apps.server.venues import VenueApplication
from gateway.core.market import MarketState
from gateway.core.router.config import RoutingConfig
from gateway.fix.codec import Message


class Tracker:
    def __getattr__(self, name):
        return lambda *a, **k: None


class Handle:
    key = "FIX.4.4:FIXGW->ALPHA"
    sender_comp_id, target_comp_id = "FIXGW", "ALPHA"


def test_business_reject_of_market_data_request_is_explained_and_counted():
    market = MarketState(RoutingConfig.model_validate({"md_symbols": ["AAPL"]}))
    market.register_venue("ALPHA")
    market.venues["ALPHA"].md_req["M7"] = "AAPL"
    notes, metrics = [], GatewayMetrics()
    app = VenueApplication([VenueConfig(name="ALPHA", port=9101)], market, lambda e: None,
                           lambda *a: notes.append(a), Tracker())
    app.on_md_reject = metrics.on_md_reject
    app.attach({Handle.key: Handle()})
    app.on_message(Handle(), Message.build("j", "45=3\x01372=V\x01379=M7\x01380=4\x01"
                                                "58=market data not entitled\x01"))
    app.on_message(Handle(), Message.build("j", "45=4\x01372=V\x01380=3\x01"))      # no ref id, no text
    rejects = market.snapshot()["ALPHA"]["md_rejects"]
    assert rejects["AAPL"] == "BusinessMessageReject: market data not entitled"
    assert rejects["request seq 4"] == "BusinessMessageReject: BusinessRejectReason 3"
    assert any("market data for AAPL rejected" in n[2] for n in notes)
    assert b'fixgw_md_requests_rejected_total{venue="ALPHA"} 2.0' in metrics.exposition()
