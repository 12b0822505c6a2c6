"""FIX wire codec: bytes <-> messages, sans-IO (no sockets, no clocks, no threads).

Invariants:
- Text above the socket is ``str`` decoded as latin-1: one code point per byte, so any byte
  survives decode/encode unchanged and ``len(text) == len(bytes)`` (BodyLength is a length).
- ``Framer`` never raises and never scans a byte twice while hunting for ``8=FIX``; junk is
  dropped, counted in ``garbled`` and the buffer stays bounded by ``max_message_size`` plus the
  caller's last ``feed``. A frame it returns has 8=, 9= and 10=xxx where BodyLength says, but its
  CheckSum is not yet verified.
- ``parse`` raises ``GarbledMessage`` (ignored by a session) for CheckSum, BodyLength or
  first-three-tags faults, and ``RemoteFixError(INVALID_TAG_NUMBER)`` (rejected) for an
  ill-formed field in a well-framed message. Length-prefixed data fields are read by length.
- ``Message.pairs`` keeps wire order and repeats (groups need both); ``get`` is the FIRST
  occurrence.
"""
from __future__ import annotations

import calendar
import time
import types
import zlib
from collections.abc import Iterable, Mapping
from typing import Final

from mypy_extensions import i64

from gateway.fix.errors import (
    INVALID_TAG_NUMBER,
    GarbledMessage,
    LocalFixError,
    RemoteFixError,
)

SOH: Final = "\x01"
_SOH_B: Final = 0x01
# Final: compiled, a C static read per call, not a lookup in the module's dict (two per message)
adler32: Final = zlib.adler32

# Length tag -> data tag: the value of the data tag is read by length (may hold SOH or '=').
DEFAULT_DATA_TAGS: Mapping[int, int] = {
    90: 91, 95: 96, 212: 213, 93: 89, 348: 349, 350: 351, 352: 353, 354: 355, 356: 357,
    358: 359, 360: 361, 362: 363, 364: 365, 445: 446, 618: 619, 621: 622,
}

_HEADER_MAX: Final = 64          # bytes from "8=" to the SOH after BodyLength's digits
_TRAILER_LEN: Final = 7          # "10=xxx\x01"
_MAGIC: Final = b"8=FIX"


def _probe() -> None:
    """Only looked at: a compiled module's functions are not Python function objects."""


# True when this module runs compiled (mypyc): parse then reads tags byte by byte, which
# compiles to a few instructions per byte but is the slowest way in the interpreter, where one
# str.split and a partition per field (C loops) win. Both paths give the same pairs.
COMPILED: Final = not isinstance(_probe, types.FunctionType)


class Message:
    """One parsed message. Fields in wire order (repeats kept, for groups).

    A built message (``Message.build``) has ``raw == b""`` and pairs = [(35, type), *body].
    """

    __slots__ = ("_pairs", "values", "raw", "msg_type", "_index", "_body", "shape")

    def __init__(self, pairs: list[tuple[int, str]] | None, raw: bytes = b"",
                 msg_type: str | None = None, body: str | None = None,
                 index: dict[int, str] | None = None, shape: Shape | None = None,
                 values: list[str] | None = None):
        # A parsed message with a layout (``shape``, see Shape) keeps only its values, in
        # wire order (its tags are the layout's): no (tag, value) tuple per field, which the
        # order path never reads; ``pairs`` is built from the two on first need.
        self._pairs = pairs
        self.values = values
        self.raw = raw
        self._index: dict[int, str] | None = index     # built on first need (see get)
        self._body = body
        # The layout of a parsed message (see Shape); None for a built message, or one with an
        # empty value or a data field (parse's careful path): reads then use the index.
        self.shape = shape if values is not None else None
        if msg_type is None:
            msg_type = self.get(35) or ""
        self.msg_type = msg_type

    @property
    def pairs(self) -> list[tuple[int, str]]:
        """(tag, value) per field, in wire order, repeats kept."""
        pairs = self._pairs
        if pairs is None:
            shape = self.shape
            values = self.values
            assert shape is not None and values is not None
            pairs = list(zip(shape.tags, values))
            self._pairs = pairs
        return pairs

    def _build_index(self) -> dict[int, str]:
        # the first occurrence wins, as README promises for get()
        if COMPILED:             # a native loop: ~20% fewer instructions than dict() compiled
            index: dict[int, str] = {}
            for tag, value in self.pairs:
                index.setdefault(tag, value)
        else:                    # interpreted, one C call beats the loop
            index = dict(reversed(self.pairs))
        self._index = index
        return index

    @property
    def index(self) -> dict[int, str]:
        """{tag: first value}; built once."""
        index = self._index
        return index if index is not None else self._build_index()

    def get(self, tag: int, default: str | None = None) -> str | None:
        shape = self.shape
        values = self.values
        if shape is not None and values is not None:
            # by position, from the layout's shared table: a byte per tag below _BY_TAG_MAX
            # (the position + 1; 0 = absent), the dict above
            table = shape.by_tag
            if 0 <= tag < len(table):
                at: int = table[tag]
                if at == 255:
                    found = shape.pos.get(tag)
                    return values[found] if found is not None else default
                return values[at - 1] if at else default
            found = shape.pos.get(tag)
            return values[found] if found is not None else default
        index = self._index
        if index is None:
            if COMPILED:
                # Compiled, a walk of the pairs costs a few instructions a field: the few
                # reads of the session (49, 56, 34, 52, 43) need no index, and the
                # application's first ``index`` builds it in one C call (dict()), cheaper
                # than a setdefault per field while parsing.
                for t, value in self.pairs:
                    if t == tag:
                        return value
                return default
            index = self._build_index()
        return index.get(tag, default)

    def __getitem__(self, tag: int) -> str:
        value = self.get(tag)
        if value is None:
            raise KeyError(tag)
        return value

    def __contains__(self, tag: object) -> bool:
        if not isinstance(tag, int):
            return False
        return self.get(tag) is not None

    def __repr__(self) -> str:
        return f"Message({'|'.join(f'{t}={v}' for t, v in self.pairs)})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Message) and self.pairs == other.pairs

    __hash__ = None  # type: ignore[assignment]

    @property
    def seq_num(self) -> int | None:
        return seq_number(self.get(34))

    @property
    def poss_dup(self) -> bool:
        return self.get(43) == "Y"

    @property
    def poss_resend(self) -> bool:
        return self.get(97) == "Y"

    def groups(self, count_tag: int, first_tag: int,
               tags: Iterable[int] | None = None) -> list[dict[int, str]]:
        """Entries of the repeating group counted by ``count_tag`` (first occurrence).

        Simple reader without a dictionary: an entry starts at each ``first_tag``; the group ends
        at a tag outside ``tags`` (when given), at a tag repeated inside an entry that is not
        ``first_tag``, or at the trailer. At most the declared count of entries is read.
        Use ``Dictionary.group_entries`` for exact, nested layouts.
        """
        allowed = frozenset(tags) if tags is not None else None
        pairs = self.pairs
        start = next((i for i, (t, _) in enumerate(pairs) if t == count_tag), None)
        if start is None:
            return []
        try:
            count = int(pairs[start][1])
        except ValueError:
            return []
        out: list[dict[int, str]] = []
        for tag, value in pairs[start + 1:]:
            if tag in (10, 89, 93) or (allowed is not None and tag not in allowed):
                break
            if tag == first_tag:
                if len(out) == count:
                    break
                out.append({tag: value})
            elif not out or tag in out[-1]:
                break
            else:
                out[-1][tag] = value
        return out

    def body_text(self) -> str:
        """Wire text of the fields after the standard header (what ``encode`` takes as body)."""
        if self._body is None:
            self._body = "".join(f"{t}={v}\x01" for t, v in self.pairs if t not in _ENVELOPE)
        return self._body

    @classmethod
    def build(cls, msg_type: str, body: list[tuple[int, str | int | float]] | str) -> Message:
        """A message to send: body as pairs, or preformatted wire text '11=X\\x0155=Y\\x01'."""
        if isinstance(body, str):
            text = body
            if text and not text.endswith(SOH):
                raise LocalFixError("body text must end with SOH")
            pairs = [(35, msg_type)]
            for piece in text.split(SOH)[:-1]:
                tag, sep, value = piece.partition("=")
                if not sep or not tag.isdigit() or not tag.isascii():
                    raise LocalFixError(f"ill-formed field {piece!r} in body")
                pairs.append((int(tag), value))
        else:
            pairs = [(35, msg_type)]
            parts = []
            for number, item in body:
                text_value = item if isinstance(item, str) else fix_value(item)
                pairs.append((int(number), text_value))
                parts.append(f"{number}={text_value}\x01")
            text = "".join(parts)
        return cls(pairs, b"", msg_type, text)


