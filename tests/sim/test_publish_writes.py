"""How a native venue's messages reach the socket: a step's reports in one write, ahead of
its market data (publish.py's invariants). No sockets: the acceptor gets a fake transport
that records each write, and the client's wire bytes are fed to it directly."""
from __future__ import annotations

import asyncio
import time

import pytest

from gateway.fix.codec import encode, utc_timestamp
from gateway.fix.transport import FixProtocol, new_event_loop
from sim_exchange.delayline import PreciseTimer
from sim_exchange.native import NativeVenue
from sim_helpers import make_config, quiet_venue

NOW = "20260101-00:00:00.000"


class RecordingTransport:
    """Just enough of an asyncio transport for ``FixProtocol``: every write kept apart."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []

    def get_extra_info(self, name: str, default=None):
        return ("127.0.0.1", 1) if name == "peername" else default

    def set_write_buffer_limits(self, high=None, low=None) -> None:
        pass

    def get_write_buffer_size(self) -> int:
        return 0

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    def close(self) -> None:
        pass

    abort = close


def msg_types(data: bytes) -> list[str]:
    """The MsgType of each frame in one write, in order."""
    return [part.split(b"\x01", 1)[0].decode() for part in data.split(b"\x0135=")[1:]]


class Wire:
    def __init__(self, sender: str, target: str) -> None:
        self.sender, self.target, self.seq = sender, target, 1

    def __call__(self, msg_type: str, body: str) -> bytes:
        header = f"49={self.sender}\x0156={self.target}\x0134={self.seq}\x0152={utc_timestamp(time.time())}\x01"
        self.seq += 1
        return encode("FIX.4.4", msg_type, header, body)


@pytest.fixture
def venue_conn(tmp_path, ports):
    """A native venue on a loop of this thread, one logged-on CLIENT subscribed to T1's book."""
    config = make_config(tmp_path, [quiet_venue("ALPHA", ports[0])], engine="native")
    loop = new_event_loop()
    asyncio.set_event_loop(loop)
    venue = NativeVenue(config.venues[0], config)
    timer = PreciseTimer(loop)
    loop.run_until_complete(venue.start(timer))
    fake = RecordingTransport()
    conn = FixProtocol(venue.fix, None)
    conn.connection_made(fake)
    wire = Wire("CLIENT", "ALPHA")
    conn.data_received(wire("A", "98=0\x01108=30\x01141=Y\x01"))
    conn.data_received(wire("V", "262=md1\x01263=1\x01264=5\x01267=2\x01269=0\x01269=1\x01146=1\x0155=T1\x01"))
    loop.run_until_complete(asyncio.sleep(0))
    assert [t for w in fake.writes for t in msg_types(w)] == ["A", "W"]
    fake.writes.clear()
    try:
        yield venue, conn, fake, wire
    finally:
        loop.run_until_complete(venue.stop())
        timer.close()
        loop.close()
        asyncio.set_event_loop(None)


def test_an_orders_reports_leave_in_one_write_before_the_market_data(venue_conn):
    venue, conn, fake, wire = venue_conn
    # IOC buy 150 at 100.00 against 100 offered there: ack, fill, cancel of the rest, one X.
    conn.data_received(wire("D", f"11=O1\x0155=T1\x0154=1\x0138=150\x0140=2\x0144=100.00\x0159=3\x0160={NOW}\x01"))
    assert [msg_types(w) for w in fake.writes] == [["8", "8", "8"], ["X"]]
    assert [b"\x01150=" + t + b"\x01" in f for t, f in zip((b"0", b"F", b"4"), fake.writes[0].split(b"\x0110="))]


def test_a_miss_is_ack_and_cancel_in_one_write(venue_conn):
    venue, conn, fake, wire = venue_conn
    conn.data_received(wire("D", f"11=O2\x0155=T1\x0154=1\x0138=10\x0140=2\x0144=99.00\x0159=3\x0160={NOW}\x01"))
    assert [msg_types(w) for w in fake.writes] == [["8", "8"]]          # nothing in the book changed


def test_a_step_outside_a_pump_is_batched_too(venue_conn):
    """The market driver's path (no FIX input being dispatched): a resting client order
    hit by someone else's order gets its fill in one write, then the X."""
    venue, conn, fake, wire = venue_conn
    conn.data_received(wire("D", f"11=R1\x0155=T1\x0154=1\x0138=10\x0140=2\x0144=100.01\x0159=0\x0160={NOW}\x01"))
    fake.writes.clear()                     # the resting order was taken at once (ask 100.00): fills
    conn.data_received(wire("D", f"11=R2\x0155=T1\x0154=2\x0138=10\x0140=2\x0144=101.00\x0159=0\x0160={NOW}\x01"))
    assert [msg_types(w) for w in fake.writes] == [["8"], ["X"]]       # a resting ask: ack, then its level
    fake.writes.clear()
    # background flow sweeps the three asks of 100 (100.00-100.02), then takes the client's
    events = venue.apply(lambda: venue.engine.new_order("flow:ALPHA", "sweep-1", "T1", "1", 310.0, "2", 101.0, "3"))
    assert any(getattr(e, "owner", "") == "CLIENT" for e in events)
    assert [msg_types(w) for w in fake.writes] == [["8"], ["X"]]
    assert b"\x01150=F\x01" in fake.writes[0]
