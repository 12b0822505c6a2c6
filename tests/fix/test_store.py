"""MemoryStore and FileStore: numbers and messages survive a reopen; one owner per store."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from gateway.fix.store import COMMIT_LAG, FileStore, MemoryStore, StoreLocked, file_stem

KEY = "FIX.4.4:GW->PEER"


def wire(seq: int, text: str = "x") -> bytes:
    # Any bytes: the store must not care (SOH, '10=', newlines, latin-1 high bytes).
    return b"8=FIX.4.4\x019=5\x0135=D\x0134=%d\x0158=%s\n\xff\x0110=000\x01" % (seq, text.encode())


@pytest.fixture(params=["memory", "file"])
def store(request, tmp_path):
    s = MemoryStore() if request.param == "memory" else FileStore(tmp_path, KEY)
    yield s
    s.close()


def test_new_store_starts_at_one(store):
    assert (store.next_sender_seq, store.next_target_seq) == (1, 1)


def test_save_moves_the_sender_number_and_loads_back(store):
    for seq in (1, 2, 3, 5):
        store.save(seq, wire(seq))
    assert store.next_sender_seq == 6
    assert list(store.load_range(2, 5)) == [(2, wire(2)), (3, wire(3)), (5, wire(5))]
    assert list(store.load_range(6, 100)) == []


def test_load_range_is_a_stream(store):
    store.save(1, wire(1))
    # a lazy iterator (a generator; compiled, mypyc's generator object), never a list
    stream = store.load_range(1, 1)
    assert iter(stream) is stream and not isinstance(stream, (list, tuple))
    assert next(stream) == (1, wire(1))


def test_saving_while_a_range_streams_is_safe(store):
    for seq in range(1, 4):
        store.save(seq, wire(seq))
    got = []
    for seq, data in store.load_range(1, 3):
        got.append(seq)
        store.save(seq + 10, wire(seq + 10))
    assert got == [1, 2, 3]


def test_reset_drops_everything(store):
    store.save(1, wire(1))
    store.set_next_target(9)
    before = store.creation_time
    store.reset()
    assert (store.next_sender_seq, store.next_target_seq) == (1, 1)
    assert list(store.load_range(1, 10)) == []
    assert store.creation_time >= before


def test_sequence_numbers_must_be_positive(store):
    with pytest.raises(ValueError):
        store.set_next_target(0)


def test_file_store_reopens_with_the_same_numbers_and_messages(tmp_path):
    s = FileStore(tmp_path, KEY)
    for seq in range(1, 6):
        s.save(seq, wire(seq, f"m{seq}"))
    s.set_next_target(42)
    created = s.creation_time
    s.close()
    s = FileStore(tmp_path, KEY)
    assert (s.next_sender_seq, s.next_target_seq) == (6, 42)
    assert s.creation_time == created
    assert list(s.load_range(1, 5)) == [(q, wire(q, f"m{q}")) for q in range(1, 6)]
    s.close()


def test_operator_sender_number_survives_reopen(tmp_path):
    with FileStore(tmp_path, KEY) as s:
        s.save(1, wire(1))
        s.set_next_sender(100)
    with FileStore(tmp_path, KEY) as s:
        assert s.next_sender_seq == 100


def test_torn_last_record_is_cut_off(tmp_path):
    with FileStore(tmp_path, KEY) as s:
        s.save(1, wire(1))
        s.save(2, wire(2))
    body = tmp_path / (file_stem(KEY) + ".body")
    data = body.read_bytes()
    body.write_bytes(data + b"3 500\n8=FIX.4.4\x01")        # power loss mid-record
    with FileStore(tmp_path, KEY) as s:
        assert [q for q, _ in s.load_range(1, 10)] == [1, 2]
        assert s.next_sender_seq == 3
        s.save(3, wire(3))
    with FileStore(tmp_path, KEY) as s:
        assert [q for q, _ in s.load_range(1, 10)] == [1, 2, 3]


def test_seqnums_file_is_compacted_on_open(tmp_path):
    with FileStore(tmp_path, KEY) as s:
        for n in range(2, 1000):
            s.set_next_sender(n)
        s.set_next_target(7)
    path = tmp_path / (file_stem(KEY) + ".seqnums")
    assert path.read_text().count("\n") > 900
    with FileStore(tmp_path, KEY) as s:
        assert s.next_sender_seq == 999 and s.next_target_seq == 7
    assert path.read_text().count("\n") == 3 and "T 7\n" in path.read_text()


def _target(n: int) -> bytes:
    return b"0 10\n%010d\n" % n


def test_a_target_past_ten_digits_still_reads_back(tmp_path):
    with FileStore(tmp_path, KEY) as s:
        s.set_next_target(12_345_678_901)
    assert _body(tmp_path).endswith(b"0 11\n12345678901\n")
    with FileStore(tmp_path, KEY) as s:
        assert s.next_target_seq == 12_345_678_901


def test_target_numbers_are_body_records_of_sequence_number_zero(tmp_path):
    with FileStore(tmp_path, KEY) as s:
        s.save(1, wire(1))
        s.set_next_target(12)
        s.advance_target(13)
        s.commit()
        assert list(s.load_range(0, 5)) == [(1, wire(1))]        # never resent
    assert _body(tmp_path).endswith(_target(12) + _target(13))
    with FileStore(tmp_path, KEY) as s:
        assert s.next_target_seq == 13 and s.next_sender_seq == 2
        s.set_next_target(5)                                      # an operator lowers it: the last wins
    with FileStore(tmp_path, KEY) as s:
        assert s.next_target_seq == 5 and list(s.load_range(1, 5)) == [(1, wire(1))]


def test_an_older_store_file_without_target_records_reads_its_t_line(tmp_path):
    stem = tmp_path / file_stem(KEY)
    (tmp_path / (file_stem(KEY) + ".seqnums")).write_text("C 1.0\nS 3\nT 9\nT 11\n")
    (tmp_path / (file_stem(KEY) + ".body")).write_bytes(b"%d %d\n%s\n" % (2, len(wire(2)), wire(2)))
    assert stem.parent.exists()
    with FileStore(tmp_path, KEY) as s:
        assert s.next_target_seq == 11 and s.next_sender_seq == 3


def test_a_torn_target_record_is_cut_and_the_one_before_stands(tmp_path):
    with FileStore(tmp_path, KEY) as s:
        s.set_next_target(40)
    with open(tmp_path / (file_stem(KEY) + ".body"), "ab") as f:
        f.write(_target(41)[:-3])                                 # power loss mid-record
    with FileStore(tmp_path, KEY) as s:
        assert s.next_target_seq == 40
        s.save(1, wire(1))
    with FileStore(tmp_path, KEY) as s:
        assert s.next_target_seq == 40 and list(s.load_range(1, 1)) == [(1, wire(1))]


def test_deferred_commit_goes_with_the_next_flush(tmp_path):
    """One write per order on a session that receives one message and later sends one: the
    committed number waits for the next flush (module docstring, "Target records")."""
    s = FileStore(tmp_path, KEY, defer=True)
    s.advance_target(2)
    s.commit()
    assert _body(tmp_path) == b"" and _reopened(tmp_path, s).next_target_seq == 1   # a crash: asked again
    s.advance_target(3)                       # received, not yet handled by the application
    s.save(1, wire(1))
    s.flush()                                 # the record and the committed number, one write
    assert _body(tmp_path) == b"%d %d\n%s\n" % (1, len(wire(1)), wire(1)) + _target(2)
    assert list(s.load_range(1, 1)) == [(1, wire(1))]
    s.commit()                                # 3 committed: waits again
    s.sync()                                  # the timer writes it
    assert _body(tmp_path).endswith(_target(3))
    s.close()


def test_deferred_commit_writes_at_once_past_the_lag_or_with_records_waiting(tmp_path):
    s = FileStore(tmp_path, KEY, defer=True)
    for n in range(2, 2 + COMMIT_LAG):
        s.advance_target(n)
        s.commit()
    assert _body(tmp_path) == _target(1 + COMMIT_LAG)               # the last at the lag, alone
    s.save(1, wire(1))
    s.advance_target(2 + COMMIT_LAG)
    s.commit()                                # records were waiting: written now, together
    assert _body(tmp_path).endswith(wire(1) + b"\n" + _target(2 + COMMIT_LAG))
    s.close()


def test_close_and_refresh_write_the_committed_number(tmp_path):
    s = FileStore(tmp_path, KEY, defer=True)
    s.advance_target(4)
    s.commit()
    s.refresh()
    assert s.next_target_seq == 4
    s.advance_target(5)
    s.close()                                 # an orderly close commits what it has
    with FileStore(tmp_path, KEY) as again:
        assert again.next_target_seq == 5


def _reopened(tmp_path, store: FileStore) -> FileStore:
    """The files as a process that died now would leave them, read by a new store (closed)."""
    lock = store._lock_fd
    os.close(lock)
    store._lock_fd = -1
    again = FileStore(tmp_path, KEY)
    again.close()
    store._lock_fd = os.open(tmp_path / (file_stem(KEY) + ".lock"), os.O_RDWR)
    return again


def test_second_opener_gets_store_locked_naming_the_pid(tmp_path):
    s = FileStore(tmp_path, KEY)
    try:
        with pytest.raises(StoreLocked, match=f"pid {os.getpid()}"):
            FileStore(tmp_path, KEY)
    finally:
        s.close()
    FileStore(tmp_path, KEY).close()           # released on close


def test_another_process_gets_store_locked(tmp_path):
    s = FileStore(tmp_path, KEY)
    code = ("import sys; from gateway.fix.store import FileStore, StoreLocked\n"
            "try:\n    FileStore(sys.argv[1], sys.argv[2])\n"
            "except StoreLocked as e:\n    print(e); sys.exit(3)\n")
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    try:
        r = subprocess.run([sys.executable, "-c", code, str(tmp_path), KEY], env=env,
                           capture_output=True, text=True, timeout=30)
    finally:
        s.close()
    assert r.returncode == 3 and f"pid {os.getpid()}" in r.stdout


def test_record_reaches_the_os_before_save_returns(tmp_path):
    s = FileStore(tmp_path, KEY)
    s.save(1, wire(1))
    # Read through another descriptor without closing ours: the bytes are in the kernel.
    body = (tmp_path / (file_stem(KEY) + ".body")).read_bytes()
    assert wire(1) in body
    s.close()


@pytest.mark.parametrize("policy", ["never", "interval", "always"])
def test_fsync_policies_keep_the_data(tmp_path, policy):
    t = [0.0]
    s = FileStore(tmp_path, KEY, fsync=policy, fsync_interval_s=1.0, monotonic=lambda: t[0])
    s.save(1, wire(1))
    t[0] = 2.0
    s.sync()
    s.set_next_target(3)
    s.close()
    with FileStore(tmp_path, KEY) as s:
        assert s.next_sender_seq == 2 and s.next_target_seq == 3


def test_bad_fsync_policy():
    with pytest.raises(ValueError):
        FileStore("/tmp/never-created", KEY, fsync="sometimes")


def test_key_becomes_a_safe_file_name():
    assert file_stem("FIX.4.4:GW->PEER") == "FIX.4.4-GW-PEER"
    assert file_stem("FIX.4.4:A/B->C D") == "FIX.4.4-A%2FB-C%20D"
    assert file_stem("FIX.4.4:A-B->C") != file_stem("FIX.4.4:A->B-C")


def test_big_resend_range_streams(tmp_path):
    with FileStore(tmp_path, KEY) as s:
        for seq in range(1, 20_001):
            s.save(seq, wire(seq))
        stream = s.load_range(1, 20_000)
        assert next(stream) == (1, wire(1))
        assert sum(1 for _ in stream) == 19_999


def _reopened_target(tmp_path, store: FileStore) -> int:
    """What a process that died now would find: the files as they are, read by a new store."""
    os.close(store._lock_fd)                   # let a second opener in, as after a SIGKILL
    store._lock_fd = -1
    again = FileStore(tmp_path, "FIX.4.4:A->B")
    try:
        return again.next_target_seq
    finally:
        again.close()


def test_inbound_number_reaches_the_file_only_on_commit(tmp_path):
    # at least once: a crash before the application handled a message re-asks for it
    s = FileStore(tmp_path, "FIX.4.4:A->B")
    s.set_next_target(5)
    s.advance_target(6)
    s.advance_target(7)
    assert s.next_target_seq == 7               # the session sees it at once
    assert _reopened_target(tmp_path, s) == 5   # a SIGKILL now: messages 5 and 6 asked for again
    s2 = FileStore(tmp_path, "FIX.4.4:A->B")
    s2.advance_target(6)
    s2.commit()
    assert _reopened_target(tmp_path, s2) == 6


def test_session_receiving_over_a_file_store_commits_after_the_driver_does(tmp_path):
    from gateway.fix.codec import encode
    from gateway.fix.dictionary import Dictionary
    from gateway.fix.events import NEED_DATA, AppMessageReceived
    from gateway.fix.session import Session
    from gateway.fix.settings import SessionSettings
    from gateway.common.clock import FakeClock
    from gateway.common.paths import FIX44_XML

    store = FileStore(tmp_path, "FIX.4.4:A->B")
    wall = lambda: 1_700_000_000.0   # noqa: E731
    s = Session(SessionSettings(sender_comp_id="A", target_comp_id="B", role="acceptor"), store,
                Dictionary.load(FIX44_XML), clock=FakeClock(0.0), wall=wall)
    s.connection_made()

    def frame(seq, mt, body):
        return encode("FIX.4.4", mt, f"49=B\x0156=A\x0134={seq}\x0152=20231114-22:13:20.000\x01", body)
    s.receive_data(frame(1, "A", "98=0\x01108=30\x01"))
    while s.next_event() is not NEED_DATA:
        pass
    if hasattr(s, "accept_logon"):
        s.accept_logon()
    while s.next_event() is not NEED_DATA:
        pass
    store.commit()
    s.receive_data(frame(2, "D", "11=X\x0155=AAPL\x0154=1\x0160=20231114-22:13:20.000\x0138=1\x0140=1\x01"))
    events = []
    while (e := s.next_event()) is not NEED_DATA:
        events.append(e)
    assert any(isinstance(e, AppMessageReceived) for e in events)
    assert store.next_target_seq == 3
    assert _reopened_target(tmp_path, store) == 2   # not yet handled by the application: asked again


def test_engine_passes_the_fsync_policy_to_its_stores(tmp_path):
    from gateway.fix.engine import BaseApplication, create_engine
    from gateway.fix.settings import SessionSettings
    s = SessionSettings(sender_comp_id="A", target_comp_id="B", role="acceptor")
    engine = create_engine("native", "acceptor", [s], BaseApplication(), store_dir=tmp_path, store_fsync="always")
    handle = engine._make_session(s)            # what start() makes per session
    assert handle.store.fsync == "always"
    handle.store.close()


def _body(tmp_path) -> bytes:
    return (tmp_path / (file_stem(KEY) + ".body")).read_bytes()


def test_deferred_records_reach_the_os_in_one_write_on_flush(tmp_path):
    s = FileStore(tmp_path, KEY, defer=True)
    s.save(1, wire(1))
    s.save(2, wire(2))
    assert s.next_sender_seq == 3 and _body(tmp_path) == b""    # held: nothing written yet
    s.flush()
    assert _body(tmp_path) == b"".join(b"%d %d\n%s\n" % (n, len(wire(n)), wire(n)) for n in (1, 2))
    assert list(s.load_range(1, 2)) == [(1, wire(1)), (2, wire(2))]
    s.flush()                                                    # nothing held: no write
    s.close()
    with FileStore(tmp_path, KEY) as again:
        assert again.next_sender_seq == 3 and list(again.load_range(1, 2)) == [(1, wire(1)), (2, wire(2))]


@pytest.mark.parametrize("step", ["commit", "load_range", "sync", "close", "refresh"])
def test_deferred_records_are_written_before_anything_reads_or_closes(tmp_path, step):
    s = FileStore(tmp_path, KEY, defer=True)
    s.save(1, wire(1))
    if step == "load_range":
        assert list(s.load_range(1, 1)) == [(1, wire(1))]
    else:
        getattr(s, step)()
    assert wire(1) in _body(tmp_path)
    if step != "close":
        s.close()


def test_deferred_records_before_a_reset_are_dropped(tmp_path):
    s = FileStore(tmp_path, KEY, defer=True)
    s.save(1, wire(1))
    s.reset()
    s.save(1, wire(7))
    s.flush()
    assert list(s.load_range(1, 1)) == [(1, wire(7))] and wire(1) not in _body(tmp_path)
    s.close()


def test_a_crash_before_flush_loses_only_what_never_left(tmp_path):
    """SIGKILL between save and data_to_send(): the record is lost, its number is given out
    again after the restart; nothing the peer saw is missing."""
    s = FileStore(tmp_path, KEY, defer=True)
    s.save(1, wire(1))
    s.flush()                               # message 1 left (data_to_send flushed it)
    s.save(2, wire(2))                      # message 2 did not
    os.close(s._lock_fd)                    # as after a SIGKILL: the lock is gone, nothing flushed
    s._lock_fd = -1
    again = FileStore(tmp_path, KEY)
    assert again.next_sender_seq == 2 and list(again.load_range(1, 2)) == [(1, wire(1))]
    again.close()


def _failing_body_fd(s: FileStore, tmp_path) -> int:
    """Point the store's body at a read-only descriptor (writes fail with EBADF); returns the real one."""
    real = s._body_fd
    s._body_fd = os.open(tmp_path / (file_stem(KEY) + ".body"), os.O_RDONLY)
    return real