class Shape:
    """The layout of parsed messages: their tags in wire order, one object shared by every
    message that has the same tags. A counterparty sends a few layouts over and over, so
    what depends only on the tags is worked out once per layout, not once per message:
    where each tag first occurs (``Message.get`` reads by position: no dict per message),
    where the session's header fields are, and the dictionary's validation plan.

    Only a message of plain fields gets one (``parse``'s fast paths): every value non-empty,
    no data field. Shapes are interned by ``_shape_of`` (bounded) and never change, apart
    from ``planned``, a cache the dictionary owns (one tuple, written whole)."""

    __slots__ = ("tags", "sig", "pos", "by_tag", "seq_at", "sender_at", "target_at", "sent_at", "planned")

    def __init__(self, tags: tuple[int, ...]) -> None:
        self.tags = tags
        # tags[2:] (from MsgType on), 3 bytes each: what _split_bytes compares while it reads
        # (empty, never matching, when a tag does not fit in 3 bytes)
        sig = bytearray()
        for tag in tags[2:]:
            if not 0 <= tag < 1 << 24:
                sig = bytearray()
                break
            sig += tag.to_bytes(3, "little")
        self.sig = bytes(sig)
        pos: dict[int, int] = {}
        for i, tag in enumerate(tags):
            if tag not in pos:              # the first occurrence, as get() promises
                pos[tag] = i
        self.pos = pos
        # tag -> position + 1 for the tags below _BY_TAG_MAX (0: absent; 255: look in pos),
        # one byte each: Message.get's read, an index into bytes where a dict lookup hashes
        top = 0
        for tag in pos:
            if top <= tag < _BY_TAG_MAX:
                top = tag + 1
        by_tag = bytearray(top)
        for tag, at in pos.items():
            if 0 <= tag < _BY_TAG_MAX:
                by_tag[tag] = at + 1 if at < 254 else 255
        self.by_tag = bytes(by_tag)
        # positions of the fields the session reads on every message; -1 when absent
        self.seq_at: int = pos.get(34, -1)
        self.sender_at: int = pos.get(49, -1)
        self.target_at: int = pos.get(56, -1)
        self.sent_at: int = pos.get(52, -1)
        # (the dictionary's MessageSpec, its checks for these tags, None: not plainly
        # valid): Dictionary._fast_ok's cache
        self.planned: tuple[object, object] = (None, None)


_BY_TAG_MAX: Final = 1024    # Shape.by_tag covers tags below this (at most 1 KB a layout)
_MAX_SHAPES: Final = 1024     # layouts held (a hostile peer sending random tags: cleared when full)
_SHAPES: Final[dict[tuple[int, ...], Shape]] = {}
_LAST_SHAPE: Final[dict[str, Shape]] = {}    # MsgType -> the layout it had last: checked first
# the same for a one-character ASCII MsgType (most are), by its byte: no hashing of the text
_LAST_BY_CHAR: Final[list[Shape | None]] = [None] * 128


