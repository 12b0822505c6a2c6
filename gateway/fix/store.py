"""Message stores: sequence numbers and the messages we sent, for resends after a gap.

A store belongs to one session and one process. ``save(seq, wire)`` records an outbound
message *and* moves ``next_sender_seq`` to ``seq + 1``; the Session calls it before the
bytes go to the wire, so nothing the peer saw is missing from the store.

Inbound, the other way round: ``advance_target(n)`` moves ``next_target_seq`` in memory
only, and ``commit()`` writes it; the driver commits after the application has handled the
messages (QuickFIX increments after ``fromApp`` too). A process killed in between asks the
peer for those messages again after its restart (they arrive as PossDup): at least once,
never lost. ``set_next_target`` (resets, SequenceReset, operators) writes at once.

MemoryStore: dicts, lost with the process (tests, ``persist_messages`` off, dev).

FileStore(dir, key, fsync=...): three files under ``dir``, named after the session key:

- ``<key>.body``: append-only records ``b"<seq> <len>\\n" + wire + b"\\n"``, one
  ``os.write`` on an ``O_APPEND`` descriptor per message, so a record is either wholly in
  the kernel's page cache or (power loss, disk full) a torn tail that the next open
  truncates away. The index ``seq -> offset << 32 | length`` is rebuilt by one scan on open.
  With ``defer=True`` (the native engine's stores), ``save`` keeps the record in memory
  and ``flush()`` writes every record kept since in one ``os.write``: the Session calls it
  in ``data_to_send()``, before the bytes it returns can reach the socket, so a dispatch
  that sends several messages on a session (a burst of orders under load) writes its store
  once, not once per message. ``commit``, ``load_range``, ``sync``, ``refresh`` and
  ``close`` flush first. What a crash can lose: records of messages that had not yet left
  ``data_to_send()``, i.e. that no peer saw; their numbers are given out again after the
  restart (the peer never saw them either), and an order journaled for one of them is the
  journal's "sent but never acknowledged" case, reconciled on restart as before.
- Target records: the next target number (what the application has had) is a body record
  of sequence number 0, ``b"0 10\n<number, ten digits>\n"``; the last one wins. In the body, not
  a file of its own, so that a deferred store writes it in the same ``os.write`` as the
  records of the next message it sends (the next ``flush``): one session receiving an order
  and later sending its report writes once, not twice (``fixgw bench gateway``, one order
  at a time: 4 -> 2 store writes per order). ``commit`` on a deferred store therefore writes
  at once only when records are waiting anyway, or the number is ``COMMIT_LAG`` (64)
  messages past the one last written; otherwise with the next ``flush``: the next message
  the session sends, a Heartbeat at the latest (the Session's timer calls ``sync()``, which
  writes it too). What the store promises: the target number written never passes what the
  driver committed (the application has had those messages), so a restart never skips a
  message; it may lag by up to 64 messages or one heartbeat interval, and those are asked
  for again and come back PossDup (the applications drop PossDup messages they have seen:
  at least once, as before, with a longer tail). ``close()`` and ``refresh()`` write it;
  with ``fsync="always"`` every commit writes it at once, as before.
  A store opened by an older version reads the records as sequence number 0 (never
  resent: resends start at 1) and ignores them (it reads the ``T`` line below).
- ``<key>.seqnums``: append-only lines ``S <next sender>`` / ``T <next target>`` /
  ``C <creation time>``; the last line of each kind wins (the body's target record over
  the ``T`` line: since target records, ``T`` is written only by compaction, which copies
  the newest number). Why appended rather than
  rewritten (write + rename) on every change: the target number changes with every message
  received, and one small ``os.write`` (~1-2 us) is an order of magnitude cheaper than
  write + rename (+ a directory fsync to make the rename durable). The file is compacted
  atomically (write a temp file, fsync, rename) on open and on reset, so it stays small.
  ``next_sender_seq`` on open is the larger of the last ``S`` line and the newest body
  record + 1 (save() writes no ``S`` line: the body record says it).
- ``<key>.lock``: ``fcntl.flock(LOCK_EX | LOCK_NB)`` held while open, our pid written in it.
  A second opener (another process, or a second FileStore in this one) gets
  ``StoreLocked("... held by pid N")`` instead of two writers interleaving records.

fsync policy (what survives):
- ``"never"``: records reach the kernel (os.write) before save() returns. Survives the
  process dying in any way (SIGKILL, crash, OOM kill); a power loss or kernel crash can
  lose the last ~30 s the kernel had not yet written back. (quickfix's FileStore: the same.)
- ``"interval"``: as "never", plus an ``fsync`` of both files when ``sync()`` is called at
  least ``fsync_interval_s`` after the last one (the Session calls ``sync()`` from its
  timer and save() checks too). Power loss loses at most about one interval.
- ``"always"``: fsync after every save (deferred: every flush) and every sequence number change. Survives power loss
  with nothing lost that the peer saw; costs a disk flush (~0.1-10 ms) per message.

``load_range`` is a generator reading one record at a time with ``os.pread``, so a resend
of 20,000 messages holds one message in memory, not all of them.

Why two writes, ``save`` (body) and ``commit`` (the target record), and not one (before
target records; a deferred store now joins them when the next message is sent): ``save`` runs inside
the application's callback (its reply), ``commit`` after the callback returns, once per
batch of input (one per message only when messages come one at a time). Putting the
target number in the body record would write it either before the application has
handled the message (a crash in between would skip that message: lost) or as of the last
commit (safe, but the commit still needs its own write). Deferring the commit to the next
save is safe (the number only lags: more PossDup resends after a crash); a session that
only receives still writes it every ``COMMIT_LAG`` messages and with each Heartbeat. Measured here: one small ``O_APPEND``
write costs ~0.8 us, ~0.26 us per record when 20 are joined: at most ~1 us per order.

Compiled with mypyc when built (gateway/common/accel.py): ``MemoryStore`` and
``FileStore`` are native classes (no new attributes; ``load_range`` returns mypyc's
generator object, a lazy iterator like a Python generator).
"""
from __future__ import annotations