def test_a_failed_deferred_write_keeps_its_records_for_the_next_flush(tmp_path):
    s = FileStore(tmp_path, KEY, defer=True)
    s.save(1, wire(1))
    s.flush()
    s.save(2, wire(2))
    s.save(3, wire(3))
    real = _failing_body_fd(s, tmp_path)
    with pytest.raises(OSError):
        s.flush()                                   # the disk said no: raised, nothing dropped
    os.close(s._body_fd)
    s._body_fd = real
    s.save(4, wire(4))
    s.flush()                                       # written now, at the offsets already indexed
    assert list(s.load_range(1, 4)) == [(n, wire(n)) for n in (1, 2, 3, 4)]
    s.close()
    with FileStore(tmp_path, KEY) as again:
        assert again.next_sender_seq == 5 and list(again.load_range(1, 4)) == [(n, wire(n)) for n in (1, 2, 3, 4)]


def test_a_failed_direct_write_indexes_nothing(tmp_path):
    s = FileStore(tmp_path, KEY)
    s.save(1, wire(1))
    real = _failing_body_fd(s, tmp_path)
    with pytest.raises(OSError):
        s.save(2, wire(2))
    os.close(s._body_fd)
    s._body_fd = real
    assert s.next_sender_seq == 2 and list(s.load_range(1, 2)) == [(1, wire(1))]
    s.save(2, wire(2))
    assert list(s.load_range(1, 2)) == [(1, wire(1)), (2, wire(2))]
    s.close()