def _shape_of(tags: list[int], msg_type: str) -> Shape:
    """The interned layout of ``tags``: the one ``msg_type`` had last when the tags are the
    same (a comparison per field, no tuple built), else found or made."""
    last = _LAST_SHAPE.get(msg_type)
    if last is not None:
        known = last.tags
        n = len(tags)
        if len(known) == n:
            same = True
            for i in range(n):
                if tags[i] != known[i]:
                    same = False
                    break
            if same:
                return last
    key = tuple(tags)
    shape = _SHAPES.get(key)
    if shape is None:
        if len(_SHAPES) >= _MAX_SHAPES:
            _SHAPES.clear()
        shape = Shape(key)
        _SHAPES[key] = shape
    if len(_LAST_SHAPE) >= _MAX_SHAPES:
        _LAST_SHAPE.clear()
    _LAST_SHAPE[msg_type] = shape
    if len(msg_type) == 1 and ord(msg_type) < 128:
        _LAST_BY_CHAR[ord(msg_type)] = shape
    return shape


# Header and trailer tags a body_text() leaves out (the session writes its own).
_ENVELOPE: Final = frozenset({8, 9, 35, 49, 56, 34, 52, 43, 97, 122, 10, 115, 128, 50, 57, 142, 143,
                       116, 129, 144, 145, 369, 627, 628, 629, 630, 347, 90, 91, 212, 213, 93, 89})


def seq_number(text: str | None) -> int | None:
    """A MsgSeqNum's text -> its number; None when absent or not all ASCII digits."""
    if text is None:
        return None
    if not COMPILED:          # interpreted, two C calls beat the loop
        return int(text) if ascii_digits(text, 0) else None
    k = len(text)
    if k == 0:
        return None
    if k > 18:                # beyond i64: Python ints (a number no session reaches)
        return int(text) if ascii_digits(text, 0) else None
    n: i64 = 0
    for i in range(k):        # compiled: a few instructions a digit, where int() is a call
        c = ord(text[i])      # (indexing, not ``for ch in text``: no iterator, ~450 fewer)
        if c < 48 or c > 57:
            return None
        n = n * 10 + c - 48
    return n


def ascii_digits(text: str, start: int) -> bool:
    """``text[start:]`` is one or more ASCII digits (``str.isdigit`` alone takes any script's
    digits; a loop over the characters compiles to a few instructions each)."""
    if not COMPILED:            # interpreted, two C calls beat the loop
        digits = text[start:] if start else text
        return digits.isdigit() and digits.isascii()
    n = len(text)
    if start >= n:
        return False
    for i in range(start, n):
        c = ord(text[i])
        if c < 48 or c > 57:
            return False
    return True


def fix_value(value: object) -> str:
    """A Python value as FIX text: bool -> Y/N, numbers via fix_number, else str()."""
    if value is True:
        return "Y"
    if value is False:
        return "N"
    if isinstance(value, (int, float)):
        return fix_number(value)
    return str(value)


# --------------------------------------------------------------------------------------------
# Framer


