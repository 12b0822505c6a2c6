"""Group commit of the order journal with the native engine's send batch (gateway/fix/drive.py
``SendBatch``, gateway/core/journal.py): the records made while a received chunk is dispatched
are written in one ``os.write`` before anything they explain is stored in a FIX store or
written to a socket; order flow is not held behind market data of the same chunk.

A relay like the gateway's, over 127.0.0.1, on one loop: an OMS client -> our acceptor ("oms"
side), whose application journals a record per order and sends the order on our initiator
("venue" side) -> a venue. Chunks are handed to our sessions whole (``receive``) so what one
chunk holds is exact; the venue side's store and socket are watched: every save and every
write checks that the journal file already holds the line of each order it carries."""
from __future__ import annotations

import re
import time

import pytest
from transport_helpers import EXEC_REPORT, NEW_ORDER, Recorder, run, settings

from gateway.core import journal as J
from gateway.fix.engine import BaseApplication, create_engine
from gateway.fix.store import MemoryStore

MD_X = "262=R1\x01268=1\x01279=0\x01269=0\x0155=EURUSD\x01270=1.1\x01271=100\x01"
_ID = re.compile(rb"\x0111=([^\x01]+)\x01")


class Watched(MemoryStore):
    """A MemoryStore whose ``save`` records the journal's content at that moment, and checks
    it holds the line of the order the saved message carries (a store_wrapper's store must be
    a ``Store``: the compiled Session calls it natively)."""

    def __init__(self, state) -> None:
        super().__init__()
        self._state = state

    def save(self, seq, wire) -> None:
        self._state.check("store", wire)
        super().save(seq, wire)


class Transport:
    """A socket transport proxy: each write is checked against the journal file first."""

    def __init__(self, inner, state, side) -> None:
        self._inner, self._state, self._side = inner, state, side
        self.writes: list[bytes] = []

    def write(self, data) -> None:
        self._state.check(self._side, data)
        self.writes.append(data)
        self._inner.write(data)

    def __getattr__(self, name):
        return getattr(self._inner, name)


class State:
    def __init__(self, path) -> None:
        self.path = path
        self.checked: list[tuple[str, bytes]] = []
        self.timeline: list[str] = []

    def check(self, where: str, data: bytes) -> None:
        text = self.path.read_bytes() if self.path.exists() else b""
        for cid in _ID.findall(data):
            if cid.startswith(b"V-") or cid.startswith(b"O-"):       # our relay's ids
                assert b'"' + cid[2:] + b'"' in text, f"{where}: {cid!r} stored/sent before its journal line"
                self.checked.append((where, cid))
        self.timeline.append(f"{where}:{','.join(c.decode() for c in _ID.findall(data))}")


class OmsSide(BaseApplication):
    """Our acceptor's application: journal, then send the order on to the venue."""

    def __init__(self, journal, state) -> None:
        self.journal, self.state = journal, state
        self.venue = None
        self.fail: set[str] = set()

    def on_message(self, session, msg) -> None:
        cid = msg[11]
        self.journal.write(J.CancelRejected(venue_cl_ord_id=cid, text="order", at=0.0))
        if cid in self.fail:
            raise RuntimeError(f"handler failed on {cid}")
        assert self.venue.send("D", NEW_ORDER.format(id="V-" + cid))


class VenueSide(BaseApplication):
    """Our initiator's application: a fill is journaled and relayed to the OMS; market data is
    only noted (the timeline says whether the OMS's report had left by then)."""

    def __init__(self, journal, state) -> None:
        self.journal, self.state = journal, state
        self.oms = None

    def on_message(self, session, msg) -> None:
        if msg.msg_type == "X":
            self.state.timeline.append("market data handled")
            return
        cid = msg[11][2:]
        self.journal.write(J.CancelRejected(venue_cl_ord_id=cid, text="fill", at=0.0))
        assert self.oms.send("8", EXEC_REPORT.format(id="O-" + cid))