def test_session_keeps_its_bytes_when_the_store_cannot_write():
    from gateway.common.clock import FakeClock
    from gateway.fix.session import Session
    from gateway.fix.settings import SessionSettings

    class FailingOnce(MemoryStore):
        failures = 1

        def flush(self) -> None:
            if self.failures:
                self.failures -= 1
                raise OSError(28, "No space left on device")

    s = Session(SessionSettings(sender_comp_id="A", target_comp_id="B", role="initiator"), FailingOnce(),
                None, clock=FakeClock(0.0), wall=lambda: 1_700_000_000.0)
    s.connection_made()                               # an initiator queues its Logon
    with pytest.raises(OSError):
        s.data_to_send()
    out = s.data_to_send()                            # still there, sent once the store wrote
    assert b"35=A\x01" in out and s.data_to_send() == b""


def test_session_flushes_a_deferred_store_before_its_bytes_leave(tmp_path):
    from gateway.common.clock import FakeClock
    from gateway.fix.codec import encode
    from gateway.fix.events import NEED_DATA
    from gateway.fix.session import Session
    from gateway.fix.settings import SessionSettings

    key = "FIX.4.4:A->B"
    store = FileStore(tmp_path, key, defer=True)
    s = Session(SessionSettings(sender_comp_id="A", target_comp_id="B", role="acceptor"), store,
                None, clock=FakeClock(0.0), wall=lambda: 1_700_000_000.0)
    s.connection_made()
    s.receive_data(encode("FIX.4.4", "A", "49=B\x0156=A\x0134=1\x0152=20231114-22:13:20.000\x01",
                          "98=0\x01108=30\x01"))
    while s.next_event() is not NEED_DATA:
        pass
    s.accept_logon()
    while s.next_event() is not NEED_DATA:
        pass
    body_path = tmp_path / (file_stem(key) + ".body")
    logon = s.data_to_send()
    assert logon in body_path.read_bytes()                  # written before data_to_send returned
    s.send("D", "11=X\x0155=Y\x01")
    s.send("D", "11=Z\x0155=Y\x01")
    assert body_path.read_bytes().count(b"35=D") == 0       # held until the bytes are taken
    out = s.data_to_send()
    assert out.count(b"35=D") == 2 and body_path.read_bytes().count(b"35=D") == 2
    store.close()