class Framer:
    """Cuts a byte stream into messages. h11's receive_data()/next_event() shape.

    Garbled input (no "8=FIX" at the start, 9 not second, BodyLength not digits, 9= over
    ``max_message_size``) is skipped to the next b"8=FIX" and counted in ``garbled``. A frame
    whose 10= is not where 9= says is dropped up to the first "<SOH>10=xxx<SOH>" from there
    (QuickFIX's rule: a too-long BodyLength swallows the next message). Never raises.

    The common case goes without a copy: bytes fed while nothing is buffered are held as they
    came (``_chunk``) and well-formed frames are cut from them (the whole chunk when it is one
    message). Anything else (a partial frame, junk, a wrong BodyLength) moves the rest of the
    chunk into the buffer, where the general path decides as it always has.
    """

    __slots__ = ("max_message_size", "data_tags", "garbled", "_buf", "_pos", "_scan", "_scan10",
                 "_eof", "_chunk", "_cpos")

    def __init__(self, max_message_size: int = 1 << 20,
                 data_tags: Mapping[int, int] = DEFAULT_DATA_TAGS):
        self.max_message_size = max_message_size
        self.data_tags = data_tags
        self.garbled = 0
        self._buf = bytearray()
        self._pos = 0            # start of the unconsumed bytes
        self._scan = -1          # >= 0 while hunting for 8=FIX: where the hunt resumes
        self._scan10 = -1        # > 0 while looking for the CheckSum of a wrong-BodyLength frame
        self._eof = False
        self._chunk: bytes | None = None   # bytes as fed, read in place (nothing else buffered)
        self._cpos = 0                     # where the unread part of _chunk starts

    @property
    def buffered(self) -> int:
        """Unconsumed bytes held (for limits and tests)."""
        chunk = self._chunk
        held = len(chunk) - self._cpos if chunk is not None else 0
        return len(self._buf) - self._pos + held

    def feed(self, data: bytes) -> None:
        """Append received bytes; b"" means the peer closed (a partial frame is then junk)."""
        if not data:
            self._eof = True
            return
        if self._chunk is not None:
            self._spill()
        buf = self._buf
        if (self._pos == len(buf) and self._scan < 0 and self._scan10 < 0 and not self._eof
                and type(data) is bytes):
            if self._pos:
                buf.clear()
                self._pos = 0
            self._chunk = data
            self._cpos = 0
            return
        if self._pos and self._pos == len(buf):
            buf.clear()
            self._pos = 0
            if self._scan > 0:
                self._scan = 0
        elif self._pos > 65536 and self._pos * 2 > len(buf):
            self._compact()
        buf += data

    def _compact(self) -> None:
        pos = self._pos
        del self._buf[:pos]
        self._pos = 0
        if self._scan >= 0:
            self._scan = max(0, self._scan - pos)
        if self._scan10 >= 0:
            self._scan10 = max(0, self._scan10 - pos)

    def _spill(self) -> None:
        """Move the unread rest of the chunk into the buffer (the general path takes over)."""
        chunk = self._chunk
        if chunk is not None:
            if self._cpos < len(chunk):
                self._buf += chunk[self._cpos:] if self._cpos else chunk
            self._chunk = None
            self._cpos = 0

    def _cut(self) -> bytes | None:
        """The next frame of the chunk when it is plainly well formed (the general path would
        return the same bytes); None: chunk used up or spilled into the buffer."""
        data = self._chunk
        assert data is not None
        # i64 positions (see _split_bytes): compiled, each byte read is a few instructions
        pos: i64 = self._cpos
        end: i64 = len(data)
        if pos >= end:
            self._chunk = None
            self._cpos = 0
            return None
        limit: i64 = pos + _HEADER_MAX
        if limit > end:
            limit = end
        if end - pos < 16 or data[pos:pos + 5] != _MAGIC:
            self._spill()
            return None
        i: i64 = pos + 5
        while i < limit and data[i] != _SOH_B:    # the rest of BeginString: no '=' in it
            if data[i] == 61:
                self._spill()
                return None
            i += 1
        if i + 3 >= limit or data[i + 1] != 57 or data[i + 2] != 61:   # "9="
            self._spill()
            return None
        j: i64 = i + 3
        body_len: i64 = 0
        while j < limit and 48 <= data[j] <= 57 and j - i - 3 < 10:   # 10 digits: too many
            body_len = body_len * 10 + data[j] - 48
            j += 1
        if (j >= limit or data[j] != _SOH_B or j == i + 3 or j - i - 3 > 9
                or body_len > self.max_message_size):
            self._spill()
            return None
        stop: i64 = j + 1 + body_len
        if (end < stop + _TRAILER_LEN or data[stop] != 49 or data[stop + 1] != 48
                or data[stop + 2] != 61 or data[stop + 6] != _SOH_B
                or not (48 <= data[stop + 3] <= 57 and 48 <= data[stop + 4] <= 57
                        and 48 <= data[stop + 5] <= 57)):
            self._spill()                # partial, or a wrong BodyLength: the general path
            return None
        after: i64 = stop + _TRAILER_LEN
        self._cpos = after
        if pos == 0 and after == end:
            return data                  # one message per read: no copy at all
        return data[pos:after]

    def next_message(self) -> bytes | None:
        """One complete frame (8=..9=N..10=xxx), or None until more bytes arrive."""
        if self._chunk is not None:
            frame = self._cut()
            if frame is not None:
                return frame
        buf = self._buf
        while True:  # bounded: each pass returns, or moves _pos/_scan strictly forward
            if self._scan >= 0 and not self._hunt():
                return None
            pos = self._pos
            end = len(buf)
            if pos >= end:
                return None
            if not buf.startswith(_MAGIC, pos):
                if end - pos < len(_MAGIC) and _MAGIC.startswith(bytes(buf[pos:end])):
                    if self._eof:
                        self._drop_rest()
                    return None   # maybe the start of a frame: wait
                self._skip(pos)
                continue
            # BeginString, BodyLength and the rest, from the first _HEADER_MAX bytes
            fields = buf[pos:pos + _HEADER_MAX].split(b"\x01", 2)
            if len(fields) < 3:
                if end - pos >= _HEADER_MAX:
                    self._skip(pos + 1)
                    continue
                if self._eof:
                    self._drop_rest()
                return None
            begin, length = fields[0], fields[1]
            digits = length[2:]
            # a '=' inside BeginString means junk glued to a real frame ("8=FIX8=FIX.4.4")
            if (not length.startswith(b"9=") or begin.count(b"=") != 1
                    or not digits.isdigit() or len(digits) > 9):
                self._skip(pos + 1)
                continue
            body_len = int(digits)
            if body_len > self.max_message_size:
                self._skip(pos + 1)
                continue
            soh2 = pos + len(begin) + 1 + len(length)
            stop = soh2 + 1 + body_len
            if end < stop + _TRAILER_LEN:
                if self._eof:
                    self._drop_rest()
                return None
            trailer = buf[stop:stop + _TRAILER_LEN]
            if not trailer.startswith(b"10=") or trailer[6] != _SOH_B or not trailer[3:6].isdigit():
                if not self._drop_to_checksum(pos, soh2, stop):
                    return None
                continue
            self._pos = stop + _TRAILER_LEN
            return bytes(buf[pos:stop + _TRAILER_LEN])

    def _drop_to_checksum(self, pos: int, soh2: int, stop: int) -> bool:
        """BodyLength wrong: as QuickFIX's parser, the frame ends at the first "<SOH>10=" from
        where BodyLength points, and that whole frame is dropped (a too-long 9= swallows the
        next message, as with QuickFIX). False = wait for more bytes. Searched once per byte:
        ``_scan10`` remembers where the search got to."""
        buf = self._buf
        start = max(self._scan10 if self._scan10 >= 0 else stop - 1, soh2)
        mark = buf.find(b"\x0110=", start, pos + self.max_message_size + 64)
        end = buf.find(_SOH_B, mark + 4, mark + 16) if mark >= 0 else -1
        if end < 0:
            limit_hit = len(buf) - pos > self.max_message_size + 64
            if limit_hit or self._eof or (mark >= 0 and len(buf) >= mark + 16):
                self._scan10 = -1
                self._skip(pos + 1)
                return True
            self._scan10 = max(soh2, len(buf) - 4) if mark < 0 else mark
            return False
        self._scan10 = -1
        self.garbled += 1
        self._pos = end + 1
        return True

    def _skip(self, start: int) -> None:
        """Start hunting for the next 8=FIX at ``start``: one junk segment."""
        self.garbled += 1
        self._pos = start
        self._scan = start
        self._scan10 = -1

    def _hunt(self) -> bool:
        """Resume the hunt; True when _pos now sits on b'8=FIX'. Each byte is searched once."""
        buf = self._buf
        found = buf.find(_MAGIC, self._scan)
        if found >= 0:
            self._pos = found
            self._scan = -1
            return True
        # keep only a tail that could be the start of "8=FIX" split across feeds
        keep = max(self._pos, len(buf) - (len(_MAGIC) - 1))
        self._pos = keep
        self._scan = keep
        if keep > 65536:
            self._compact()
        if self._eof:
            self._pos = len(buf)
            self._scan = -1
        return False

    def _drop_rest(self) -> None:
        """EOF inside a partial frame: it can never complete."""
        self.garbled += 1
        self._pos = len(self._buf)
        self._scan10 = -1