import errno
import fcntl
import os
import re
import time
from collections.abc import Callable, Iterator
from typing import Final, Literal

from mypy_extensions import mypyc_attr

FsyncPolicy = Literal["never", "interval", "always"]

_SHIFT: Final = 32                 # FileStore's index: offset << 32 | length (a record < 4 GiB)
_MASK: Final = (1 << 32) - 1

# os.write bound once: compiled, ``os.write`` is a module attribute lookup on every call
_write: Final = os.write

# A deferred store writes its committed target number with the next flush, or at once when
# it is this many messages past the last one written (module docstring, "Target records").
COMMIT_LAG: Final = 64

_ZEROS: Final = tuple(b"0" * k for k in range(11))     # the zero padding of a target record's number


class StoreError(Exception):
    pass


class StoreLocked(StoreError):
    """Another process (or another FileStore in this one) holds this session's store."""


@mypyc_attr(allow_interpreted_subclasses=True)    # a process's own store (NativeEngine's store_wrapper) may be Python
class Store:
    """What a Session needs of a store; MemoryStore and FileStore (and their subclasses, as
    the simulator's) are the implementations. A base class rather than a Protocol: compiled
    in one group with the Session, its per-message reads and calls (next_sender_seq and save
    on every send, next_target_seq and advance_target on every receive) are native, not
    Python attribute lookups and method calls (~1k instructions a message)."""

    next_sender_seq: int
    next_target_seq: int
    creation_time: float

    def set_next_sender(self, n: int) -> None:
        raise NotImplementedError

    def set_next_target(self, n: int) -> None:
        raise NotImplementedError

    def advance_target(self, n: int) -> None:
        raise NotImplementedError

    def commit(self) -> None:
        raise NotImplementedError

    def save(self, seq: int, wire: bytes) -> None:
        raise NotImplementedError

    def load_range(self, begin: int, end: int) -> Iterator[tuple[int, bytes]]:
        raise NotImplementedError

    def reset(self) -> None:
        raise NotImplementedError

    def refresh(self) -> None:
        """Re-read what the store keeps outside the process (nothing, by default)."""

    def flush(self) -> None:
        """Write what ``save`` deferred (nothing, by default). The Session calls it in
        ``data_to_send`` before its bytes leave: a record reaches the OS before the wire."""

    def sync(self) -> None:
        """Flush to stable storage if the store's policy says it is time (nothing, by default)."""

    def close(self) -> None:
        raise NotImplementedError


def _check_seq(n: int) -> int:
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"sequence numbers start at 1, got {n!r}")
    return n


