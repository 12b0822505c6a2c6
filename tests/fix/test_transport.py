"""Native acceptor and initiator over 127.0.0.1 sockets: logon, order flow, application
errors answered with BusinessMessageReject, routing refusals, failover and reconnect, TLS,
message logs. Every test runs on its own loop and is bounded to a few seconds."""
from __future__ import annotations

import asyncio

from transport_helpers import (NEW_ORDER, Recorder, free_port, frame, logon, make_cert,
                               read_until_closed, run, settings, utc_now)

from gateway.fix.engine import create_engine
from gateway.fix.transport import TlsConfig, first_frame


async def pair(venue_app, client_app, *, acceptor_kw=None, initiator_kw=None, venue_settings=None,
               client_settings=None):
    venue = create_engine("native", "acceptor", venue_settings or [settings("VENUE", "GW", "acceptor")],
                          venue_app, host="127.0.0.1", port=0, **(acceptor_kw or {}))
    await venue.start()
    client = create_engine("native", "initiator", client_settings or [settings("GW", "VENUE", "initiator")],
                           client_app, hosts=[("127.0.0.1", venue.port)], **(initiator_kw or {}))
    await client.start()
    return venue, client


def test_logon_order_and_execution_report():
    async def main():
        venue_app, client_app = Recorder(echo=True), Recorder()
        venue, client = await pair(venue_app, client_app)
        try:
            handle = await client.wait_logged_on()
            assert handle.send("D", NEW_ORDER.format(id="A1"))
            await client_app.wait(lambda: client_app.messages, what="execution report")
            report = client_app.messages[0]
            assert report.msg_type == "8" and report[11] == "A1"
            assert venue_app.logons == ["FIX.4.4:VENUE->GW"]
            assert handle.next_sender_seq == 3 and handle.next_target_seq == 3   # logon + order / report
            assert handle.status()["logged_on"] is True
        finally:
            await client.stop()
            await venue.stop()
        assert client_app.logouts and venue_app.logouts
    run(main())


def test_acceptor_binds_only_its_host():
    async def main():
        venue = create_engine("native", "acceptor", [settings("VENUE", "GW", "acceptor")], Recorder(),
                              host="127.0.0.1", port=0)
        await venue.start()
        try:
            assert venue._server.sockets[0].getsockname()[0] == "127.0.0.1"
        finally:
            await venue.stop()
    run(main())


def test_handler_exception_answers_business_reject_and_session_survives():
    async def main():
        venue_app, client_app = Recorder(echo=True), Recorder()
        venue_app.raise_on["D"] = ValueError("boom")
        venue, client = await pair(venue_app, client_app)
        try:
            handle = await client.wait_logged_on()
            handle.send("D", NEW_ORDER.format(id="B1"))
            await client_app.wait(lambda: client_app.messages, what="business reject")
            reject = client_app.messages[0]
            assert reject.msg_type == "j" and reject[380] == "0" and reject[372] == "D"
            assert "boom" in reject[58]
            assert venue.callback_errors == 1
            # Unsupported message type -> 380=3, not counted as an error
            handle.send("R", "131=Q1\x01146=1\x0155=EURUSD\x01")
            await client_app.wait(lambda: len(client_app.messages) >= 2, what="380=3")
            assert client_app.messages[1][380] == "3"
            assert venue.callback_errors == 1
            # still logged on and working
            del venue_app.raise_on["D"]
            handle.send("D", NEW_ORDER.format(id="B2"))
            await client_app.wait(lambda: len(client_app.messages) >= 3, what="report after errors")
            assert client_app.messages[2].msg_type == "8" and handle.logged_on
        finally:
            await client.stop()
            await venue.stop()
    run(main())


def test_unknown_comp_ids_refused_and_junk_closed():
    async def main():
        venue = create_engine("native", "acceptor", [settings("VENUE", "GW", "acceptor")], Recorder(),
                              host="127.0.0.1", port=0)
        await venue.start()
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", venue.port)
            writer.write(logon("STRANGER", "VENUE"))
            data, closed = await read_until_closed(reader, 3)
            assert closed and data == b""
            writer.close()
            reader, writer = await asyncio.open_connection("127.0.0.1", venue.port)
            writer.write(frame([(35, "D"), (49, "GW"), (56, "VENUE"), (34, 1), (52, utc_now())]))
            data, closed = await read_until_closed(reader, 3)
            assert closed and data == b""
            writer.close()
            assert venue.refused["unknown_comp_id"] == 1 and venue.refused["junk"] == 1
        finally:
            await venue.stop()
    run(main())