async def relay(tmp_path):
    state = State(tmp_path / "orders.journal")
    journal = J.Journal(state.path)
    oms_app, venue_app = OmsSide(journal, state), VenueSide(journal, state)
    far_venue, client_app = Recorder(), Recorder()
    wrap = lambda _s, _store: Watched(state)            # noqa: E731
    venue = create_engine("native", "acceptor", [settings("VENUE", "GW", "acceptor")], far_venue,
                          host="127.0.0.1", port=0)
    await venue.start()
    ours_oms = create_engine("native", "acceptor", [settings("GW", "OMS", "acceptor")], oms_app,
                             host="127.0.0.1", port=0, store_wrapper=wrap)
    await ours_oms.start()
    ours_venue = create_engine("native", "initiator", [settings("GW", "VENUE", "initiator")], venue_app,
                               hosts=[("127.0.0.1", venue.port)], store_wrapper=wrap)
    await ours_venue.start()
    client = create_engine("native", "initiator", [settings("OMS", "GW", "initiator")], client_app,
                           hosts=[("127.0.0.1", ours_oms.port)])
    await client.start()
    engines = [client, ours_venue, ours_oms, venue]
    handles = {"client": await client.wait_logged_on(), "venue_side": await ours_venue.wait_logged_on(),
               "oms_side": await ours_oms.wait_logged_on(), "far_venue": await venue.wait_logged_on()}
    oms_app.venue, venue_app.oms = handles["venue_side"], handles["oms_side"]
    batch = ours_oms.batch
    assert batch is ours_venue.batch                            # one loop thread, one batch
    batch.before_send = journal.flush                           # as the gateway wires it (app.py)
    journal.group_with(batch)
    for side in ("venue_side", "oms_side"):
        conn = handles[side].conn
        conn.transport = Transport(conn.transport, state, side)
    return state, journal, handles, engines, oms_app


async def close(engines, journal, batch) -> None:
    batch.before_send = None
    journal.group_with(None)
    for e in engines:
        await e.stop()
    journal.close()


def chunk(handle, *messages: tuple[str, str]) -> bytes:
    """Frames made by ``handle``'s session (numbered, stored), taken off its queue as one chunk."""
    for msg_type, body in messages:
        handle.session.send(msg_type, body)
    return handle.session.data_to_send()


def lines(path) -> list[str]:
    """The records' lines (without the dispatch marks)."""
    return [ln for ln in path.read_text().splitlines() if ln and not ln.startswith('["dispatch')]


async def until(predicate, what: str, timeout: float = 5.0) -> None:
    import asyncio
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.002)


def test_a_chunk_of_orders_is_one_journal_write_before_the_store_and_the_socket(tmp_path):
    async def main():
        state, journal, h, engines, _ = await relay(tmp_path)
        try:
            before = journal.group_writes
            wire = chunk(h["client"], *[("D", NEW_ORDER.format(id=f"k{i}")) for i in range(3)])
            h["oms_side"].receive(wire)
            assert journal.group_writes == before + 1 and journal.held == 0
            assert [ln.split(",")[4] for ln in lines(state.path)[-3:]] == ['"k0"', '"k1"', '"k2"']
            # the dispatch's records between its marks, in that one write (replay: what may be unsent)
            raw = [ln for ln in state.path.read_text().splitlines() if ln]
            assert raw[-5] == '["dispatch"]' and raw[-1] == '["dispatched"]'
            # each venue order was stored, then written, after its line reached the file
            assert [c for w, c in state.checked if w == "store"] == [b"V-k0", b"V-k1", b"V-k2"]
            assert [c for w, c in state.checked if w == "venue_side"] == [b"V-k0", b"V-k1", b"V-k2"]
            assert len(h["venue_side"].conn.transport.writes) == 1       # one socket write for the burst
            await until(lambda: len([m for m in h["far_venue"].engine.app.messages if m.msg_type == "D"]) == 3,
                        "the venue's three orders")
        finally:
            await close(engines, journal, h["oms_side"].engine.batch)
    run(main())


def test_outside_a_dispatch_a_record_is_written_at_once(tmp_path):
    async def main():
        state, journal, h, engines, _ = await relay(tmp_path)
        try:
            n = len(lines(state.path))
            journal.write(J.Stopped(at=1.0))          # a timer, an admin call: no dispatch running
            assert journal.held == 0 and len(lines(state.path)) == n + 1
        finally:
            await close(engines, journal, h["oms_side"].engine.batch)
    run(main())


def test_a_handler_failing_mid_chunk_leaves_records_in_order_and_nothing_unjournaled_sent(tmp_path):
    async def main():
        state, journal, h, engines, oms_app = await relay(tmp_path)
        try:
            oms_app.fail.add("bad")
            wire = chunk(h["client"], *[("D", NEW_ORDER.format(id=i)) for i in ("g1", "bad", "g2")])
            h["oms_side"].receive(wire)
            # the failed event's record was made before it failed: written, in its place
            assert [ln.split(",")[4] for ln in lines(state.path)[-3:]] == ['"g1"', '"bad"', '"g2"']
            assert journal.held == 0
            assert [c for w, c in state.checked if w == "venue_side"] == [b"V-g1", b"V-g2"]
            # the failure was answered (35=j) on the OMS session, after the journal's flush
            await until(lambda: any(m.msg_type == "j" for m in h["client"].engine.app.messages), "the 35=j")
        finally:
            await close(engines, journal, h["oms_side"].engine.batch)
    run(main())