@mypyc_attr(allow_interpreted_subclasses=True)
class MemoryStore(Store):
    """Everything in dicts; ``load_range`` walks the numbers, so saving during a resend is safe."""

    def __init__(self, *, wall: Callable[[], float] = time.time) -> None:
        self._wall = wall
        self._messages: dict[int, bytes] = {}
        self.next_sender_seq = 1
        self.next_target_seq = 1
        self.creation_time = wall()

    def set_next_sender(self, n: int) -> None:
        self.next_sender_seq = _check_seq(n)

    def set_next_target(self, n: int) -> None:
        self.next_target_seq = _check_seq(n)

    def advance_target(self, n: int) -> None:
        self.next_target_seq = _check_seq(n)

    def commit(self) -> None:
        pass

    def save(self, seq: int, wire: bytes) -> None:
        self._messages[seq] = wire
        if seq >= self.next_sender_seq:
            self.next_sender_seq = seq + 1

    def load_range(self, begin: int, end: int) -> Iterator[tuple[int, bytes]]:
        get = self._messages.get
        for seq in range(max(begin, 1), end + 1):
            wire = get(seq)
            if wire is not None:
                yield seq, wire

    def reset(self) -> None:
        self._messages.clear()
        self.next_sender_seq = 1
        self.next_target_seq = 1
        self.creation_time = self._wall()

    def refresh(self) -> None:
        pass

    def flush(self) -> None:
        pass

    def sync(self) -> None:
        pass

    def close(self) -> None:
        pass


_UNSAFE = re.compile(r"[^A-Za-z0-9._]")


def _quote(part: str) -> str:
    return _UNSAFE.sub(lambda m: "".join(f"%{b:02X}" for b in m.group().encode("utf-8")), part)


def file_stem(key: str) -> str:
    """'FIX.4.4:A->B' -> 'FIX.4.4-A-B'. Each part is %-quoted ('-' included) before joining,
    so two different keys never share files ('A-B'->'C' vs 'A'->'B-C')."""
    begin, _, pair = key.partition(":")
    sender, sep, target = pair.partition("->")
    parts = (begin, sender, target) if sep else (key,)
    return "-".join(_quote(p) for p in parts)