def test_engine_stores_defer_their_writes(tmp_path):
    from gateway.fix.engine import BaseApplication, create_engine
    from gateway.fix.settings import SessionSettings
    s = SessionSettings(sender_comp_id="A", target_comp_id="B", role="acceptor")
    engine = create_engine("native", "acceptor", [s], BaseApplication(), store_dir=tmp_path)
    handle = engine._make_session(s)
    assert handle.store.defer is True
    handle.store.close()


def test_saving_adds_no_object_for_the_garbage_collector(tmp_path):
    """The index keeps an int per record (offset << 32 | length), not a tuple: messages sent
    do not fill the collector's generation 0 (every survivor counts towards a collection)."""
    import gc
    with FileStore(tmp_path, KEY, defer=True) as s:
        records = [wire(seq) for seq in range(1, 1001)]
        gc.collect()
        gc.disable()
        try:
            before = len(gc.get_objects())
            for seq, w in enumerate(records, 1):
                s.save(seq, w)
            s.flush()
            grown = len(gc.get_objects()) - before
        finally:
            gc.enable()
        assert grown < 50, grown
        assert list(s.load_range(999, 1000)) == [(999, records[998]), (1000, records[999])]


def test_a_store_that_cannot_write_drops_the_connection_and_sends_nothing_unstored(tmp_path, caplog):
    """The native engine over loopback: once our side's store fails to write, the message it
    could not store does not leave, the connection is dropped (logged), the process goes on."""
    import asyncio

    from transport_helpers import EXEC_REPORT, NEW_ORDER, Recorder, run, settings

    from gateway.fix.engine import create_engine

    class Failing(MemoryStore):
        broken = False

        def flush(self) -> None:
            if self.broken:
                raise OSError(28, "No space left on device")

    stores: list = []

    def wrap(_settings, _store):
        stores.append(Failing())
        return stores[-1]

    async def main():
        ours_app, peer_app = Recorder(echo=True), Recorder()
        ours = create_engine("native", "acceptor", [settings("GW", "OMS", "acceptor")], ours_app,
                             host="127.0.0.1", port=0, store_wrapper=wrap)
        await ours.start()
        peer = create_engine("native", "initiator", [settings("OMS", "GW", "initiator")], peer_app,
                             hosts=[("127.0.0.1", ours.port)])
        await peer.start()
        try:
            ours_side, peer_side = await ours.wait_logged_on(), await peer.wait_logged_on()
            peer_side.send("D", NEW_ORDER.format(id="ok"))
            await peer_app.wait(lambda: len(peer_app.messages) == 1, what="the first fill")
            stores[0].broken = True
            peer_side.send("D", NEW_ORDER.format(id="not-stored"))
            await peer_app.wait(lambda: peer_app.logouts or not peer_side.logged_on, what="the drop")
            await asyncio.sleep(0.05)
            assert [m[11] for m in ours_app.messages] == ["ok", "not-stored"]   # handled ...
            assert len(peer_app.messages) == 1          # ... but its fill, unstored, never left
            assert not ours_side.logged_on
        finally:
            await peer.stop()
            await ours.stop()

    run(main())
    assert "the message store could not write" in caplog.text    # named, not a loop's fatal error
