"""The venue's session stores: market data (W, X, Y) is never kept, so never resent.

A ResendRequest then gap-fills those numbers, as quickfix's DoNotSend does, because a
replayed book would be stale. Everything else is the base store's: reports are kept and
replayed, and the sequence numbers move past a market-data message all the same (its
number is spent, and on a restart the next one must be higher).

These are subclasses of the engine's stores (gateway/fix/store.py), not wrappers around
them: compiled in the same mypyc group (gateway/common/accel.py), ``save`` is one native
call that looks at the MsgType and calls the base's ``save``, and every other method and
attribute the Session reads (``next_sender_seq`` on every send) is the base's own. The
wrapper this replaces cost ~9k instructions per message sent (an interpreted ``save`` and
a property per number read).
"""
from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable

from gateway.fix.store import FileStore, FsyncPolicy, MemoryStore

MARKET_DATA = (b"W", b"X", b"Y")     # MarketDataSnapshot, MarketDataIncrementalRefresh, MarketDataRequestReject


def kept(wire: bytes, skip: frozenset[bytes]) -> bool:
    """False when ``wire``'s MsgType is in ``skip``. MsgType is the third field
    (8=FIX.4.4|9=NNN|35=X|), so it is looked for in the first 40 bytes only."""
    at = wire.find(b"\x0135=", 0, 40) + 4
    if at <= 3:
        return True
    return wire[at:wire.find(b"\x01", at, at + 8)] not in skip


class NoResendFileStore(FileStore):
    """``FileStore`` that does not keep market data (the module docstring)."""

    def __init__(self, directory: str | os.PathLike[str], key: str, *, fsync: FsyncPolicy = "never",
                 fsync_interval_s: float = 1.0, skip: Iterable[bytes] = MARKET_DATA,
                 wall: Callable[[], float] = time.time,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.skip = frozenset(skip)
        super().__init__(directory, key, fsync=fsync, fsync_interval_s=fsync_interval_s, wall=wall,
                         monotonic=monotonic)

    def save(self, seq: int, wire: bytes) -> None:
        if kept(wire, self.skip):
            super().save(seq, wire)
        elif seq >= self.next_sender_seq:
            self.set_next_sender(seq + 1)     # not kept, but the number is spent (and written)


class NoResendMemoryStore(MemoryStore):
    """``MemoryStore`` that does not keep market data (the module docstring)."""

    def __init__(self, *, skip: Iterable[bytes] = MARKET_DATA, wall: Callable[[], float] = time.time) -> None:
        self.skip = frozenset(skip)
        super().__init__(wall=wall)

    def save(self, seq: int, wire: bytes) -> None:
        if kept(wire, self.skip):
            super().save(seq, wire)
        elif seq >= self.next_sender_seq:
            self.set_next_sender(seq + 1)
