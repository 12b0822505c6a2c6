"""Bounded, seeded fuzz of Framer + parse + validate: only FixError subclasses ever escape, and a
valid message sent after the junk is still found."""
from __future__ import annotations

import random
import time

from gateway.fix.codec import Framer, encode, parse
from gateway.fix.dictionary import Dictionary
from gateway.fix.errors import FixError

HEADER = "49=CLIENT\x0156=GW\x0134=2\x0152=20240102-03:04:05.678\x01"
BODIES = [
    ("D", "11=A\x0121=1\x0138=1000\x0140=2\x0144=1.1\x0154=1\x0155=EURUSD\x0160=20240102-03:04:05\x01"),
    ("D", "11=A\x0138=1\x0140=1\x0154=2\x0155=X\x0160=20240102-03:04:05\x01453=1\x01448=P\x01447=D\x01"),
    ("0", "112=T\x01"),
    ("R", "131=Q\x01146=2\x0155=A\x01454=1\x01455=S\x0155=B\x01"),
    ("0", "90=5\x0191=\x01=\x0135\x01"),
    ("A", "98=0\x01108=30\x01"),
]
ALPHABET = b"0123456789=\x01ABCDEFGHIX.-|\xb2\xb9\xff "
SENTINEL = encode("FIX.4.4", "1", HEADER, "112=SENTINEL\x01")


def mutate(rng: random.Random, data: bytes) -> bytes:
    """One of: flip bytes, truncate, splice, insert junk, duplicate a slice, random bytes."""
    buf = bytearray(data)
    kind = rng.randrange(6)
    if kind == 0:
        for _ in range(rng.randint(1, 4)):
            buf[rng.randrange(len(buf))] = rng.choice(ALPHABET)
    elif kind == 1:
        del buf[rng.randrange(len(buf)):]
    elif kind == 2:
        i = rng.randrange(len(buf))
        buf[i:i] = bytes(rng.choice(ALPHABET) for _ in range(rng.randint(1, 12)))
    elif kind == 3:
        i, j = sorted(rng.randrange(len(buf) + 1) for _ in range(2))
        buf[j:j] = buf[i:j]
    elif kind == 4:
        i, j = sorted(rng.randrange(len(buf) + 1) for _ in range(2))
        del buf[i:j]
    else:
        buf = bytearray(rng.randbytes(rng.randint(0, 80)))
    return bytes(buf)


def check(dd: Dictionary, frame: bytes) -> None:
    try:
        dd.validate(parse(frame))
    except FixError:
        pass


def test_fuzz_only_fix_errors_escape_and_sentinel_survives():
    rng = random.Random(20240102)
    dd = Dictionary.load()
    start = time.perf_counter()
    seen = 0
    for round_no in range(3000):
        msg_type, body = rng.choice(BODIES)
        data = mutate(rng, encode("FIX.4.4", msg_type, HEADER, body))
        check(dd, data)
        if round_no % 3 == 0:
            # valid framing around a mutated inside: exercises parse + validate, not just framing
            inner = body.encode("latin-1")
            inner = mutate(rng, inner) if inner else inner
            check(dd, encode("FIX.4.4", msg_type, HEADER, inner.decode("latin-1")))
        framer = Framer(max_message_size=4096)
        stream = data + SENTINEL
        cut = rng.randrange(len(stream) + 1)
        framer.feed(stream[:cut])
        framer.feed(stream[cut:])
        frames = []
        while (frame := framer.next_message()) is not None:
            frames.append(frame)
            check(dd, frame)
        if frames and frames[-1] == SENTINEL:
            seen += 1
        else:
            # a mutated BodyLength (<= max_message_size) may claim the sentinel's bytes: once
            # that many more bytes arrive, the frame fails and a later sentinel is found
            framer.feed(SENTINEL * (4096 // len(SENTINEL) + 2))
            more = []
            while (frame := framer.next_message()) is not None:
                more.append(frame)
            assert SENTINEL in more, (data, frames)
    assert seen > 1800     # a mutated, too-long BodyLength swallows the sentinel (QuickFIX rule)
    assert time.perf_counter() - start < 10


def test_valid_frame_after_each_kind_of_garbage():
    framer = Framer()
    garbage = [b"", b"8=FIX", b"8=FIX.4.4\x019=", b"8=FIX.4.4\x019=x\x01", b"\x01\x01\x01",
               b"8=FIX.4.4\x019=5\x0135=0\x0110=000\x01", b"8=FIX.4.4\x01" + b"x" * 100]
    for junk in garbage:
        framer.feed(junk + SENTINEL)
        frames = []
        while (frame := framer.next_message()) is not None:
            frames.append(frame)
        assert frames[-1] == SENTINEL and len(frames) <= 2, junk   # at most a framed bad checksum