def test_order_flow_leaves_before_market_data_of_the_same_chunk_is_handled(tmp_path):
    async def main():
        state, journal, h, engines, _ = await relay(tmp_path)
        try:
            far = h["far_venue"]
            wire = chunk(far, ("8", EXEC_REPORT.format(id="V-f1")), ("8", EXEC_REPORT.format(id="V-f2")),
                         ("X", MD_X))
            state.timeline.clear()
            h["venue_side"].receive(wire)
            oms_writes = [t for t in state.timeline if t.startswith("oms_side:")]
            assert oms_writes == ["oms_side:O-f1,O-f2"]          # both reports in one write ...
            assert state.timeline.index(oms_writes[0]) < state.timeline.index("market data handled")   # ... first
            # a chunk of orders only: still one write per session when the chunk ends
            state.timeline.clear()
            h["venue_side"].receive(chunk(far, ("8", EXEC_REPORT.format(id="V-f3")),
                                          ("8", EXEC_REPORT.format(id="V-f4"))))
            assert [t for t in state.timeline if t.startswith("oms_side:")] == ["oms_side:O-f3,O-f4"]
        finally:
            await close(engines, journal, h["oms_side"].engine.batch)
    run(main())


def test_a_long_chunk_sends_every_flush_every_messages_journal_first(tmp_path):
    """A chunk of many orders does not hold its sends to its end: every FLUSH_EVERY application
    messages what they made leaves (journal, then store, then socket: State.check), so the
    peer starts on the first orders while the rest are read."""
    from gateway.fix.drive import FLUSH_EVERY

    async def main():
        state, journal, h, engines, _ = await relay(tmp_path)
        try:
            far = h["far_venue"]
            n = FLUSH_EVERY + 8
            state.timeline.clear()
            h["venue_side"].receive(chunk(far, *[("8", EXEC_REPORT.format(id=f"V-L{i}")) for i in range(n)]))
            oms_writes = [t for t in state.timeline if t.startswith("oms_side:")]
            assert [w.count(",") + 1 for w in oms_writes] == [FLUSH_EVERY, 8]
            assert oms_writes[0].startswith("oms_side:O-L0,") and oms_writes[1].endswith(f",O-L{n - 1}")
            assert len([c for w, c in state.checked if w == "oms_side"]) == n
        finally:
            await close(engines, journal, h["oms_side"].engine.batch)
    run(main())


def test_a_failing_journal_holds_the_sends_it_would_explain_until_it_writes(tmp_path, monkeypatch):
    async def main():
        state, journal, h, engines, _ = await relay(tmp_path)
        try:
            real = journal.flush
            broken = {"on": True}

            def flush():
                if broken["on"] and journal.held:
                    raise OSError(28, "No space left on device")
                real()

            h["oms_side"].engine.batch.before_send = flush
            h["oms_side"].receive(chunk(h["client"], ("D", NEW_ORDER.format(id="h1"))))
            assert journal.held == 1 and b"h1" not in state.path.read_bytes()
            assert h["venue_side"]._held_sends                       # not stored, not sent
            assert not [c for w, c in state.checked if c == b"V-h1"]
            broken["on"] = False
            h["venue_side"].flush()                                    # the next flush: journal, store, socket
            assert journal.held == 0 and not h["venue_side"]._held_sends
            assert [w for w, c in state.checked if c == b"V-h1"] == ["store", "venue_side"]
        finally:
            await close(engines, journal, h["oms_side"].engine.batch)
    run(main())


def test_journal_flush_keeps_unwritten_lines_first_in_line(tmp_path, monkeypatch):
    import os

    class Group:
        depth = 1

    j = J.Journal(tmp_path / "j")
    j.group_with(Group)
    j.write(J.Stopped(at=1.0))
    j.write(J.Stopped(at=2.0))
    assert j.held == 2 and lines(tmp_path / "j") == []
    real_write = os.write

    def failing(fd, data):
        raise OSError(5, "I/O error")

    monkeypatch.setattr(os, "write", failing)
    with pytest.raises(OSError):
        j.flush()
    assert j.held == 1 and j.write_failures == 1
    with pytest.raises(OSError):                      # failing: nothing new is held, the write raises
        j.write(J.Stopped(at=2.5))
    Group.depth = 0
    with pytest.raises(OSError):                      # outside a dispatch: raises, as before
        j.write(J.Stopped(at=3.0))
    monkeypatch.setattr(os, "write", real_write)
    j.write(J.Stopped(at=4.0))                         # the held ones first, then this one
    assert [ln.split(",")[-1] for ln in lines(tmp_path / "j")] == ["1.0]", "2.0]", "4.0]"]
    assert j.held == 0
    Group.depth = 1                                   # written again: holding again
    j.write(J.Stopped(at=5.0))
    assert j.held == 1
    j.close()                                         # close writes what is held
    assert lines(tmp_path / "j")[-1].endswith("5.0]")
