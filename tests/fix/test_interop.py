"""Our native engine against quickfix, both directions, through the one Engine interface:
order flow, a sequence gap, resends of application messages (both ways), a restart with
persisted sequence numbers, a logon refused by the application, and a TLS session.

quickfix runs its sockets in its own C++ thread; the Application still runs on the test's
loop (QuickfixEngine hands every callback over). Stop order: the native side first, so
quickfix's stop() (which polls once a second while logged on) returns at once."""
from __future__ import annotations

import asyncio

import pytest
from transport_helpers import NEW_ORDER, Recorder, make_cert, run, settings

fix = pytest.importorskip("quickfix", reason="the quickfix binding is not installed")

from gateway.fix.engine import create_engine  # noqa: E402
from gateway.fix.quickfix_backend import has_ssl  # noqa: E402
from gateway.fix.transport import TlsConfig  # noqa: E402


async def qf_acceptor_native_initiator(venue_app, client_app, *, store_dir=None, tls=None, client_tls=None):
    venue = create_engine("quickfix", "acceptor", [settings("VENUE", "GW", "acceptor")], venue_app,
                          host="0.0.0.0", port=0, store_dir=store_dir and store_dir / "qf", tls=tls)
    await venue.start()
    client = create_engine("native", "initiator", [settings("GW", "VENUE", "initiator")], client_app,
                           hosts=[("127.0.0.1", venue.port)], store_dir=store_dir and store_dir / "native",
                           tls=client_tls, backoff_initial_s=0.1, backoff_max_s=0.5)
    await client.start()
    return venue, client


async def native_acceptor_qf_initiator(venue_app, client_app):
    venue = create_engine("native", "acceptor", [settings("VENUE", "GW", "acceptor")], venue_app,
                          host="127.0.0.1", port=0)
    await venue.start()
    client = create_engine("quickfix", "initiator", [settings("GW", "VENUE", "initiator")], client_app,
                           hosts=[("127.0.0.1", venue.port)])
    await client.start()
    return venue, client


async def stop_all(*engines):
    for engine in engines:
        await engine.stop()


async def order(handle, app, oid: str, timeout: float = 5.0):
    before = len(app.messages)
    assert handle.send("D", NEW_ORDER.format(id=oid))
    await app.wait(lambda: len(app.messages) > before, timeout=timeout, what=f"report for {oid}")
    return app.messages[-1]


def test_native_initiator_with_quickfix_acceptor():
    async def main():
        venue_app, client_app = Recorder(echo=True), Recorder()
        venue, client = await qf_acceptor_native_initiator(venue_app, client_app)
        try:
            handle = await client.wait_logged_on()
            report = await order(handle, client_app, "Q1")
            assert report.msg_type == "8" and report[11] == "Q1"
            # an application exception on the quickfix side: 35=j, session and process alive
            venue_app.raise_on["D"] = RuntimeError("venue bug")
            reject = await order(handle, client_app, "Q2")
            assert reject.msg_type == "j" and reject[380] == "0" and "venue bug" in reject[58]
            assert venue.callback_errors == 1
            del venue_app.raise_on["D"]
            assert (await order(handle, client_app, "Q3"))[11] == "Q3"
        finally:
            await stop_all(client, venue)
    run(main(), timeout=20)


def test_quickfix_initiator_with_native_acceptor():
    async def main():
        venue_app, client_app = Recorder(echo=True), Recorder()
        venue, client = await native_acceptor_qf_initiator(venue_app, client_app)
        try:
            handle = await client.wait_logged_on(timeout=8)
            report = await order(handle, client_app, "N1")
            assert report.msg_type == "8" and report[11] == "N1"
            assert handle.next_sender_seq == 3 and venue.sessions["FIX.4.4:VENUE->GW"].next_target_seq == 3
        finally:
            await stop_all(venue, client)
    run(main(), timeout=20)


def test_sequence_gap_from_native_is_gap_filled_for_quickfix():
    async def main():
        venue_app, client_app = Recorder(echo=True), Recorder()
        venue, client = await qf_acceptor_native_initiator(venue_app, client_app)
        try:
            handle = await client.wait_logged_on()
            await order(handle, client_app, "G1")
            native = client.sessions[handle.key]
            native.session.set_next_sender_seq(handle.next_sender_seq + 5)   # 5 numbers never sent
            report = await order(handle, client_app, "G2")
            assert report[11] == "G2"
            assert venue.sessions["FIX.4.4:VENUE->GW"].next_target_seq == handle.next_sender_seq
        finally:
            await stop_all(client, venue)
    run(main(), timeout=20)