# --------------------------------------------------------------------------------------------
# per-message caches


class _Last:
    """The last results of the caches a message goes through, each one tuple read whole (a
    thread never sees a half-updated pair). One native object held in a ``Final`` name:
    compiled, reading a cache is an attribute load, where a module global assigned per
    message costs a dict lookup and a dict store."""

    __slots__ = ("flags", "second", "milli", "stamp_second", "stamp_second_before", "stamp", "stamp_before")

    def __init__(self) -> None:
        self.flags: tuple[object, bytes] = (None, b"")     # _data_flags: (data_tags, flags)
        # utc_timestamp: (UTC second, its text) for strftime once a second, and (millisecond
        # since the epoch, the whole text) for one text per millisecond at precision 3
        self.second: tuple[int, str] = (_NO_TIME, "")
        self.milli: tuple[int, str] = (_NO_TIME, "")
        # parse_utc_timestamp: ('YYYYMMDD-HH:MM:SS', its epoch second), (text, its value), and
        # the one before each: a message's SendingTime(52) and TransactTime(60) often differ in
        # the second (a client's order time, a venue's clock), and validation reads 52 then 60
        # before the session reads 52 again
        self.stamp_second: tuple[str, int] = ("19700101-00:00:00", 0)
        self.stamp_second_before: tuple[str, int] = ("19700101-00:00:00", 0)
        self.stamp: tuple[str, float] = ("", 0.0)
        self.stamp_before: tuple[str, float] = ("", 0.0)


_NO_TIME: Final = -(1 << 60)     # no second or millisecond yet (any real one differs)
_LAST: Final = _Last()


# --------------------------------------------------------------------------------------------
# parse / encode


def _garbled(text: str) -> GarbledMessage:
    return GarbledMessage(text)


def parse(frame: bytes, data_tags: Mapping[int, int] = DEFAULT_DATA_TAGS) -> Message:
    """A framed message -> Message, after verifying CheckSum, BodyLength and 8/9/35 first."""
    n = len(frame)
    if (n < 20 or frame[n - 7] != 49 or frame[n - 6] != 48 or frame[n - 5] != 61   # "10="
            or frame[n - 1] != _SOH_B or frame[n - 8] != _SOH_B):
        raise _garbled("no CheckSum(10) at the end")
    d1, d2, d3 = frame[n - 4] - 48, frame[n - 3] - 48, frame[n - 2] - 48
    if not (0 <= d1 <= 9 and 0 <= d2 <= 9 and 0 <= d3 <= 9):
        raise _garbled("CheckSum is not 3 digits")
    if _frame_checksum(frame) != d1 * 100 + d2 * 10 + d3:
        raise _garbled("CheckSum mismatch")
    text = frame.decode("latin-1")
    # the first three tags read from the bytes (one code point per byte: the same test as
    # on the text, where str.startswith with an offset is a Python method call compiled)
    if frame[0] != 56 or frame[1] != 61:                              # "8="
        raise _garbled("BeginString(8) is not the first field")
    soh1 = _find_soh(frame, text, 2)      # the frame ends with SOH
    if soh1 + 3 >= n or frame[soh1 + 1] != 57 or frame[soh1 + 2] != 61:   # "9="
        raise _garbled("BodyLength(9) is not the second field")
    soh2 = _find_soh(frame, text, soh1 + 1)
    body_len = 0
    for k in range(soh1 + 3, soh2):       # ASCII digits only
        c = frame[k]
        if not 48 <= c <= 57:
            raise _garbled("BodyLength mismatch")
        body_len = body_len * 10 + c - 48
    if soh2 == soh1 + 3 or body_len != n - 7 - (soh2 + 1):
        raise _garbled("BodyLength mismatch")
    if (soh2 + 4 >= n or frame[soh2 + 1] != 51 or frame[soh2 + 2] != 53
            or frame[soh2 + 3] != 61):                                 # "35="
        raise _garbled("MsgType(35) is not the third field")
    if COMPILED:
        msg = _split_bytes(frame, text, soh1, soh2, _data_flags(data_tags))
        if msg is not None:
            return msg
    else:
        tags: list[int] = []
        values = _split_fast(text, _tag_table(data_tags), tags)
        if values is not None:    # plain fields, none empty: the message gets its layout
            msg_type = values[2]
            return Message(None, frame, msg_type, None, None, _shape_of(tags, msg_type), values)
    pairs = _split_careful(text, data_tags)
    return Message(pairs, frame, pairs[2][1])




