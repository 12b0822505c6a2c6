"""Codec: framing, parse checks, data fields read by length, encode, timestamps, numbers."""
from __future__ import annotations

import time

import pytest

from gateway.fix.codec import (
    Framer,
    Message,
    encode,
    fix_number,
    parse,
    parse_utc_timestamp,
    utc_timestamp,
)
from gateway.fix.errors import INVALID_TAG_NUMBER, GarbledMessage, LocalFixError, RemoteFixError

HEADER = "49=CLIENT\x0156=GW\x0134=7\x0152=20240102-03:04:05.678\x01"


def wire(body: str = "11=A\x0155=EURUSD\x0154=1\x01", msg_type: str = "D") -> bytes:
    return encode("FIX.4.4", msg_type, HEADER, body)


def frame_by_hand(fields: str, body_len: int | None = None, checksum: int | None = None) -> bytes:
    """8=FIX.4.4 + 9 + fields + 10, with optional wrong BodyLength/CheckSum."""
    body = fields.encode("latin-1")
    head = b"8=FIX.4.4\x019=%d\x01" % (len(body) if body_len is None else body_len)
    data = head + body
    cks = sum(data) & 255 if checksum is None else checksum
    return data + b"10=%03d\x01" % cks


def test_encode_computes_body_length_and_checksum():
    data = wire()
    assert data.startswith(b"8=FIX.4.4\x019=")
    msg = parse(data)
    assert msg.msg_type == "D"
    assert msg.get(55) == "EURUSD" and msg[11] == "A" and 54 in msg
    assert msg.seq_num == 7 and not msg.poss_dup and not msg.poss_resend
    assert msg.raw == data
    assert [t for t, _ in msg.pairs][:3] == [8, 9, 35] and msg.pairs[-1][0] == 10


def test_encode_refuses_text_that_is_not_latin1():
    with pytest.raises(LocalFixError):
        encode("FIX.4.4", "D", HEADER, "58=\u20ac\x01")


def test_every_byte_survives_a_round_trip():
    text = "".join(chr(b) for b in range(2, 256) if b != ord("="))
    msg = parse(wire(f"58={text}\x01"))
    assert msg.get(58) == text


def test_get_is_the_first_occurrence_and_pairs_keep_repeats():
    msg = parse(wire("386=2\x01336=A\x01336=B\x01"))
    assert msg.get(336) == "A"
    assert [v for t, v in msg.pairs if t == 336] == ["A", "B"]
    assert msg.get(999) is None and msg.get(999, "x") == "x"
    with pytest.raises(KeyError):
        msg[999]


def test_groups_simple_reader():
    msg = parse(wire("55=X\x01453=2\x01448=P1\x01447=D\x01452=1\x01448=P2\x01447=D\x0160=t\x01"))
    assert msg.groups(453, 448, tags=(448, 447, 452)) == [
        {448: "P1", 447: "D", 452: "1"}, {448: "P2", 447: "D"}]


def test_bad_checksum_is_garbled():
    data = bytearray(wire())
    data[-4:-1] = b"%03d" % ((int(data[-4:-1]) + 1) % 256)
    with pytest.raises(GarbledMessage):
        parse(bytes(data))


def test_wrong_body_length_is_garbled():
    with pytest.raises(GarbledMessage):
        parse(frame_by_hand("35=0\x0149=A\x0156=B\x0134=2\x01", body_len=5))


def test_first_three_fields_out_of_order_is_garbled():
    with pytest.raises(GarbledMessage):
        parse(frame_by_hand("34=2\x0135=0\x0149=A\x0156=B\x01"))


def test_ill_formed_field_after_framing_is_rejected_not_ignored():
    with pytest.raises(RemoteFixError) as err:
        parse(frame_by_hand("35=0\x0149=A\x01abc=1\x0156=B\x01"))
    assert not isinstance(err.value, GarbledMessage)
    assert err.value.reject_reason == INVALID_TAG_NUMBER
    with pytest.raises(RemoteFixError) as err:
        parse(frame_by_hand("35=0\x0149=A\x01noequals\x0156=B\x01"))
    assert err.value.reject_reason == INVALID_TAG_NUMBER