@mypyc_attr(allow_interpreted_subclasses=True)
class FileStore(Store):
    """Append-only files, one process per store (see the module docstring)."""

    def __init__(self, directory: str | os.PathLike[str], key: str, *, fsync: FsyncPolicy = "never",
                 fsync_interval_s: float = 1.0, wall: Callable[[], float] = time.time,
                 monotonic: Callable[[], float] = time.monotonic, defer: bool = False) -> None:
        if fsync not in ("never", "interval", "always"):
            raise ValueError(f"fsync must be never|interval|always, got {fsync!r}")
        self.fsync = fsync
        self.defer = defer                # save() holds records for flush() (module docstring)
        self._pending: list[bytes] = []
        self._syncing: bool = fsync != "never"     # read on every write
        self.fsync_interval_s = fsync_interval_s
        self._wall = wall
        self._mono = monotonic
        self.key = key
        os.makedirs(directory, exist_ok=True)
        stem = os.path.join(os.fspath(directory), file_stem(key))
        self._body_path = stem + ".body"
        self._seq_path = stem + ".seqnums"
        self._lock_fd = self._lock(stem + ".lock")
        self._body_fd = self._seq_fd = -1
        self._target_dirty = False        # committed, its record not yet written
        self._committed = 1               # the target number commit() took (what the application has had)
        self._written_target = 1          # the last target record written
        try:
            self._open()
        except BaseException:
            self.close()
            raise

    # -- opening ---------------------------------------------------------------------------

    def _lock(self, path: str) -> int:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            if e.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                os.close(fd)
                raise
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "?"
            os.close(fd)
            raise StoreLocked(f"message store {path} is held by pid {holder}") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        return fd

    def _open(self) -> None:
        # seq -> offset << 32 | length: an int, not a tuple, so a record saved adds no object
        # for the garbage collector to count (a tuple per message sent kept gen-0 filling)
        self._index: dict[int, int] = {}
        self._body_fd = os.open(self._body_path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
        self._end, body_target = self._scan_body()
        sender, target, created = self._read_seqnums()
        newest = max(self._index, default=0)
        self.next_sender_seq = max(sender, newest + 1)
        # The body's last target record is the newest target written (every target write
        # goes there; the seqnums file's T line only by compaction, which copies it).
        self.next_target_seq = body_target if body_target > 0 else target
        self._committed = self._written_target = self.next_target_seq
        self._target_dirty = False
        self.creation_time = created if created is not None else self._wall()
        self._compact_seqnums()
        self._dirty = False
        self._last_sync = self._mono()

    def _scan_body(self) -> tuple[int, int]:
        """Rebuild the index; cut a torn last record (power loss mid-write) off the file.
        Returns the end of the last whole record and the last target record's number (0: none)."""
        size = os.fstat(self._body_fd).st_size
        pos = 0
        target = 0
        while pos < size:
            head = os.pread(self._body_fd, 48, pos)
            nl = head.find(b"\n")
            parts = head[:nl].split(b" ") if nl > 0 else ()
            if len(parts) != 2 or not parts[0].isdigit() or not parts[1].isdigit():
                break
            seq, length = int(parts[0]), int(parts[1])
            start = pos + nl + 1
            if start + length + 1 > size or os.pread(self._body_fd, 1, start + length) != b"\n":
                break
            if seq == 0:                   # a target record: its text is the next target number
                text = os.pread(self._body_fd, length, start)
                if not text.isdigit() or int(text) < 1:
                    break
                target = int(text)
            else:
                self._index[seq] = start << _SHIFT | length
            pos = start + length + 1
        if pos < size:
            os.ftruncate(self._body_fd, pos)
        return pos, target

    def _read_seqnums(self) -> tuple[int, int, float | None]:
        sender, target, created = 1, 1, None
        try:
            with open(self._seq_path, "rb") as f:
                for line in f:
                    kind, _, value = line.strip().partition(b" ")
                    try:
                        if kind == b"S":
                            sender = int(value)
                        elif kind == b"T":
                            target = int(value)
                        elif kind == b"C":
                            created = float(value)
                    except ValueError:
                        break          # a torn last line: everything before it stands
        except FileNotFoundError:
            pass
        return sender, target, created

    def _compact_seqnums(self) -> None:
        """Rewrite the seqnums file as three lines, atomically (temp file, fsync, rename)."""
        if self._seq_fd >= 0:
            os.close(self._seq_fd)
        tmp = self._seq_path + ".tmp"
        text = f"C {self.creation_time!r}\nS {self.next_sender_seq}\nT {self.next_target_seq}\n"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            os.write(fd, text.encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, self._seq_path)
        self._seq_fd = os.open(self._seq_path, os.O_WRONLY | os.O_APPEND)

    # -- the Store interface ----------------------------------------------------------------

    def set_next_sender(self, n: int) -> None:
        self.next_sender_seq = _check_seq(n)
        self._write_seq(b"S %d\n" % n)

    def set_next_target(self, n: int) -> None:
        """Written at once (with the records ``save`` deferred, in the same write)."""
        self.next_target_seq = self._committed = _check_seq(n)
        self._target_dirty = True
        self._write_target()

    def advance_target(self, n: int) -> None:
        """A message handled in memory; written by ``commit()`` once the application has it.
        Only the Session calls it, with the expected number + 1: no argument check per message."""
        self.next_target_seq = n
        self._target_dirty = True

    def commit(self) -> None:
        """The application has had every message up to ``next_target_seq``: record it. Direct,
        written now. Deferred (module docstring, "Target records"): with the next ``flush``
        (the next message this session sends, a heartbeat at the latest), or now if records
        are waiting anyway or the number is ``COMMIT_LAG`` or more past the one written."""
        n = self.next_target_seq
        if n == self._committed and not self._target_dirty:
            if self._pending:
                self.flush()
            return
        self._committed = n
        self._target_dirty = True
        if (not self.defer or self._pending or n - self._written_target >= COMMIT_LAG
                or self.fsync == "always"):
            self._write_target()

    def _target_record(self) -> bytes:
        """The committed target number as a body record of sequence number 0, ready to write."""
        n = self._committed
        # ten digits, zero-padded: a record of one length (int() reads the zeros). The digits
        # and the zeros as bytes, joined in one build: "%010d" is the generic % formatting
        # (~1.3k instructions compiled, per message sent after one received), "%d" and "%s"
        # of bytes are mypyc's own (~0.5k together).
        digits = b"%d" % n
        record = (b"0 10\n%s%s\n" % (_ZEROS[10 - len(digits)], digits) if len(digits) <= 10
                  else b"0 %d\n%s\n" % (len(digits), digits))
        self._end += len(record)
        self._written_target = self._committed
        self._target_dirty = False
        return record

    def _write_target(self) -> None:
        """The committed target record now, in one write with any deferred records."""
        if self.defer or self._pending:
            self.flush()                   # flush() adds the target record to its write
        else:
            record = self._target_record()
            try:
                _write(self._body_fd, record)
            except BaseException:
                self._end -= len(record)  # nothing written: as if never made
                self._target_dirty = True
                raise
            if self._syncing:
                self._after_write()

    def _write_seq(self, line: bytes) -> None:
        _write(self._seq_fd, line)
        if self._syncing:
            self._after_write()

    def save(self, seq: int, wire: bytes) -> None:
        n = len(wire)
        record = b"%d %d\n%s\n" % (seq, n, wire)      # one object: the head, the wire, the newline
        if self.defer:              # written by flush(), before the bytes leave data_to_send()
            self._pending.append(record)
        else:                       # written before it is indexed: a failed write indexes nothing
            _write(self._body_fd, record)      # O_APPEND: one write, one record
        # Deferred, the offset is where flush() will put the record: flush() keeps what it
        # could not write and writes it at the same place next time, so the index stays true.
        end = self._end + len(record)
        self._index[seq] = (end - n - 1) << _SHIFT | n
        self._end = end
        if seq >= self.next_sender_seq:
            self.next_sender_seq = seq + 1
        if self._syncing and not self.defer:
            self._after_write()

    def flush(self) -> None:
        """The records ``save`` deferred, in one ``os.write`` (then fsync as the policy says).

        If the write fails (disk full, I/O error) it raises and keeps what was not written, so
        a later flush writes it at the offsets the index already holds; the Session keeps its
        bytes unsent meanwhile (``Session.data_to_send``): nothing reaches the wire unstored."""
        pending = self._pending
        if self._target_dirty:             # the committed target number goes in the same write
            pending.append(self._target_record())
        if pending:
            data = b"".join(pending)
            written = _write(self._body_fd, data)
            pending.clear()
            if written < len(data):    # a short write (the disk filled): the rest waits
                pending.append(data[written:])
                raise OSError(errno.ENOSPC, f"message store {self.key}: wrote {written} of {len(data)} bytes")
            if self._syncing:
                self._after_write()

    def _after_write(self) -> None:
        if not self._syncing:
            return
        self._dirty = True
        if self.fsync == "always":
            self._fsync()
        elif self._mono() - self._last_sync >= self.fsync_interval_s:
            self._fsync()

    def _fsync(self) -> None:
        os.fsync(self._body_fd)
        os.fsync(self._seq_fd)
        self._dirty = False
        self._last_sync = self._mono()

    def sync(self) -> None:
        """Timer hook (the Session's on_timer): deferred records and target written; for
        fsync="interval", fsync if dirty and an interval has passed."""
        if self._pending or self._target_dirty:
            self.flush()
        if self._dirty and self._body_fd >= 0 and self._mono() - self._last_sync >= self.fsync_interval_s:
            self._fsync()

    def load_range(self, begin: int, end: int) -> Iterator[tuple[int, bytes]]:
        """Stream (seq, wire) for the saved messages in begin..end, in order, one at a time."""
        if self._pending:
            self.flush()
        index = self._index
        if not index:
            return
        # Walk numbers, not a sorted copy of the index: a 20,000-message resend stays O(1) in
        # memory, and messages saved while the resend streams do not disturb it.
        lo, hi = max(begin, 1), min(end, max(index))
        fd = self._body_fd
        for seq in range(lo, hi + 1):
            where = index.get(seq)
            if where is not None:
                yield seq, os.pread(fd, where & _MASK, where >> _SHIFT)

    def reset(self) -> None:
        self._pending.clear()          # numbered before the reset: never to be resent
        os.ftruncate(self._body_fd, 0)
        self._index.clear()
        self._end = 0
        self.next_sender_seq = self.next_target_seq = 1
        self._committed = self._written_target = 1
        self._target_dirty = False
        self.creation_time = self._wall()
        self._compact_seqnums()
        if self.fsync != "never":
            self._fsync()

    def refresh(self) -> None:
        """Re-read the files (QuickFIX RefreshOnLogon); we hold the lock, so they are ours."""
        if self._pending or self._target_dirty:
            self.flush()
        os.close(self._body_fd)
        self._body_fd = -1
        self._open()

    def close(self) -> None:
        if self._body_fd >= 0 and self._seq_fd >= 0:     # opened (not a failed __init__)
            self.commit()            # an orderly close: the application has had everything
            if self._pending or self._target_dirty:
                self.flush()
        if self._body_fd >= 0 and self.fsync != "never":
            self._fsync()
        body, seq, lock = self._body_fd, self._seq_fd, self._lock_fd
        self._body_fd = self._seq_fd = self._lock_fd = -1
        for fd in (body, seq, lock):
            if fd >= 0:
                os.close(fd)

    def __enter__(self) -> "FileStore":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