def _find_soh(frame: bytes, text: str, start: int) -> int:
    """The first SOH at or after ``start`` of a frame that ends with one (``text`` is the
    frame decoded): compiled, a native scan of the few bytes of BeginString or BodyLength
    (str.find is a call of a few hundred instructions); interpreted, str.find."""
    if not COMPILED:
        return text.find(SOH, start)
    i: i64 = start
    while frame[i] != 1:      # bounded: the frame's last byte is SOH
        i += 1
    return i


# id(data_tags) -> (data_tags, flags): flags[tag] is 1 for a data-length tag. The cached
# mapping is held, so its id cannot be reused while cached; data tags never change after load.
# Every session parses with the same mapping: the last one is tried first (_LAST.flags).
_FLAGS: Final[dict[int, tuple[object, bytes]]] = {}


def _data_flags(data_tags: Mapping[int, int]) -> bytes:
    owner, last = _LAST.flags
    if owner is data_tags:
        return last
    hit = _FLAGS.get(id(data_tags))
    if hit is not None and hit[0] is data_tags:
        flags = hit[1]
    else:
        top = max(data_tags, default=0) + 1
        flags = bytes(1 if tag in data_tags else 0 for tag in range(top))
        if len(_FLAGS) > 8:
            _FLAGS.clear()
        _FLAGS[id(data_tags)] = (data_tags, flags)
    _LAST.flags = (data_tags, flags)
    return flags


def _split_bytes(frame: bytes, text: str, soh1: int, soh2: int, data_flags: bytes,
                 ) -> Message | None:
    """One pass: the tag's digits read from the bytes, the value sliced from the text up to
    the next SOH, each tag compared with the layout this MsgType had last (``Shape.sig``, a
    few instructions a field): the message with its layout. None when the careful path is
    needed: a tag that is not 1-9 ASCII digits followed by '=', an empty value, or a
    data-length tag (its data field is read by length).

    Positions are ``i64`` (mypy_extensions; plain ints interpreted): compiled, a byte costs a
    few machine instructions, where a tagged ``int`` index costs a range check and an
    overflow-checked add for every byte of the message."""
    if soh1 == 2:                 # "8=" with no value
        return None
    values: list[str] = [text[2:soh1], text[soh1 + 3:soh2]]
    flags: i64 = len(data_flags)
    pos: i64 = soh2 + 1
    end: i64 = len(text)
    # The candidate layout: the last one of this MsgType when it is one ASCII character
    # (parse checked "35=" at soh2 + 1), else none here (_shape_of finds it after).
    cand: Shape | None = None
    if frame[soh2 + 5] == 1 and frame[soh2 + 4] < 128:
        cand = _LAST_BY_CHAR[frame[soh2 + 4]]
    sig = cand.sig if cand is not None else b""
    slen: i64 = len(sig)
    same = cand is not None
    j: i64 = 0                # where this field's tag is in sig
    while pos < end:      # bounded: pos strictly increases; the frame ends with SOH
        tag: i64 = 0
        i: i64 = pos
        c: i64 = frame[i]
        while 48 <= c <= 57 and i - pos < 10:     # b"0".."9"; 10 digits are too many anyway
            tag = tag * 10 + c - 48
            i += 1
            c = frame[i]
        if c != 61 or i == pos or i - pos > 9:   # 61: b"="
            return None
        if tag < flags and data_flags[tag]:
            return None
        if same:
            if j + 3 > slen:
                same = False
            else:                 # i64 locals: native shifts, no tagged-int arithmetic
                b0: i64 = sig[j]
                b1: i64 = sig[j + 1]
                b2: i64 = sig[j + 2]
                if b0 | b1 << 8 | b2 << 16 != tag:
                    same = False
            j += 3
        stop: i64 = i + 1
        if frame[stop] == 1:          # an empty value: the careful path (a Reject follows)
            return None
        while frame[stop] != 1:       # to the SOH (the frame ends with one)
            stop += 1
        values.append(text[i + 1:stop])
        pos = stop + 1
    msg_type = values[2]
    if cand is not None and same and j == slen:
        return Message(None, frame, msg_type, None, None, cand, values)
    # not this MsgType's last layout: its tags read again (the fields are known well formed)
    return Message(None, frame, msg_type, None, None,
                   _shape_of(_tags_of(frame, soh2 + 1), msg_type), values)


def _tags_of(frame: bytes, start: i64) -> list[int]:
    """The tags of a frame _split_bytes has read (every field plain: digits, '=', a value
    without SOH): 8 and 9, then each tag from ``start``."""
    tags: list[int] = [8, 9]
    pos: i64 = start
    end: i64 = len(frame)
    while pos < end:      # bounded: pos strictly increases; the frame ends with SOH
        tag: i64 = 0
        c: i64 = frame[pos]
        while c != 61:                 # digits up to '=' (checked by _split_bytes)
            tag = tag * 10 + c - 48
            pos += 1
            c = frame[pos]
        tags.append(tag)
        pos += 1
        while frame[pos] != 1:
            pos += 1
        pos += 1
    return tags


_TAG_TABLES: dict[frozenset[int], dict[str, int]] = {}
_last_table: tuple[object, dict[str, int]] = (None, {})


def _tag_table(data_tags: Mapping[int, int]) -> dict[str, int]:
    """'0'..'9999' -> int, minus the data-length tags: a miss (data tag, '-1', '035', ' 9',
    a big tag) sends parse to the careful path. Also stricter than int() ('+1', '1_0')."""
    global _last_table
    owner, table = _last_table
    if owner is data_tags:        # one-entry identity cache: no hashing on the hot path
        return table
    key = frozenset(data_tags)
    cached = _TAG_TABLES.get(key)
    if cached is None:
        cached = {str(i): i for i in range(10000) if i not in key}
        if len(_TAG_TABLES) > 8:
            _TAG_TABLES.clear()
        _TAG_TABLES[key] = cached
    _last_table = (data_tags, cached)
    return cached


