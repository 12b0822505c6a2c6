"""The venue's stores: market data is not kept (so a resend gap-fills it), its numbers are spent."""
from __future__ import annotations

import pytest

from gateway.fix.store import FileStore, MemoryStore
from sim_exchange.stores import NoResendFileStore, NoResendMemoryStore, kept

KEY = "FIX.4.4:V->CLIENT"


def wire(seq: int, msg_type: str) -> bytes:
    return b"8=FIX.4.4\x019=20\x0135=%s\x0134=%d\x0149=V\x0156=CLIENT\x0110=000\x01" % (msg_type.encode(), seq)


@pytest.fixture(params=["memory", "file", "file-deferred"])
def store(request, tmp_path):
    s = (NoResendMemoryStore() if request.param == "memory"
         else NoResendFileStore(tmp_path, KEY, defer=request.param == "file-deferred"))
    yield s
    s.close()


def test_kept_reads_the_msg_type_only():
    skip = b"WXY"
    assert not kept(wire(1, "X"), skip) and not kept(wire(1, "W"), skip) and not kept(wire(1, "Y"), skip)
    assert kept(wire(1, "8"), skip) and kept(wire(1, "XX"), skip) and kept(wire(1, "AE"), skip)
    assert kept(b"not fix at all", skip) and kept(b"", skip) and kept(b"8=FIX.4.4\x019=5\x0134=X\x01", skip)
    assert not kept(b"8=FIX.4.4\x019=5\x0135=X\x01", skip) and kept(b"8=FIX.4.4\x019=5\x0135=X", skip)


def test_market_data_is_not_kept_but_its_number_is_spent(store):
    assert isinstance(store, (FileStore, MemoryStore))         # the engine's store, not a wrapper
    for seq, t in enumerate(["8", "X", "W", "9", "Y"], start=1):
        store.save(seq, wire(seq, t))
    assert store.next_sender_seq == 6
    assert list(store.load_range(1, 5)) == [(1, wire(1, "8")), (4, wire(4, "9"))]


def test_market_data_last_still_moves_the_number_across_a_reopen(tmp_path):
    s = NoResendFileStore(tmp_path, KEY, fsync="always")
    s.save(1, wire(1, "8"))
    s.save(2, wire(2, "X"))
    s.close()
    s = NoResendFileStore(tmp_path, KEY)
    try:
        assert s.next_sender_seq == 3
        assert list(s.load_range(1, 2)) == [(1, wire(1, "8"))]
    finally:
        s.close()


def test_what_to_skip_is_a_parameter(tmp_path):
    s = NoResendMemoryStore(skip=b"8")
    s.save(1, wire(1, "8"))
    s.save(2, wire(2, "X"))
    assert list(s.load_range(1, 2)) == [(2, wire(2, "X"))] and s.next_sender_seq == 3


def test_the_venue_engine_keeps_the_engine_stores_deferred_writes(tmp_path):
    """The venue reopens the engine's FileStore as a NoResendFileStore: deferral carries over
    (one store write per dispatch, as the gateway's sessions)."""
    from types import SimpleNamespace
    from sim_exchange.native import _no_resend_store
    engine_store = FileStore(tmp_path, KEY, defer=True)
    s = _no_resend_store(SimpleNamespace(store_dir=tmp_path), engine_store)
    try:
        assert isinstance(s, NoResendFileStore) and s.defer is True
    finally:
        s.close()


def test_deferred_market_data_numbers_are_written_once_per_flush(tmp_path):
    """Deferred, a burst of market data costs one S line at the flush (not one write per
    message), and the line is in the file before flush returns: a reopen never reuses them."""
    s = NoResendFileStore(tmp_path, KEY, defer=True)
    seqnums = tmp_path / (s._seq_path.rsplit("/", 1)[1])
    before = seqnums.read_bytes()
    for seq in range(1, 6):
        s.save(seq, wire(seq, "X"))
    assert s.next_sender_seq == 6 and seqnums.read_bytes() == before     # nothing written yet
    s.flush()
    assert seqnums.read_bytes()[len(before):] == b"S 6\n"
    s.flush()
    assert seqnums.read_bytes()[len(before):] == b"S 6\n"                # nothing new: no write
    s.save(6, wire(6, "8"))
    s.save(7, wire(7, "W"))
    s.close()                                                            # close writes what is spent
    s = NoResendFileStore(tmp_path, KEY, defer=True)
    try:
        assert s.next_sender_seq == 8
        assert list(s.load_range(1, 7)) == [(6, wire(6, "8"))]
    finally:
        s.close()


def test_deferred_spent_numbers_survive_a_refresh_and_clear_on_reset(tmp_path):
    s = NoResendFileStore(tmp_path, KEY, defer=True)
    try:
        s.save(1, wire(1, "X"))
        s.refresh()                                                      # re-read from the files
        assert s.next_sender_seq == 2
        s.save(2, wire(2, "X"))
        s.reset()
        s.flush()
        assert s.next_sender_seq == 1
    finally:
        s.close()
    s = NoResendFileStore(tmp_path, KEY)
    try:
        assert s.next_sender_seq == 1
    finally:
        s.close()
