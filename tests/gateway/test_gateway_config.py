"""The gateway's config maps onto one SessionSettings per OMS client and per venue."""
from __future__ import annotations

import pytest
from pydantic import ValidationError

from gateway.apps.server.config import GatewayConfig, session_settings


def cfg(**venue):
    return GatewayConfig.model_validate({
        "oms": {"clients": [{"comp_id": "OMS1", "reset_on_logon": True, "check_latency": False},
                            {"comp_id": "OMS2", "password_env": "GW_TEST_OMS2"}]},
        "venues": [{"name": "ALPHA", "port": 9101, **venue}]})


def test_engine_defaults_to_native_and_settings_map_per_session(monkeypatch, tmp_path):
    monkeypatch.setenv("ALPHA_PASSWORD", "s3cret")
    monkeypatch.setenv("GW_TEST_OMS2", "pw2")
    c = cfg(username="gw", password_env="ALPHA_PASSWORD", heartbeat_s=5, validate_user_defined_fields=False,
            max_latency_s=30, failover=["127.0.0.2:9201"], reset_on_logon=True, reset_on_disconnect=False)
    assert c.engine == "native"
    oms, venues = session_settings(c)
    o1, o2 = oms
    assert (o1.role, o1.sender_comp_id, o1.target_comp_id) == ("acceptor", "FIXGW", "OMS1")
    assert o1.reset_on_logon and o1.reset_on_logout and o1.reset_on_disconnect and not o1.check_latency
    assert not o2.reset_on_logon and o2.validate_user_defined_fields and o2.check_latency and o2.validate
    assert not session_settings(cfg(validate_incoming=False))[1][0].validate
    v = venues[0]
    assert (v.role, v.target_comp_id, v.heartbeat_s, v.max_latency_s) == ("initiator", "ALPHA", 5, 30)
    assert v.logon_fields == ((553, "gw"), (554, "s3cret")) and not v.validate_user_defined_fields
    assert v.reset_on_logon and v.reset_on_logout and not v.reset_on_disconnect
    assert c.venues[0].addresses == [("127.0.0.1", 9101), ("127.0.0.2", 9201)]
    assert c.oms.clients[1].expected_password() == "pw2"
    pw = tmp_path / "pw"
    pw.write_text("from-file\n")
    assert session_settings(cfg(password_file=str(pw)))[1][0].logon_fields == ((554, "from-file"),)


def test_missing_secret_and_bad_values_name_the_field(monkeypatch):
    monkeypatch.delenv("NOPE_PASSWORD", raising=False)
    with pytest.raises(ValueError, match="NOPE_PASSWORD"):
        session_settings(cfg(password_env="NOPE_PASSWORD"))
    with pytest.raises(ValidationError, match="failover"):
        cfg(failover=["nohost"])
    with pytest.raises(ValidationError, match="engine"):
        GatewayConfig.model_validate({"engine": "fast", "oms": {"clients": [{"comp_id": "A"}]},
                                      "venues": [{"name": "V", "port": 1}]})


def test_busy_poll_is_native_only_and_bounded():
    base = {"oms": {"clients": [{"comp_id": "OMS1"}]}, "venues": [{"name": "ALPHA", "port": 9101}]}
    assert GatewayConfig.model_validate({**base, "busy_poll_us": 500}).busy_poll_us == 500
    with pytest.raises(ValidationError, match="busy_poll_us: only the native engine"):
        GatewayConfig.model_validate({**base, "engine": "quickfix", "busy_poll_us": 500})
    with pytest.raises(ValidationError, match="busy_poll_us"):
        GatewayConfig.model_validate({**base, "busy_poll_us": -1})