def _split_fast(text: str, table: dict[str, int], tags: list[int]) -> list[str] | None:
    """The interpreter's way (see COMPILED): one split on SOH, a partition and a table lookup
    per field: the values, the tags appended to ``tags``; None when the careful path is
    needed (a data-length tag, an ill-formed field, an empty value)."""
    values: list[str] = []
    pieces = text.split(SOH)
    pieces.pop()          # the "" after the final SOH
    for piece in pieces:
        tag, sep, value = piece.partition("=")
        number = table.get(tag)
        if number is None or not sep or not value:
            return None
        tags.append(number)
        values.append(value)
    return values


def _split_careful(text: str, data_tags: Mapping[int, int]) -> list[tuple[int, str]]:
    """Field by field; a data tag right after its length tag is read by that length."""
    pairs: list[tuple[int, str]] = []
    pos = 0
    end = len(text)
    data_len: int | None = None
    data_tag = -1
    while pos < end:  # bounded: pos strictly increases
        eq = text.find("=", pos)
        soh = text.find(SOH, pos)
        if eq < 0 or (0 <= soh < eq):
            raise RemoteFixError("Invalid tag number: field without '='",
                                 reject_reason=INVALID_TAG_NUMBER)
        tag_text = text[pos:eq]
        tag = _tag_number(tag_text)
        if tag == data_tag and data_len is not None:
            stop = eq + 1 + data_len
            if stop >= end or text[stop] != SOH:
                raise RemoteFixError("Incorrect data length for data field",
                                     reject_reason=INVALID_TAG_NUMBER, ref_tag=tag)
            value = text[eq + 1:stop]
        else:
            stop = text.find(SOH, eq + 1)
            if stop < 0:
                stop = end
            value = text[eq + 1:stop]
        data_len = None
        data_tag = data_tags.get(tag, -1)
        if data_tag >= 0 and value.isdigit() and value.isascii():
            data_len = int(value)
        pairs.append((tag, value))
        pos = stop + 1
    return pairs


def _tag_number(text: str) -> int:
    """Tag text -> int: digits, or '-digits' (QuickFIX keeps it and rejects it as invalid)."""
    body = text[1:] if text.startswith("-") else text
    if not body.isdigit() or not body.isascii():
        raise RemoteFixError(f"Invalid tag number {text!r}", reject_reason=INVALID_TAG_NUMBER)
    return int(text)


def encode(begin_string: str, msg_type: str, header: str, body: str) -> bytes:
    """Wire bytes: 8, 9 (computed), 35, header, body, 10 (computed).

    header: preformatted '49=..\\x0156=..\\x0134=..\\x0152=..\\x01'; body likewise.
    """
    length = len(msg_type) + len(header) + len(body) + 4      # "35=" msg_type SOH header body
    return seal(f"8={begin_string}\x019={length}\x0135={msg_type}\x01{header}{body}")


def seal(text: str) -> bytes:
    """A message's text up to its CheckSum (8=, 9= with the right BodyLength, ..., the last
    field's SOH) -> wire bytes: latin-1, CheckSum(10) appended."""
    try:
        data = text.encode("latin-1")
    except UnicodeEncodeError as err:
        raise LocalFixError(f"not latin-1 text in a field: {err}") from None
    return data + _TRAILERS[_checksum(data, len(data))]


# zlib.adler32's low half is 1 + (byte sum mod 65521): the exact byte sum while that sum is
# below 65521, which holds for any 256 bytes (255 * 256) and for up to 515 ASCII bytes
# (127 * 515 = 65405). FIX messages are ASCII text: a NewOrderSingle or ExecutionReport of
# 257-515 bytes is one adler32 call after a C-speed isascii(), not one per 256-byte chunk.
_ASCII_ONE_CALL: Final = 515


def _checksum(data: bytes, end: int) -> int:
    """CheckSum(10) of data[:end]: the byte sum mod 256, summed in C by zlib.adler32 (above):
    one call for a whole message of up to 256 bytes, or 515 ASCII ones, else one call per
    256-byte chunk."""
    if end == len(data) and (end <= 256 or (end <= _ASCII_ONE_CALL and data.isascii())):
        return (adler32(data) - 1) & 255      # the high half is a multiple of 65536
    view = memoryview(data)
    total = 0
    for start in range(0, end, 256):
        total += (adler32(view[start:min(start + 256, end)]) & 0xFFFF) - 1
    return total & 255


def _frame_checksum(frame: bytes) -> int:
    """CheckSum of a frame (``frame`` ends with its own "10=ddd<SOH>"): for a short frame, the
    sum of all its bytes less the trailer's, which are b"10=", three digits and SOH."""
    n = len(frame)
    if n <= 256 or (n <= _ASCII_ONE_CALL and frame.isascii()):
        trailer = 159 + frame[n - 4] + frame[n - 3] + frame[n - 2]    # "1"+"0"+"="+SOH = 159
        return ((adler32(frame) & 0xFFFF) - 1 - trailer) & 255
    return _checksum(frame, n - 7)


_TRAILERS: Final = tuple(b"10=%03d\x01" % n for n in range(256))   # CheckSum fields, formatted once


# --------------------------------------------------------------------------------------------
# numbers and timestamps


def fix_number(value: float | int) -> str:
    """A Price/Qty as FIX text: no float noise, no exponent, no trailing zeros ('1.1', '100')."""
    if isinstance(value, int):
        return str(value)
    text = f"{value:.10f}".rstrip("0").rstrip(".")
    return text if text not in ("", "-0") else "0"


_MILLIS: Final = tuple(f".{n:03d}" for n in range(1000))   # ".000" .. ".999", formatted once
_DIGITS3: Final = tuple(f"{n:03d}" for n in range(1000))    # "000" .. "999": microseconds' last three


