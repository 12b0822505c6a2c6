"""A venue that demands TLS and Username/Password gets a logon from the gateway process.

The venue is a native acceptor in this test process (on its own loop thread) with a
throwaway certificate; the gateway dials it with the venue block a real venue needs:
`tls.ca` + `server_name`, `username`, and the password from an environment variable."""
from __future__ import annotations

import asyncio
import sys
import threading

from gateway.common.paths import REPO_ROOT
from gateway.common.procs import free_port
from gateway.fix.engine import BaseApplication, create_engine
from gateway.fix.settings import SessionSettings
from gateway.fix.transport import TlsConfig, new_event_loop

sys.path.insert(0, str(REPO_ROOT / "tests" / "fix"))
from transport_helpers import make_cert  # noqa: E402

PASSWORD = "s3cret\x80pw"       # any byte a FIX field may carry


class DemandingVenue(BaseApplication):
    def __init__(self) -> None:
        self.logons: list[tuple[str | None, str | None, bool]] = []

    def check_logon(self, session, logon):
        tls = session.conn is not None and session.conn.transport.get_extra_info("ssl_object") is not None
        self.logons.append((logon.get(553), logon.get(554), tls))
        if (logon.get(553), logon.get(554)) != ("firm1", PASSWORD):
            return "bad Username/Password"
        return None


def test_gateway_logs_on_to_a_venue_that_demands_tls_and_a_password(stack, tmp_path, monkeypatch):
    cert, key = make_cert(tmp_path)
    port = free_port()
    app = DemandingVenue()
    loop = new_event_loop()
    venue = create_engine("native", "acceptor",
                          [SessionSettings(sender_comp_id="SECURE", target_comp_id="FIXGW", role="acceptor")],
                          app, host="127.0.0.1", port=port, tls=TlsConfig(cert_file=cert, key_file=key), loop=loop)
    loop.run_until_complete(venue.start())
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        monkeypatch.setenv("SECURE_PW", PASSWORD)        # the gateway process inherits it
        stack.venue_ports["SECURE"] = port
        stack.start_gateway(wait_venues=False, venue_options={
            "username": "firm1", "password_env": "SECURE_PW", "probes": False, "market_data": False,
            "tls": {"ca": cert, "server_name": "localhost"}})
        stack.wait_status(lambda st: all(v["logged_on"] for v in st["venues"]), "the TLS venue logged on")
        assert ("firm1", PASSWORD, True) in app.logons
    finally:
        asyncio.run_coroutine_threadsafe(venue.stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