def test_resend_of_application_messages_both_ways():
    async def main():
        venue_app, client_app = Recorder(echo=True), Recorder()
        venue, client = await qf_acceptor_native_initiator(venue_app, client_app)
        try:
            handle = await client.wait_logged_on()
            for i in range(3):
                await order(handle, client_app, f"R{i}")
            qf_handle = venue.sessions["FIX.4.4:VENUE->GW"]
            # quickfix -> native: we "lost" quickfix's last two reports; the next one is too high
            native = client.sessions[handle.key]
            native.session.set_next_target_seq(handle.next_target_seq - 2)
            await order(handle, client_app, "R3")
            await client_app.wait(lambda: any(m.poss_dup for m in client_app.messages), what="PossDup resend")
            resent = [m[11] for m in client_app.messages if m.poss_dup]
            assert resent[:2] == ["R1", "R2"]
            # native -> quickfix: quickfix "lost" our last two orders; it asks, we resend them
            await asyncio.sleep(0.2)     # let the first resend settle
            before = len(venue_app.messages)
            qf_session = fix.Session.lookupSession(qf_handle.session_id)
            qf_session.setNextTargetMsgSeqNum(qf_handle.next_target_seq - 2)
            await order(handle, client_app, "R4")
            await venue_app.wait(lambda: any(m[11] == "R4" for m in venue_app.messages[before:]),
                                 what="R4 after the resend")
            dups = {m[11] for m in venue_app.messages[before:] if m.poss_dup}
            # the last two numbers quickfix forgot: R3's order and, after it, our ResendRequest
            # (resent as a GapFill) -- or R2 and R3 when no admin message came between
            assert dups and dups <= {"R2", "R3"}, dups
            assert handle.logged_on and qf_handle.logged_on
        finally:
            await stop_all(client, venue)
    run(main(), timeout=25)


def test_restart_with_persisted_sequence_numbers(tmp_path):
    async def main():
        venue_app, client_app = Recorder(echo=True), Recorder()
        venue, client = await qf_acceptor_native_initiator(venue_app, client_app, store_dir=tmp_path)
        handle = await client.wait_logged_on()
        await order(handle, client_app, "P1")
        await order(handle, client_app, "P2")
        sent_before = handle.next_sender_seq
        await stop_all(client, venue)

        venue_app, client_app = Recorder(echo=True), Recorder()
        venue, client = await qf_acceptor_native_initiator(venue_app, client_app, store_dir=tmp_path)
        try:
            handle = await client.wait_logged_on(timeout=8)
            # the Logon and Logout of the first run moved the numbers on; nothing was reset
            assert handle.next_sender_seq > sent_before
            report = await order(handle, client_app, "P3")
            assert report[11] == "P3"
            assert venue.sessions["FIX.4.4:VENUE->GW"].next_target_seq == handle.next_sender_seq
        finally:
            await stop_all(client, venue)
    run(main(), timeout=30)


class Refuser(Recorder):
    def check_logon(self, session, logon):
        return "no such user"


def test_logon_refused_by_the_application_on_quickfix():
    async def main():
        venue_app, client_app = Refuser(echo=True), Recorder()
        venue, client = await qf_acceptor_native_initiator(venue_app, client_app)
        try:
            await asyncio.sleep(1.0)
            assert not client_app.logons and not venue_app.logons
            assert client.sessions["FIX.4.4:GW->VENUE"].counters["connects"] >= 1
        finally:
            await stop_all(client, venue)
    run(main(), timeout=20)


def test_tls_native_initiator_with_quickfix_acceptor(tmp_path):
    if not has_ssl():
        pytest.skip("this quickfix build has no SSL support (built without HAVE_SSL); "
                    "TLS is covered native <-> native in test_transport.py")
    cert, key = make_cert(tmp_path)

    async def main():
        venue_app, client_app = Recorder(echo=True), Recorder()
        venue, client = await qf_acceptor_native_initiator(
            venue_app, client_app, tls=TlsConfig(cert_file=cert, key_file=key),
            client_tls=TlsConfig(ca_file=cert, server_hostname="localhost"))
        try:
            handle = await client.wait_logged_on(timeout=8)
            assert (await order(handle, client_app, "T1"))[11] == "T1"
        finally:
            await stop_all(client, venue)
    run(main(), timeout=20)