def _round_half_even(x: float) -> int:
    """round(x) for x >= 0, in native arithmetic (compiled, the builtin is a Python call):
    ``x - int(x)`` is exact, so ties are found exactly and go to the even neighbour."""
    n = int(x)
    rest = x - n
    if rest > 0.5 or (rest == 0.5 and n % 2 == 1):
        n += 1
    return n


def utc_timestamp(wall: float, precision: int = 3) -> str:
    """UTCTimestamp as FIX writes it: YYYYMMDD-HH:MM:SS[.sss|.ssssss] (precision 0, 3 or 6).

    The text of a second is formatted once (strftime), and at precision 3 the whole text
    once per millisecond: a session sending several messages in a millisecond reuses it."""
    sec = int(wall)
    if sec > wall:                    # int() truncates: the floor for times before 1970
        sec -= 1
    # round to the microsecond first: float noise must not turn .678912 into .678911
    micros = _round_half_even((wall - sec) * 1_000_000)
    if micros > 999_999:
        micros = 999_999
    last = _LAST
    if precision == 3:
        milli = sec * 1000 + micros // 1000
        cached_milli, stamp = last.milli       # one tuple: never a half-updated pair
        if milli == cached_milli:
            return stamp
        stamp = _second_text(last, sec) + _MILLIS[micros // 1000]
        last.milli = (milli, stamp)
        return stamp
    if precision == 6:       # three strings from tables, joined once (~0.3k instructions, not 1.3k)
        return f"{_second_text(last, sec)}{_MILLIS[micros // 1000]}{_DIGITS3[micros % 1000]}"
    if precision == 0:
        return _second_text(last, sec)
    raise ValueError(f"timestamp precision must be 0, 3 or 6, not {precision}")


def _second_text(last: _Last, sec: int) -> str:
    """'YYYYMMDD-HH:MM:SS' of a UTC second: strftime once a second."""
    cached, text = last.second
    if sec != cached:
        text = time.strftime("%Y%m%d-%H:%M:%S", time.gmtime(sec))
        last.second = (sec, text)
    return text


_days: dict[str, int] = {}   # 'YYYYMMDD' -> epoch seconds of its midnight (bounded below)


def _day_start(date: str) -> int:
    start = _days.get(date)
    if start is None:
        if not (date.isdigit() and date.isascii()):
            raise ValueError(f"bad date {date!r}")
        year, month, day = int(date[:4]), int(date[4:6]), int(date[6:8])
        if not 1 <= month <= 12 or not 1 <= day <= calendar.monthrange(year, month)[1]:
            raise ValueError(f"bad date {date!r}")
        start = calendar.timegm((year, month, day, 0, 0, 0))
        if len(_days) > 1024:
            _days.clear()
        _days[date] = start
    return start


_SCALE: Final = tuple(10 ** n for n in range(10))


def parse_utc_timestamp(text: str) -> float:
    """YYYYMMDD-HH:MM:SS[.f{1,9}] -> epoch seconds; ValueError on a bad format or range.

    Cached (``_LAST``): the last two texts parsed and their values (a message's SendingTime
    is read by validation, then its TransactTime, then the SendingTime again by the session's
    latency check), and the last two whole seconds (a counterparty's timestamps repeat their
    second many times over; SendingTime and TransactTime may be in different seconds)."""
    last = _LAST
    stamp = last.stamp                    # each cache entry one tuple: never a half-updated pair
    if text == stamp[0]:
        return stamp[1]
    before = last.stamp_before
    if text == before[0]:
        return before[1]
    last.stamp_before = stamp
    if len(text) >= 17:
        cached, seconds = last.stamp_second
        if text.startswith(cached):
            value = seconds + _fraction(text)
            last.stamp = (text, value)
            return value
        cached, seconds = last.stamp_second_before
        if text.startswith(cached):
            value = seconds + _fraction(text)
            last.stamp = (text, value)
            return value
    if len(text) < 17 or text[8] != "-" or text[11] != ":" or text[14] != ":":
        raise ValueError(f"bad UTCTimestamp {text!r}")
    time_of_day = _time_of_day(text[9:17])
    frac = _fraction(text)
    seconds = _day_start(text[:8]) + time_of_day
    last.stamp_second_before = last.stamp_second
    last.stamp_second = (text[:17], seconds)
    value = seconds + frac
    last.stamp = (text, value)
    return value


def _fraction(text: str) -> float:
    """The '.f{1,9}' after a UTCTimestamp's seconds (text[17:]) -> a fraction of a second."""
    n = len(text)
    if n == 17:
        return 0.0
    if n == 21 and text[17] == ".":          # milliseconds, the common case: no int() parse
        a, b, c = ord(text[18]) - 48, ord(text[19]) - 48, ord(text[20]) - 48
        if 0 <= a <= 9 and 0 <= b <= 9 and 0 <= c <= 9:
            return (a * 100 + b * 10 + c) / 1000
    digits = text[18:]
    if text[17] != "." or not 1 <= len(digits) <= 9 or not (digits.isdigit() and digits.isascii()):
        raise ValueError(f"bad UTCTimestamp {text!r}")
    return int(digits) / _SCALE[len(digits)]


def _time_of_day(text: str) -> int:
    """HH:MM:SS -> seconds (SS may be 60, a leap second)."""
    hh, mm, ss = text[0:2], text[3:5], text[6:8]
    if not (hh + mm + ss).isdigit() or not (hh + mm + ss).isascii():
        raise ValueError(f"bad time {text!r}")
    h, m, s = int(hh), int(mm), int(ss)
    if h > 23 or m > 59 or s > 60:
        raise ValueError(f"bad time {text!r}")
    return h * 3600 + m * 60 + s