def test_duplicate_logon_dropped_silently():
    async def main():
        venue_app, client_app = Recorder(echo=True), Recorder()
        venue, client = await pair(venue_app, client_app)
        try:
            handle = await client.wait_logged_on()
            reader, writer = await asyncio.open_connection("127.0.0.1", venue.port)
            writer.write(logon("GW", "VENUE", seq=50))
            data, closed = await read_until_closed(reader, 3)
            writer.close()
            assert closed and data == b""            # no Logout, no Reject: nothing at all
            assert venue.refused["duplicate"] == 1
            handle.send("D", NEW_ORDER.format(id="C1"))
            await client_app.wait(lambda: client_app.messages, what="report on the first connection")
        finally:
            await client.stop()
            await venue.stop()
    run(main())


def test_initiator_fails_over_and_reconnects_after_restart():
    async def main():
        port = free_port()
        dead = free_port()
        client_app = Recorder()
        client = create_engine("native", "initiator", [settings("GW", "VENUE", "initiator")], client_app,
                               hosts=[("127.0.0.1", dead), ("127.0.0.1", port)],
                               backoff_initial_s=0.05, backoff_max_s=0.2)
        await client.start()
        venue = create_engine("native", "acceptor", [settings("VENUE", "GW", "acceptor")], Recorder(),
                              host="127.0.0.1", port=port)
        await venue.start()
        try:
            await client.wait_logged_on(timeout=5)
            await venue.stop()
            await client_app.wait(lambda: client_app.logouts, what="logout seen by the client")
            venue = create_engine("native", "acceptor", [settings("VENUE", "GW", "acceptor")], Recorder(),
                                  host="127.0.0.1", port=port)
            await venue.start()
            await client_app.wait(lambda: len(client_app.logons) == 2, what="second logon", timeout=5)
            assert client.sessions["FIX.4.4:GW->VENUE"].counters["connects"] >= 2
        finally:
            await client.stop()
            await venue.stop()
    run(main(), timeout=15)


def test_tls_session_both_roles(tmp_path):
    cert, key = make_cert(tmp_path)

    async def main():
        venue_app, client_app = Recorder(echo=True), Recorder()
        venue, client = await pair(
            venue_app, client_app,
            acceptor_kw={"tls": TlsConfig(cert_file=cert, key_file=key)},
            initiator_kw={"tls": TlsConfig(ca_file=cert, server_hostname="localhost")})
        try:
            handle = await client.wait_logged_on()
            handle.send("D", NEW_ORDER.format(id="T1"))
            await client_app.wait(lambda: client_app.messages, what="report over TLS")
            conn = client.sessions[handle.key].conn
            assert conn.transport.get_extra_info("ssl_object") is not None
        finally:
            await client.stop()
            await venue.stop()
    run(main())


def test_tls_client_with_untrusted_server_never_logs_on(tmp_path):
    cert, key = make_cert(tmp_path)

    async def main():
        venue_app, client_app = Recorder(), Recorder()
        venue, client = await pair(venue_app, client_app,
                                   acceptor_kw={"tls": TlsConfig(cert_file=cert, key_file=key)},
                                   initiator_kw={"tls": TlsConfig(server_hostname="localhost"),
                                                 "backoff_initial_s": 0.05})
        try:
            await asyncio.sleep(0.5)
            assert not client_app.logons and not venue_app.logons
        finally:
            await client.stop()
            await venue.stop()
    run(main())


def test_message_and_event_logs(tmp_path):
    async def main():
        venue_app, client_app = Recorder(echo=True), Recorder()
        venue, client = await pair(venue_app, client_app, initiator_kw={"log_dir": tmp_path})
        try:
            handle = await client.wait_logged_on()
            handle.send("D", NEW_ORDER.format(id="L1"))
            await client_app.wait(lambda: client_app.messages, what="report")
        finally:
            await client.stop()
            await venue.stop()
    run(main())
    messages = (tmp_path / "FIX.4.4_GW-_VENUE.messages.log").read_bytes()
    assert b"OUT 8=FIX.4.4\x01" in messages and b"\x0135=D\x01" in messages and b"\x0135=8\x01" in messages
    events = (tmp_path / "FIX.4.4_GW-_VENUE.events.log").read_text()
    assert "logged on" in events and "disconnected" in events


def test_first_frame_reads_only_the_header():
    logon_bytes = logon("A", "B")
    assert first_frame(logon_bytes, 4096) == len(logon_bytes)
    assert first_frame(logon_bytes[:20], 4096) is None
    assert "BodyLength" in first_frame(b"8=FIX.4.4\x019=2000000000\x01", 4096)
    assert "junk" in first_frame(b"GET / HTTP/1.1\r\n", 4096)
    assert first_frame(b"8=F", 4096) is None
