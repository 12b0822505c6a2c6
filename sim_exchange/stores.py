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
from collections.abc import Callable
from typing import Final

from gateway.fix.store import FileStore, FsyncPolicy, MemoryStore

# MarketDataSnapshot, MarketDataIncrementalRefresh, MarketDataRequestReject: one character each
MARKET_DATA: Final = b"WXY"
_SOH: Final = 1


def kept(wire: bytes, skip: bytes) -> bool:
    """False when ``wire``'s MsgType is one of the one-character types in ``skip``.
    MsgType is the third field (8=FIX.4.4|9=NNN|35=X|), so it is looked for in the first
    40 bytes; one find, then single bytes compared (no copy, no hashing): this runs for
    every message the venue sends."""
    at = wire.find(b"\x0135=", 0, 40) + 4
    if at <= 3 or at + 1 >= len(wire) or wire[at + 1] != _SOH:
        return True                        # not FIX, or a MsgType of more than one character
    return wire[at] not in skip


class NoResendFileStore(FileStore):
    """``FileStore`` that does not keep market data (the module docstring)."""

    def __init__(self, directory: str | os.PathLike[str], key: str, *, fsync: FsyncPolicy = "never",
                 fsync_interval_s: float = 1.0, skip: bytes = MARKET_DATA,
                 wall: Callable[[], float] = time.time,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.skip = bytes(skip)          # one-character MsgTypes not kept
        super().__init__(directory, key, fsync=fsync, fsync_interval_s=fsync_interval_s, wall=wall,
                         monotonic=monotonic)

    def save(self, seq: int, wire: bytes) -> None:
        if kept(wire, self.skip):
            super().save(seq, wire)
        elif seq >= self.next_sender_seq:
            self.set_next_sender(seq + 1)     # not kept, but the number is spent (and written)


class NoResendMemoryStore(MemoryStore):
    """``MemoryStore`` that does not keep market data (the module docstring)."""

    def __init__(self, *, skip: bytes = MARKET_DATA, wall: Callable[[], float] = time.time) -> None:
        self.skip = bytes(skip)
        super().__init__(wall=wall)

    def save(self, seq: int, wire: bytes) -> None:
        if kept(wire, self.skip):
            super().save(seq, wire)
        elif seq >= self.next_sender_seq:
            self.set_next_sender(seq + 1)