def test_negative_and_zero_tags_parse_for_the_dictionary_to_reject():
    msg = parse(frame_by_hand("35=0\x0149=A\x01-1=HI\x010=HI\x01"))
    assert (-1, "HI") in msg.pairs and (0, "HI") in msg.pairs


def test_secure_data_is_read_by_length():
    secret = "35=D\x0110=000\x0156=X"
    msg = parse(wire(f"90={len(secret)}\x0191={secret}\x0158=after\x01", msg_type="0"))
    assert msg.get(91) == secret
    assert msg.get(58) == "after" and msg.get(56) == "GW" and msg.msg_type == "0"
    assert [t for t, _ in msg.pairs].count(35) == 1


def test_data_field_shorter_than_its_length_is_rejected():
    with pytest.raises(RemoteFixError):
        parse(wire("90=50\x0191=short\x01", msg_type="0"))


def test_framer_splits_a_stream_fed_byte_by_byte():
    stream = wire() + wire("112=T\x01", "1")
    framer = Framer()
    out = []
    for i in range(len(stream)):
        framer.feed(stream[i:i + 1])
        frame = framer.next_message()
        if frame is not None:
            out.append(frame)
    assert out == [wire(), wire("112=T\x01", "1")] and framer.garbled == 0


def test_framer_skips_junk_and_counts_it():
    framer = Framer()
    framer.feed(b"garbage\x01" + wire() + b"8=FIX.4.4\x019=abc\x01junk" + wire())
    assert framer.next_message() == wire()
    assert framer.next_message() == wire()
    assert framer.next_message() is None
    assert framer.garbled == 2


def test_framer_skips_a_frame_whose_body_length_is_wrong():
    bad = frame_by_hand("35=0\x0149=A\x0156=B\x0134=2\x01", body_len=3)
    framer = Framer()
    framer.feed(bad + wire())
    assert framer.next_message() == wire()
    assert framer.garbled == 1


def test_framer_skips_an_oversized_frame():
    framer = Framer(max_message_size=100)
    framer.feed(b"8=FIX.4.4\x019=5000\x01" + b"x" * 200 + wire())
    assert framer.next_message() == wire()
    assert framer.garbled == 1
    assert framer.buffered == 0


def test_framer_junk_without_a_begin_string_is_linear_and_bounded():
    framer = Framer()
    chunk = b"\x01x=y" * 16384                  # 64 KiB without "8="
    start = time.perf_counter()
    for _ in range(960):                        # 60 MiB
        framer.feed(chunk)
        assert framer.next_message() is None
        assert framer.buffered < 8
    framer.feed(wire())
    assert framer.next_message() == wire()
    assert time.perf_counter() - start < 3.0
    assert framer.garbled == 1


def test_framer_begin_string_split_across_feeds():
    framer = Framer()
    data = b"junk" + wire()
    framer.feed(data[:6])                       # "junk8="
    assert framer.next_message() is None
    framer.feed(data[6:])
    assert framer.next_message() == wire()


def test_framer_eof_drops_a_partial_frame():
    framer = Framer()
    framer.feed(wire()[:30])
    assert framer.next_message() is None
    framer.feed(b"")
    assert framer.next_message() is None
    assert framer.garbled == 1 and framer.buffered == 0


def test_build_from_pairs_and_from_text_agree():
    a = Message.build("D", [(11, "A"), (38, 100), (44, 1.1), (54, "1")])
    b = Message.build("D", "11=A\x0138=100\x0144=1.1\x0154=1\x01")
    assert a.pairs == b.pairs and a.body_text() == b.body_text() == "11=A\x0138=100\x0144=1.1\x0154=1\x01"
    assert a.msg_type == "D" and a.get(38) == "100" and a.raw == b""
    with pytest.raises(LocalFixError):
        Message.build("D", "11=A")


def test_fix_number():
    assert fix_number(1.1) == "1.1"
    assert fix_number(100) == "100"
    assert fix_number(100.0) == "100"
    assert fix_number(1e-7) == "0.0000001"
    assert fix_number(-0.0) == "0"
    assert "e" not in fix_number(1e20)


