"""Comparing an expected message (from an E line) with the bytes received (sans-IO).

Strict (QuickFIX) mode: same fields in the same order, values equal, except time fields
(52, 60, 122, 42) and CheckSum (10) compared by pattern. BodyLength written in the script
is compared as written; when the script leaves it out it must equal the length of the
expected body with the received values of the pattern-matched fields (so a counterparty
that writes microseconds, or our placeholders for CompIDs, still compare exactly).
Loose mode: field order ignored, BodyLength not compared, Text(58) by prefix.
Subset mode (the application suite): loose, and fields the expectation does not list are
allowed (a counterparty adds TransactTime, Symbol, ... as it sees fit).
<ANY> and <CAPTURE:name> accept any non-empty value; ``captures`` returns what a
<CAPTURE:name> matched (the first received field with that tag).
In every mode the received CheckSum and BodyLength must be true to the received bytes.
"""
from __future__ import annotations

import re
from collections import defaultdict

from gateway.apps.certify.script import ANY, capture_name, checksum, split_fields

TIME_TAGS = {"52", "60", "122", "42"}
TIME_RE = re.compile(r"\d{8}-\d{2}:\d{2}:\d{2}(\.\d{3}|\.\d{6}|\.\d{9})?")
CHECKSUM_RE = re.compile(r"\d{3}")
STRICT, LOOSE, SUBSET = "strict", "loose", "subset"


def integrity_problem(raw: bytes) -> str | None:
    """What is wrong with the received message's own BodyLength/CheckSum, if anything."""
    try:
        first = raw.index(b"\x01")
        second = raw.index(b"\x01", first + 1)
        declared = int(raw[first + 3:second])
        trailer = raw.rindex(b"\x0110=") + 1
    except ValueError:
        return "received message has no BodyLength/CheckSum structure"
    actual = trailer - (second + 1)
    if declared != actual:
        return f"received BodyLength {declared} but the body is {actual} bytes"
    sent = raw[trailer + 3:-1].decode("latin-1")
    computed = f"{checksum(raw[:trailer]):03d}"
    if sent != computed:
        return f"received CheckSum {sent} but the message sums to {computed}"
    return None


def compare(expected: bytes, received: bytes, mode: str = STRICT, explicit_length: bool = False) -> str | None:
    """None when ``received`` matches ``expected``, else the reason it does not."""
    problem = integrity_problem(received)
    if problem:
        return problem
    exp, got = split_fields(expected), split_fields(received)
    if mode in (LOOSE, SUBSET):
        return _compare_loose(exp, got, extra_allowed=(mode == SUBSET))
    return _compare_strict(exp, got, explicit_length)


def captures(expected: bytes, received: bytes) -> dict[str, str]:
    """{name: value} for every <CAPTURE:name> of ``expected`` (after a successful compare)."""
    got = split_fields(received)
    out = {}
    for tag, value in split_fields(expected):
        name = capture_name(value)
        if name:
            out[name] = next((v for t, v in got if t == tag), "")
    return out


def _is_wildcard(value: str) -> bool:
    return value == ANY or capture_name(value) is not None


def _value_matches(tag: str, want: str, have: str, loose: bool) -> bool:
    if _is_wildcard(want):
        return have != ""
    if tag in TIME_TAGS:
        return TIME_RE.fullmatch(have) is not None
    if tag == "10":
        return CHECKSUM_RE.fullmatch(have) is not None
    if loose and tag == "58":
        return have.startswith(want)
    return want == have


def _value_reason(tag: str, want: str, have: str) -> str:
    if tag in TIME_TAGS:
        return f"field {tag} = {have!r} is not a UTCTimestamp"
    if tag == "10":
        return f"field 10 = {have!r} is not a three-digit CheckSum"
    if _is_wildcard(want):
        return f"field {tag} is empty"
    return f"field {tag} should be {want!r} but was {have!r}"


def _compare_strict(exp: list[tuple[str, str]], got: list[tuple[str, str]], explicit_length: bool) -> str | None:
    if len(exp) != len(got):
        extra = _tag_difference(exp, got)
        return f"expected {len(exp)} fields, received {len(got)}{extra}"
    for i, ((etag, evalue), (gtag, gvalue)) in enumerate(zip(exp, got)):
        if etag != gtag:
            return f"field #{i + 1}: expected tag {etag} but found tag {gtag}"
        if etag == "9":
            continue  # after the other fields: a wrong value elsewhere is the better reason
        if not _value_matches(etag, evalue, gvalue, loose=False):
            return _value_reason(etag, evalue, gvalue)
    if explicit_length:
        want_text, have_text = dict(exp).get("9", ""), dict(got).get("9", "")
        if want_text != have_text:
            return _value_reason("9", want_text, have_text)
    else:
        want = _adjusted_body_length(exp, got)
        have = int(dict(got).get("9", "-1"))
        if want != have:
            return f"field 9 (BodyLength) should be {want} but was {have}"
    return None


def _adjusted_body_length(exp: list[tuple[str, str]], got: list[tuple[str, str]]) -> int:
    """Length of the expected body, taking the received value where a pattern matched."""
    total = 0
    for (etag, evalue), (_, gvalue) in zip(exp[2:-1], got[2:-1]):
        value = gvalue if (_is_wildcard(evalue) or etag in TIME_TAGS) else evalue
        total += len(etag) + 1 + len(value.encode("latin-1")) + 1
    return total


def _tag_difference(exp: list[tuple[str, str]], got: list[tuple[str, str]]) -> str:
    etags, gtags = [t for t, _ in exp], [t for t, _ in got]
    missing = [t for t in etags if t not in gtags]
    extra = [t for t in gtags if t not in etags]
    parts = []
    if missing:
        parts.append("missing " + ",".join(missing))
    if extra:
        parts.append("unexpected " + ",".join(extra))
    return f" ({'; '.join(parts)})" if parts else ""


def _compare_loose(exp: list[tuple[str, str]], got: list[tuple[str, str]], extra_allowed: bool = False) -> str | None:
    received: dict[str, list[str]] = defaultdict(list)
    for tag, value in got:
        if tag != "9":
            received[tag].append(value)
    for tag, want in exp:
        if tag == "9":
            continue
        values = received.get(tag)
        if not values:
            return f"field {tag} missing"
        have = values.pop(0)
        if not _value_matches(tag, want, have, loose=True):
            return _value_reason(tag, want, have) + (" (prefix)" if tag == "58" else "")
    extra = [t for t, vs in received.items() if vs and t != "10"]
    if extra and not extra_allowed:
        return "unexpected field(s) " + ",".join(extra)
    return None
