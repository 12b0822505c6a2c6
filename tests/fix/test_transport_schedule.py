"""The session schedule through the native transport (real sockets on 127.0.0.1, real clock):
outside the schedule an initiator does not connect and an acceptor refuses the Logon; at the
end of the schedule a logged-on session logs out."""
from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

from transport_helpers import Recorder, run, settings

from gateway.fix.engine import create_engine
from gateway.fix.schedule import SessionSchedule


def _window(start_in: float, end_in: float) -> SessionSchedule:
    now = datetime.now(timezone.utc)
    return SessionSchedule(start_time=(now + timedelta(seconds=start_in)).time(),
                           end_time=(now + timedelta(seconds=end_in)).time())


LATER = dict(start_in=7200, end_in=10800)    # a session two hours from now


async def _pair(venue_sched, client_sched, echo=False):
    venue_app, client_app = Recorder(echo=echo), Recorder()
    venue = create_engine("native", "acceptor", [settings("VENUE", "GW", "acceptor", schedule=venue_sched)],
                          venue_app, host="127.0.0.1", port=0)
    await venue.start()
    client = create_engine("native", "initiator", [settings("GW", "VENUE", "initiator", schedule=client_sched)],
                           client_app, hosts=[("127.0.0.1", venue.port)], backoff_initial_s=0.05)
    await client.start()
    return venue, client, venue_app, client_app


def test_initiator_outside_schedule_does_not_connect():
    async def main():
        venue, client, venue_app, client_app = await _pair(None, _window(**LATER))
        try:
            await asyncio.sleep(0.3)
            ns = client.sessions["FIX.4.4:GW->VENUE"]
            assert ns.counters["connects"] == 0 and not venue_app.logons
            assert ns.status()["in_schedule"] is False
        finally:
            await client.stop()
            await venue.stop()
    run(main())


def test_acceptor_refuses_logon_outside_schedule():
    async def main():
        venue, client, venue_app, client_app = await _pair(_window(**LATER), None)
        try:
            vs = venue.sessions["FIX.4.4:VENUE->GW"]
            await client_app.wait(lambda: vs.counters["disconnects"] >= 1, what="refused logon")
            assert vs.last_disconnect.startswith("logon refused: outside the session schedule")
            assert not client_app.logons and not venue_app.logons
        finally:
            await client.stop()
            await venue.stop()
    run(main())


def test_logged_on_session_logs_out_at_schedule_end():
    async def main():
        venue, client, venue_app, client_app = await _pair(None, _window(-3600, 1.0))
        try:
            await client.wait_logged_on()
            await client_app.wait(lambda: client_app.logouts, timeout=4, what="logout at the end")
            assert venue_app.logouts and venue_app.logouts[0][1] == "end of session"
        finally:
            await client.stop()
            await venue.stop()
    run(main())


def test_session_log_rotates_by_size_and_by_day(tmp_path):
    from gateway.fix.transport import SessionLog
    day = 1_800_000_000.0 - 1_800_000_000.0 % 86400 + 3600      # 01:00 UTC on some day
    now = [day]
    slog = SessionLog(tmp_path, "FIX.4.4:GW->VENUE", max_bytes=300, keep=2, wall=lambda: now[0])
    frame = b"8=FIX.4.4\x019=5\x0135=0\x0110=000\x01"
    slog.wire(b"IN ", frame)
    slog.event("logged on")
    assert slog.rotations == 0
    for _ in range(10):                      # past 300 bytes: rotated by size
        now[0] += 1
        slog.wire(b"OUT", frame)
    assert slog.rotations >= 1
    rotations = slog.rotations
    now[0] = day + 86400                     # a new UTC day: rotated once
    slog.wire(b"IN ", frame)
    assert slog.rotations == rotations + 1
    slog.flush()
    slog.close()
    current = tmp_path / "FIX.4.4_GW-_VENUE.messages.log"
    assert current.read_bytes().count(b"\n") == 1
    rotated = sorted(tmp_path.glob("FIX.4.4_GW-_VENUE.messages.2*.log"))
    assert 1 <= len(rotated) <= 2            # keep=2
    assert all(b"35=0" in p.read_bytes() for p in rotated)


def test_status_explains_times_counters_and_link_state():
    async def main():
        from transport_helpers import NEW_ORDER, free_port
        dead = create_engine("native", "initiator", [settings("GW", "NOBODY", "initiator")], Recorder(),
                             hosts=[("127.0.0.1", free_port())], backoff_initial_s=0.01, backoff_max_s=0.02)
        await dead.start()
        venue, client, venue_app, client_app = await _pair(None, None, echo=True)
        try:
            handle = await client.wait_logged_on()
            handle.send("D", NEW_ORDER.format(id="S1"))
            await client_app.wait(lambda: client_app.messages, what="report")
            st = handle.status()
            assert st["last_logon_at"].endswith("Z") and st["last_received_at"] and st["last_sent_at"]
            assert st["messages_in"] >= 2 and st["messages_out"] >= 2      # logon + report / logon + order
            assert st["bytes_in"] > 0 and st["bytes_out"] > 0
            assert st["link_state"].startswith("connected to 127.0.0.1:")
            assert st["connect_attempts"] == 1 and st["connect_failures"] == 0
            ds = dead.sessions["FIX.4.4:GW->NOBODY"]
            await client_app.wait(lambda: ds.counters["connect_failures"] >= 3, what="retries")
            # logged once per state change, not once per attempt
            assert ds.status()["link_state"].startswith("cannot connect (ConnectionRefusedError")
        finally:
            await client.stop()
            await venue.stop()
            await dead.stop()
    run(main())