def test_utc_timestamp_precisions_and_round_trip():
    wall = 1704164645.678912
    assert utc_timestamp(wall, 0) == "20240102-03:04:05"
    assert utc_timestamp(wall) == "20240102-03:04:05.678"
    assert utc_timestamp(wall, 6) == "20240102-03:04:05.678912"
    assert parse_utc_timestamp("20240102-03:04:05.678") == pytest.approx(1704164645.678)
    assert parse_utc_timestamp("20240102-03:04:05") == 1704164645
    for bad in ("20241302-03:04:05", "20240102-24:00:00", "20240102 03:04:05", "2024010-03:04:05",
                "20240102-03:04:05.", "20240230-00:00:00", "20240102-03:04:05.1234567890"):
        with pytest.raises(ValueError):
            parse_utc_timestamp(bad)


def test_non_ascii_digits_never_escape_as_value_error():
    sup = "\u00b2"     # '²': str.isdigit() is True, int() refuses it
    assert parse(frame_by_hand(f"35=0\x0149=A\x0134={sup}\x01")).seq_num is None
    msg = parse(frame_by_hand(f"35=0\x0149=A\x0190={sup}\x0191=x\x01"))
    assert msg.get(91) == "x"
    with pytest.raises(RemoteFixError):
        parse(frame_by_hand(f"35=0\x0149=A\x01{sup}=x\x01"))
    data = bytearray(frame_by_hand("35=0\x0149=A\x01"))
    data[12] = 0xB2                             # BodyLength digit -> '²'
    with pytest.raises(GarbledMessage):
        parse(bytes(data))


def test_framer_too_long_body_length_swallows_the_next_message_as_quickfix():
    """Certification 2m: a too-long 9= ends at the next message's 10=; the one after survives."""
    long_ = frame_by_hand("35=1\x0134=4\x0149=A\x0156=B\x01112=LONG\x01", body_len=50)
    swallowed = wire("112=SWALLOWED\x01", "1")
    four = wire("112=FOUR\x01", "1")
    framer = Framer()
    framer.feed(long_)
    assert framer.next_message() is None        # 10= is not where 9= says: wait for more
    framer.feed(swallowed)
    assert framer.next_message() is None and framer.garbled == 1
    framer.feed(four)
    assert framer.next_message() == four and framer.next_message() is None


def test_framer_wrong_body_length_waits_without_rescanning():
    framer = Framer(max_message_size=1 << 20)
    framer.feed(frame_by_hand("35=1\x01", body_len=2)[:-8])   # no CheckSum yet
    for _ in range(200):
        framer.feed(b"x" * 4096)
        assert framer.next_message() is None
    framer.feed(b"\x0110=000\x01" + wire())
    assert framer.next_message() == wire() and framer.garbled == 1


def test_parse_paths_agree_with_the_careful_reader():
    """parse reads tags byte by byte when compiled, by split + partition when interpreted;
    each may decline (None) but never differs from the careful reader."""
    from gateway.fix import codec
    every = "".join(chr(b) for b in range(2, 256) if b != ord("="))
    frames = [wire(), wire("58=a=b==\x01"), wire(f"58={every}\x01"), wire("58=\x01"),
              wire("386=2\x01336=A\x01336=B\x01"), wire("90=3\x0191=a\x01b\x0158=c\x01", "0"),
              frame_by_hand("35=0\x0149=A\x01035=x\x0156=B\x01"),
              frame_by_hand("35=0\x0149=A\x01-1=HI\x010=HI\x01"),
              frame_by_hand("35=0\x0149=A\x0112345=x\x011234567890=y\x01"),
              frame_by_hand("35=0\x0149=A\x01+1=x\x01"), frame_by_hand("35=0\x0149=A\x01=x\x01")]
    tags = codec.DEFAULT_DATA_TAGS
    for frame in frames:
        text = frame.decode("latin-1")
        soh1 = text.find("\x01")
        soh2 = text.find("\x01", soh1 + 1)
        try:
            careful = codec._split_careful(text, tags)
        except RemoteFixError:
            careful = None
        msg = codec._split_bytes(frame, text, soh1, soh2, codec._data_flags(tags))
        by_bytes = msg.pairs if msg is not None else None
        read: list[int] = []
        values = codec._split_fast(text, codec._tag_table(tags), read)
        by_text = list(zip(read, values)) if values is not None else None
        for pairs in (by_bytes, by_text):
            assert pairs is None or pairs == careful, frame
    assert codec._split_bytes(wire(), *_sohs(wire()), codec._data_flags(tags)) is not None
    assert codec._split_fast(wire().decode("latin-1"), codec._tag_table(tags), []) is not None


