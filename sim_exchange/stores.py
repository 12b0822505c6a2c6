"""The venue's session stores: market data (W, X, Y) is never kept, so never resent.

A ResendRequest then gap-fills those numbers, as quickfix's DoNotSend does, because a
replayed book would be stale. Everything else is the base store's: reports are kept and
replayed, and the sequence numbers move past a market-data message all the same (its
number is spent, and on a restart the next one must be higher).

These are subclasses of the engine's stores (gateway/fix/store.py), not wrappers around
them: compiled in the same mypyc group (gateway/common/accel.py), ``save`` is one native
call that looks at the MsgType and calls the base's ``save``, and every other method and
attribute the Session reads (``next_sender_seq`` on every send) is the base's own. The
interpreted wrapper this replaces (a ``save`` and a property per number read) cost ~7k
instructions per message sent (callgrind, benchmarks/profile_sim.py --inproc).
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
    MsgType is the third field (8=FIX.4.4|9=NNN|35=X|): after the second SOH, looked for
    in the first 40 bytes. Byte by byte: compiled, that is a few hundred instructions per
    message sent, where ``bytes.find`` (a method call) and a slice took ~3k."""
    end = min(len(wire), 40)
    i = 0
    sohs = 0
    while i < end:
        if wire[i] == _SOH:
            sohs += 1
            if sohs == 2:
                break
        i += 1
    at = i + 4                             # |35=X| : the type's one character, then an SOH
    if sohs < 2 or at + 1 >= len(wire) or wire[at + 1] != _SOH or wire[i + 1:at] != b"35=":
        return True                        # not FIX, or a MsgType of more than one character
    return wire[at] not in skip


class NoResendFileStore(FileStore):
    """``FileStore`` that does not keep market data (the module docstring).

    Deferred (``defer=True``), a market-data message's spent number is written with the next
    ``flush``: one ``S`` line for all the market data numbered since the last one, written
    before the bytes leave ``Session.data_to_send`` (which flushes first), so a restart never
    reuses a number the peer saw. Undeferred, each spent number is written at once."""

    def __init__(self, directory: str | os.PathLike[str], key: str, *, fsync: FsyncPolicy = "never",
                 fsync_interval_s: float = 1.0, skip: bytes = MARKET_DATA,
                 wall: Callable[[], float] = time.time,
                 monotonic: Callable[[], float] = time.monotonic, defer: bool = False) -> None:
        self.skip = bytes(skip)          # one-character MsgTypes not kept
        self._spent = False              # deferred: numbers spent on market data, not written yet
        super().__init__(directory, key, fsync=fsync, fsync_interval_s=fsync_interval_s, wall=wall,
                         monotonic=monotonic, defer=defer)

    def save(self, seq: int, wire: bytes) -> None:
        if kept(wire, self.skip):
            super().save(seq, wire)
        elif seq >= self.next_sender_seq:
            if self.defer:                    # written by flush(), before the bytes leave
                self.next_sender_seq = seq + 1
                self._spent = True
            else:
                self.set_next_sender(seq + 1)     # not kept, but the number is spent (and written)

    def flush(self) -> None:
        super().flush()
        if self._spent:
            self.set_next_sender(self.next_sender_seq)   # raises like a body write: bytes stay queued
            self._spent = False

    def refresh(self) -> None:
        if self._spent:
            self.flush()                      # re-reading the files must not lose a spent number
        super().refresh()

    def reset(self) -> None:
        self._spent = False
        super().reset()

    def close(self) -> None:
        if self._spent and self._seq_fd >= 0:
            self.flush()
        super().close()


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