def test_session_log_writes_one_line_per_frame_of_a_chunk(tmp_path):
    """A batch (several frames in one write) and a TCP chunk cut inside a frame: every frame
    starts its own line with the stamp and direction; the bytes themselves are unchanged."""
    from gateway.fix.transport import SessionLog
    wall = 1_800_000_000.25
    slog = SessionLog(tmp_path, "FIX.4.4:GW->VENUE", wall=lambda: wall)
    frames = [b"8=FIX.4.4\x019=5\x0135=0\x0110=%03d\x01" % i for i in range(3)]
    slog.wire(b"OUT", b"".join(frames))                   # one batch of three
    cut = len(frames[0]) + 7
    chunk = frames[0] + frames[1]
    slog.wire(b"IN ", chunk[:cut])                         # a frame and the start of the next
    slog.wire(b"IN ", chunk[cut:])                         # the rest of it
    slog.wire(b"IN ", frames[2])                           # a lone frame
    slog.close()
    lines = (tmp_path / "FIX.4.4_GW-_VENUE.messages.log").read_bytes().split(b"\n")
    assert lines[-1] == b""
    stamp = b"20270115-08:00:00.250000 "
    assert lines[:-1] == [stamp + b"OUT " + f for f in frames] + [
        stamp + b"IN  " + frames[0], stamp + b"IN  " + chunk[len(frames[0]):cut],
        stamp + b"IN  " + chunk[cut:], stamp + b"IN  " + frames[2]]


def test_walk_frames_finds_whole_frames_by_body_length():
    """The frames a chunk begins with, by BodyLength; where it stopped (len: all whole)."""
    from gateway.fix.codec import encode
    from gateway.fix.drive import walk_frames
    frames = [encode("FIX.4.4", "8", f"34={i}\x0149=A\x0156=B\x01", "58=x\x01" * i) for i in range(1, 6)]
    data = b"".join(frames)
    out: list[bytes] = []
    assert walk_frames(data, out) == len(data) and out == frames
    out = []
    assert walk_frames(frames[0], out) == len(frames[0]) and out[0] is frames[0]   # no copy
    cut = len(frames[0]) + len(frames[1]) + 9
    out = []
    assert walk_frames(data[:cut], out) == len(frames[0]) + len(frames[1]) and out == frames[:2]
    for junk in (b"", b"garbage\x01", data[3:], b"8=FIX.4.4\x019=999\x0135=0\x0110=000\x01"):
        out = []
        assert walk_frames(junk, out) == 0 and out == []


def test_session_log_lines_are_those_of_a_search_for_each_frame(tmp_path):
    """Every cut of a batch (whole frames, a frame cut, junk) logs the lines that breaking
    before each SOH + "8=FIX" gives (what the log did by bytes.replace before walking frames)."""
    from gateway.fix.codec import encode
    from gateway.fix.transport import SessionLog
    frames = [encode("FIX.4.4", "D", f"34={i}\x0149=A\x0156=B\x01", "11=x\x0155=EURUSD\x01" * (i % 4 + 1))
              for i in range(12)]
    data = b"garbage\x01" + b"".join(frames)
    wall = 1_800_000_000.5
    slog = SessionLog(tmp_path, "K", wall=lambda: wall)
    prefix = b"20270115-08:00:00.500000 IN  "
    expected = []
    cuts = range(0, len(data), 41)
    for a in cuts:
        piece = data[a:a + 300]
        assert slog.wire(b"IN ", piece) == wall                 # the stamp of its lines
        expected.append(b"%s%s\n" % (prefix, piece.replace(b"\x018=FIX", b"\x01\n" + prefix + b"8=FIX")))
    assert slog.wire(b"IN ", data[8:]) == wall
    expected.append(b"%s%s\n" % (prefix, data[8:].replace(b"\x018=FIX", b"\x01\n" + prefix + b"8=FIX")))
    slog.close()
    assert (tmp_path / "K.messages.log").read_bytes() == b"".join(expected)


def test_session_log_keeps_lines_until_a_buffer_is_full_or_flushed(tmp_path):
    """Lines are handed to the file in one write per LOG_BUFFER bytes, and by flush(), a
    rotation and close(); wire_walked returns the time its lines are stamped with."""
    from gateway.fix.drive import LOG_BUFFER, walk_frames
    from gateway.fix.transport import SessionLog
    wall = [1_800_000_000.125]
    slog = SessionLog(tmp_path, "K", wall=lambda: wall[0])
    path = tmp_path / "K.messages.log"
    frame = b"8=FIX.4.4\x019=5\x0135=0\x0110=000\x01"
    frames: list[bytes] = []
    end = walk_frames(frame, frames)
    assert slog.wire_walked(b"OUT", frame, frames, end) == wall[0]
    line = b"20270115-08:00:00.125000 OUT " + frame + b"\n"
    assert path.read_bytes() == b""                       # kept
    slog.flush()
    assert path.read_bytes() == line
    n = LOG_BUFFER // len(line) + 1                       # past the buffer: written without a flush
    for _ in range(n):
        slog.wire(b"OUT", frame)
    assert len(path.read_bytes()) == len(line) * (n + 1)
    slog.wire(b"IN ", frame)
    wall[0] += 86400                                      # a rotation writes the lines first
    slog.wire(b"IN ", frame)
    rotated = sorted(tmp_path.glob("K.messages.2*.log"))
    assert len(rotated) == 1 and rotated[0].read_bytes().endswith(b" IN  " + frame + b"\n")
    slog.wire(b"OUT", frame)
    slog.close()                                          # close writes what is kept
    assert path.read_bytes().count(b"\n") == 2