def _sohs(frame: bytes) -> tuple[str, int, int]:
    text = frame.decode("latin-1")
    soh1 = text.find("\x01")
    return text, soh1, text.find("\x01", soh1 + 1)


def test_parse_utc_timestamp_interleaving_seconds_and_repeats_matches_a_careful_parse():
    """SendingTime and TransactTime of one message in different seconds, read in the order
    validation and the session read them (52, 60, 52): every answer as a fresh parse gives."""
    import calendar
    import random
    import time as time_mod

    def careful(text: str) -> float:
        whole = calendar.timegm(time_mod.strptime(text[:17], "%Y%m%d-%H:%M:%S"))
        return whole + (int(text[18:]) / 10 ** len(text[18:]) if len(text) > 17 else 0.0)

    rng = random.Random(7)
    texts = []
    for _ in range(300):
        base = rng.choice([1704164645, 1704164646, 1735689599, 1735689600, 946684800])
        sending = time_mod.strftime("%Y%m%d-%H:%M:%S", time_mod.gmtime(base)) + f".{rng.randrange(1000):03d}"
        transact = time_mod.strftime("%Y%m%d-%H:%M:%S", time_mod.gmtime(base - rng.choice([0, 1, 3600]))) + \
            rng.choice(["", f".{rng.randrange(10 ** 6):06d}", f".{rng.randrange(1000):03d}"])
        texts += [sending, transact, sending, transact, transact]
    for text in texts:
        assert parse_utc_timestamp(text) == pytest.approx(careful(text), abs=1e-9), text
    with pytest.raises(ValueError):
        parse_utc_timestamp(texts[0][:16])         # a bad text after cached ones still fails
    assert parse_utc_timestamp(texts[0]) == pytest.approx(careful(texts[0]), abs=1e-9)


def test_seq_number_takes_ascii_digits_only():
    from gateway.fix.codec import seq_number
    assert seq_number("1") == 1 and seq_number("0042") == 42 and seq_number("987654321") == 987654321
    assert seq_number("9" * 18) == 10 ** 18 - 1 and seq_number("12345678901234567890") == 12345678901234567890
    for bad in (None, "", "-1", "+1", " 1", "1 ", "1.0", "1_0", "\u0661", "12a", "1" * 30 + "x"):
        assert seq_number(bad) is None, bad


