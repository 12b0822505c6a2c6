"""``NativeSession.warm_up``: a latency probe's code run once on a throwaway twin session
just before the probe (issue 12). It must leave the real session, its store, its counters
and the wire exactly as they were, and switch itself off on any failure."""
from __future__ import annotations

import os

from transport_helpers import Recorder, run
from test_transport import pair

from gateway.fix.events import NEED_DATA


WARM = {"warm_probes": True}       # off by default (it stalls the loop ~260 us per probe)


def quiet(handle) -> None:
    """As if the session had had no traffic for a second (warm_up skips a busy session)."""
    handle.session.last_received_at = handle.session.last_sent_at = handle.engine.clock.now() - 1.0


def _files(directory) -> dict[str, int]:
    return {name: os.path.getsize(os.path.join(directory, name)) for name in sorted(os.listdir(directory))}


def test_warm_up_leaves_the_real_session_store_counters_and_wire_alone(tmp_path):
    async def main():
        venue_app, client_app = Recorder(), Recorder()
        venue, client = await pair(venue_app, client_app, initiator_kw={"store_dir": tmp_path, **WARM})
        try:
            gw = await client.wait_logged_on()
            seqs = (gw.next_sender_seq, gw.next_target_seq)
            counters, files = dict(gw.counters), _files(tmp_path)
            quiet(gw)
            for _ in range(3):
                gw.warm_up()
            assert (gw.next_sender_seq, gw.next_target_seq) == seqs
            assert gw.counters == counters and _files(tmp_path) == files
            assert gw._twin.logged_on and gw._twin.data_to_send() == b""
            assert gw._twin.next_event() is NEED_DATA
            # the venue saw nothing; a real probe afterwards is answered as usual
            assert not any(m.msg_type == "1" for m in venue_app.admin)
            assert gw.send_test_request("PRB-X-1")
            await client_app.wait(lambda: any(m.get(112) == "PRB-X-1" for m in client_app.admin),
                                  what="the probe's Heartbeat")
            assert gw.next_sender_seq == seqs[0] + 1
        finally:
            await client.stop()
            await venue.stop()
    run(main())


def test_warm_up_works_for_an_acceptor_session_too():
    async def main():
        venue, client = await pair(Recorder(), Recorder(), acceptor_kw=WARM)
        try:
            await client.wait_logged_on()
            handle = await venue.wait_logged_on()
            seqs = (handle.next_sender_seq, handle.next_target_seq)
            quiet(handle)
            handle.warm_up()
            handle.warm_up()
            assert handle._twin.logged_on
            assert (handle.next_sender_seq, handle.next_target_seq) == seqs
        finally:
            await client.stop()
            await venue.stop()
    run(main())


def test_warm_probes_off_by_default_makes_warm_up_a_no_op():
    async def main():
        venue, client = await pair(Recorder(), Recorder())
        try:
            gw = await client.wait_logged_on()
            quiet(gw)
            gw.warm_up()
            assert gw._twin is False
        finally:
            await client.stop()
            await venue.stop()
    run(main())


def test_a_failing_twin_turns_warm_up_off_and_the_session_carries_on(caplog):
    class Broken:
        def send_test_request(self, test_req_id):
            raise RuntimeError("boom")

    async def main():
        venue_app, client_app = Recorder(), Recorder()
        venue, client = await pair(venue_app, client_app, initiator_kw=WARM)
        try:
            gw = await client.wait_logged_on()
            gw._twin = Broken()
            quiet(gw)
            gw.warm_up()
            assert gw._twin is False
            gw.warm_up()                       # off: nothing happens, nothing is logged again
            assert gw.send_test_request("PRB-X-2")
            await client_app.wait(lambda: any(m.get(112) == "PRB-X-2" for m in client_app.admin),
                                  what="the probe's Heartbeat")
        finally:
            await client.stop()
            await venue.stop()
    with caplog.at_level("WARNING", logger="gateway.fix.transport"):
        run(main())
    assert sum("probe warm-up failed" in r.getMessage() for r in caplog.records) == 1


def test_warm_up_is_skipped_while_the_session_has_traffic():
    async def main():
        venue, client = await pair(Recorder(), Recorder(), initiator_kw=WARM)
        try:
            gw = await client.wait_logged_on()
            now = gw.engine.clock.now
            quiet(gw)
            gw.warm_up()                                   # quiet for a second: the twin runs
            twin = gw._twin
            sent = twin.next_sender_seq
            gw.session.last_sent_at = now()                # something just went out
            gw.warm_up()
            assert twin.next_sender_seq == sent
            gw.session.last_sent_at = now() - 1.0
            gw.session.last_received_at = now()            # something just came in
            gw.warm_up()
            assert twin.next_sender_seq == sent
            gw.session.last_received_at = now() - 1.0
            gw.warm_up()
            assert twin.next_sender_seq == sent + 1
        finally:
            await client.stop()
            await venue.stop()
    run(main())