def test_shape_a_layout_shared_by_messages_with_the_same_tags():
    """A parsed message of plain fields carries its layout (codec.Shape): one object per tag
    sequence, reused for the next message with the same tags and not for one that differs
    (same MsgType, a field more, fewer, moved or renumbered); get() reads by its positions,
    the first occurrence winning, as the index does."""
    a1 = parse(wire("11=A\x0155=EURUSD\x0154=1\x01"))
    a2 = parse(wire("11=B\x0155=USDJPY\x0154=2\x01"))
    assert a1.shape is not None and a2.shape is a1.shape
    variants = ["11=C\x0155=EURUSD\x01", "11=C\x0155=EURUSD\x0154=1\x0158=x\x01",
                "55=EURUSD\x0111=C\x0154=1\x01", "11=C\x0155=EURUSD\x0155=GBPUSD\x01",
                "11=C\x0155=EURUSD\x0199999999=1\x01", "11=C\x01155=EURUSD\x0154=1\x01"]
    for body in variants:
        m = parse(wire(body))
        assert m.shape is not a1.shape, body
        if m.shape is None:       # interpreted, a tag over 9999 takes the careful path
            assert "99999999" in body
            continue
        assert m.shape.tags == tuple(t for t, _ in m.pairs)
        for tag, _ in m.pairs:
            assert m.get(tag) == m.index[tag], (body, tag)
        assert m.get(12345) is None and m.get(12345, "d") == "d" and 12345 not in m
        again = parse(wire(body))
        assert again.shape is m.shape
        assert parse(wire("11=A\x0155=EURUSD\x0154=1\x01")).shape is a1.shape
    b = parse(wire("11=B\x0155=USDJPY\x0154=2\x01"))
    assert (b[11], b.get(55), b.get(54), b.seq_num, b.get(49)) == ("B", "USDJPY", "2", b.seq_num, b.get(49))
    assert b.get(55) == "USDJPY" and b.index[55] == "USDJPY"
    dup = parse(wire("11=C\x0155=EURUSD\x0155=GBPUSD\x01"))
    assert dup.get(55) == "EURUSD"        # the first occurrence
    # the same tags under another MsgType: its own lookup, the same layout object
    assert parse(wire("11=A\x0155=EURUSD\x0154=1\x01", "G")).shape.tags[3:] == a1.shape.tags[3:]
    # no layout where a field is not plain: an empty value, a data field (read by length)
    assert parse(wire("11=A\x0158=\x01")).shape is None
    assert parse(wire("90=3\x0191=a\x01b\x0158=c\x01", "0")).shape is None
    # a built message has none either; its reads work as before
    built = Message.build("D", [(11, "X"), (55, "Y")])
    assert built.shape is None and built[11] == "X" and built.get(55) == "Y"


def test_shape_cache_is_bounded():
    from gateway.fix import codec
    for i in range(codec._MAX_SHAPES + 10):
        parse(wire(f"11=A\x01{5000 + i}=x\x01"))
    assert len(codec._SHAPES) <= codec._MAX_SHAPES
    assert len(codec._LAST_SHAPE) <= codec._MAX_SHAPES


def test_checksum_is_the_byte_sum_at_every_length_ascii_or_not():
    from gateway.fix.codec import _checksum, _frame_checksum
    import random
    rng = random.Random(7)
    for n in (1, 255, 256, 257, 300, 514, 515, 516, 700, 2000):
        for alphabet in (bytes(range(1, 128)), bytes(range(256))):
            data = bytes(rng.choice(alphabet) for _ in range(n))
            assert _checksum(data, n) == sum(data) % 256
            assert _checksum(data, n - 1) == sum(data[:-1]) % 256
            frame = data + b"10=%03d\x01" % (sum(data) % 256)
            assert _frame_checksum(frame) == sum(data) % 256
    worst = b"\x7f" * 515                      # the largest ASCII sum one call may see
    assert _checksum(worst, 515) == sum(worst) % 256


def test_parsed_values_pairs_and_reads_by_layout():
    """A parsed message of plain fields keeps its values beside its layout: pairs (built on
    first read) equal the careful reader's, get() reads the first occurrence by the layout's
    byte table, a big tag and a field past position 254 by its dict."""
    from gateway.fix import codec
    body = ("11=A\x0155=EURUSD\x01" + "".join(f"{5000 + i}=v{i}\x01" for i in range(300))
            + "58=a\x0158=b\x019876=big\x01")
    frame = wire(body)
    m = parse(frame)
    assert m.shape is not None and m.values is not None
    careful = codec._split_careful(frame.decode("latin-1"), codec.DEFAULT_DATA_TAGS)
    assert m.pairs == careful and m.pairs is m.pairs
    assert m.get(58) == "a" and m.get(9876) == "big" and m.get(5299) == "v299"
    assert m.get(5000) == "v0" and m.get(7) is None and m.get(7, "x") == "x"
    assert m.get(-1) is None and m.get(1 << 40) is None
    assert m.get(35) == m.msg_type and 11 in m and m[55] == "EURUSD"
    again = parse(frame)               # the same layout: shared, the same reads
    assert again.shape is m.shape and again == m and again.get(5299) == "v299"
