"""FIX data dictionary (QuickFIX XML format) and QuickFIX-compatible message validation.

Invariants:
- Everything validation needs is precomputed at load: per message type one table
  {tag: (section, checker)} for the fast path, required tags, allowed tags, group layouts
  (nested), per-tag format checkers and enums as frozensets. ``validate`` allocates little.
- ``validate`` raises only ``RemoteFixError`` (``UnsupportedVersion`` for a foreign BeginString),
  with QuickFIX's SessionRejectReason, ref tag and text, checked in QuickFIX's order
  (DataDictionary::validate): BeginString, header/body/trailer order (14), MsgType (11),
  required tags (1: header, trailer, body, then group entries; ascending tag order), then each
  section (header, trailer, body, group entries) in QuickFIX's field order: repeated tag (13),
  no value (4), data format (6), enum value (5), tag not in the dictionary (0), tag not in the
  message type (2), group count (15 first field of an entry, 16 count mismatch).
- The fast path only ever ACCEPTS (a message with no group, no repeat, every tag allowed and
  well formed); on any doubt the careful path runs and decides, so both always agree.
- A Dictionary is immutable after load and shared (``load`` caches per path).
"""
from __future__ import annotations

import functools
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from operator import itemgetter
from pathlib import Path
from typing import Final

from gateway.common.paths import FIX44_XML
from gateway.fix.codec import (
    COMPILED,
    DEFAULT_DATA_TAGS,
    Message,
    _day_start,
    _days,
    _time_of_day,
    ascii_digits,
    parse_utc_timestamp,
)
from gateway.fix.errors import (
    INCORRECT_DATA_FORMAT,
    INCORRECT_NUM_IN_GROUP,
    INVALID_MSGTYPE,
    INVALID_TAG_NUMBER,
    REPEATING_GROUP_FIELDS_OUT_OF_ORDER,
    REQUIRED_TAG_MISSING,
    TAG_APPEARS_MORE_THAN_ONCE,
    TAG_NOT_DEFINED_FOR_MSG_TYPE,
    TAG_OUT_OF_ORDER,
    TAG_WITHOUT_VALUE,
    VALUE_OUT_OF_RANGE,
    RemoteFixError,
    UnsupportedVersion,
    reject,
)

USER_MIN = 5000           # QuickFIX FIELD::UserMin: user-defined tags start here
HEADER, BODY, TRAILER = 0, 1, 2

Checker = Callable[[str], bool]
# The value checks of one accepted tag sequence: (position, checker) for each checked field.
_Plan = tuple[tuple[int, int, frozenset[str], Checker], ...]   # (position, kind, enums, check)
_MAX_SHAPES = 256         # per message type; a peer cycling layouts only clears the cache


# --------------------------------------------------------------------------------------------
# value checkers (QuickFIX's convertors: no '+', no exponent, ASCII digits only)


def _is_int(v: str) -> bool:
    return ascii_digits(v, 1 if v and ord(v[0]) == 45 else 0)     # 45: '-' (no slice made)


def _is_float(v: str) -> bool:
    """[-]digits with at most one '.', at least one digit (QuickFIX: no '+', no exponent)."""
    if not COMPILED:            # interpreted, C calls beat the loop
        if v.isdigit() and v.isascii():
            return True
        text = (v[1:] if v[:1] == "-" else v).replace(".", "", 1)
        return text.isdigit() and text.isascii()
    n = len(v)
    digits = 0
    dot = False
    for i in range(1 if n and ord(v[0]) == 45 else 0, n):         # 45: '-' (no slice made)
        c = ord(v[i])
        if 48 <= c <= 57:
            digits += 1
        elif c == 46 and not dot:      # '.'
            dot = True
        else:
            return False
    return digits > 0


def _is_char(v: str) -> bool:
    return len(v) == 1


def _is_bool(v: str) -> bool:
    return v == "Y" or v == "N"


def _is_timestamp(v: str) -> bool:
    """YYYYMMDD-HH:MM:SS[.f{1,9}]: exactly what parse_utc_timestamp accepts (which checks the
    date and time once per second of SendingTime, cached)."""
    try:
        parse_utc_timestamp(v)
    except ValueError:
        return False
    return True


def _is_date(v: str) -> bool:
    if v in _days:
        return True
    if len(v) != 8:
        return False
    try:
        _day_start(v)
    except ValueError:
        return False
    return True


_TIME_ONLY = re.compile(r"\d\d:\d\d:\d\d(\.\d{1,9})?\Z", re.ASCII)


def _is_time_only(v: str) -> bool:
    if not _TIME_ONLY.match(v):
        return False
    try:
        _time_of_day(v[:8])
    except ValueError:
        return False
    return True


_MONTH_YEAR = re.compile(r"\d{4}(0[1-9]|1[0-2])(\d\d|w[1-5])?\Z", re.ASCII)


def _is_month_year(v: str) -> bool:
    return _MONTH_YEAR.match(v) is not None


_FORMATS: dict[str, Checker] = {
    "INT": _is_int, "LENGTH": _is_int, "NUMINGROUP": _is_int, "SEQNUM": _is_int,
    "DAYOFMONTH": _is_int, "TAGNUM": _is_int,
    "FLOAT": _is_float, "QTY": _is_float, "PRICE": _is_float, "AMT": _is_float,
    "PRICEOFFSET": _is_float, "PERCENTAGE": _is_float,
    "CHAR": _is_char, "BOOLEAN": _is_bool,
    "UTCTIMESTAMP": _is_timestamp, "UTCTIMEONLY": _is_time_only,
    "UTCDATEONLY": _is_date, "UTCDATE": _is_date,
}
# LOCALMKTDATE and MONTHYEAR stay unchecked: the quickfix binding (1.16) validates them as
# strings (64=2024 passes there), and a stricter gateway would reject what QuickFIX accepts.
# _is_month_year is kept for callers that want the check.
_MULTI_VALUE = frozenset({"MULTIPLEVALUESTRING", "MULTIPLESTRINGVALUE", "MULTIPLECHARVALUE"})


def _enum_checker(enums: frozenset[str], multi: bool) -> Checker:
    if multi:   # space-separated values, each from the enum (QuickFIX checkValue)
        return lambda v: enums.issuperset(v.split(" "))
    return enums.__contains__


def _combine(fmt: Checker | None, enum: Checker | None, enums: frozenset[str] | None,
             ) -> Checker | None:
    """Format and enum check in one; the enum alone when all its values are well formed."""
    if fmt is None:
        return enum
    if enum is None:
        return fmt
    if enums is not None and all(map(fmt, enums)):
        return enum
    return lambda v: fmt(v) and enum(v)


# --------------------------------------------------------------------------------------------
# layouts


@dataclass(frozen=True, slots=True)
class GroupSpec:
    """A repeating group: NumInGroup tag, delimiter (first field of every entry), members."""
    count_tag: int
    delim: int
    order: tuple[int, ...]          # entry tags in dictionary order (components expanded)
    fields: frozenset[int]
    required: tuple[int, ...]       # ascending
    groups: dict[int, GroupSpec]    # nested, by count tag


class _Seen:
    """A message type's last planned tag sequence and its plan, one tuple read whole (a
    thread never sees a half-updated pair); mutable, held by the frozen MessageSpec."""

    __slots__ = ("entry",)

    def __init__(self) -> None:
        self.entry: tuple[tuple[int, ...], _Plan | None] = ((), None)


@dataclass(frozen=True, slots=True)
class MessageSpec:
    msg_type: str
    name: str
    admin: bool
    fields: frozenset[int]          # top-level body tags (group count tags included)
    required: tuple[int, ...]       # top-level body tags, ascending
    groups: dict[int, GroupSpec]
    fast: dict[int, tuple[int, Checker | None]] = field(repr=False)   # see _fast_ok
    # tag -> its enum values, where the enum alone is the whole check (the fast path's inline test)
    enums: dict[int, frozenset[str]] = field(repr=False)
    required_all: frozenset[int] = field(repr=False)                   # header+trailer+body
    # tag sequence -> its value checks (or None: take the careful path); see _fast_ok
    shapes: dict[tuple[int, ...], _Plan | None] = field(default_factory=dict, repr=False,
                                                         compare=False)
    # the tag sequence _fast_ok saw last and its plan (a counterparty repeats one)
    seen: _Seen = field(default_factory=_Seen, repr=False, compare=False)



@dataclass(slots=True)
class _Run:
    """One repeating group as found in a message: declared count, entries, first bad tag."""
    spec: GroupSpec
    count: str
    entries: list[tuple[list[tuple[int, str]], list[_Run]]]
    bad_tag: int | None = None


# --------------------------------------------------------------------------------------------


class Dictionary:
    """FIX dictionary loaded from QuickFIX XML; ``validate`` mirrors QuickFIX's DataDictionary."""

    def __init__(self, root: ET.Element):
        self.begin_string = f"{root.get('type', 'FIX')}.{root.get('major')}.{root.get('minor')}"
        self._tags: dict[str, int] = {}
        self._names: dict[int, str] = {}
        self._types: dict[int, str] = {}
        self._enums: dict[int, frozenset[str]] = {}
        self._load_fields(root.find("fields"))
        components = root.find("components")
        self._components = {c.get("name", ""): c for c in (components if components is not None else ())}
        self._formats: dict[int, Checker] = {t: _FORMATS[ty] for t, ty in self._types.items()
                                             if ty in _FORMATS}
        self._enum_checks: dict[int, Checker] = {
            t: _enum_checker(e, self._types.get(t) in _MULTI_VALUE) for t, e in self._enums.items()}
        self._checks: dict[int, Checker | None] = {
            t: _combine(self._formats.get(t), self._enum_checks.get(t),
                        None if self._types.get(t) in _MULTI_VALUE else self._enums.get(t))
            for t in self._names}

        h_order, h_req, self._header_groups = self._members(root.find("header"), True)
        t_order, t_req, self._trailer_groups = self._members(root.find("trailer"), True)
        self._header_required = tuple(sorted(h_req))
        self._trailer_required = tuple(sorted(t_req))
        self.header_tags = frozenset(h_order) | _nested_fields(self._header_groups)
        self.trailer_tags = frozenset(t_order) | _nested_fields(self._trailer_groups)
        self._messages: dict[str, MessageSpec] = {}
        messages = root.find("messages")
        for node in messages if messages is not None else ():
            spec = self._message(node)
            self._messages[spec.msg_type] = spec
        self.msg_types = frozenset(self._messages)
        self.data_tags = self._find_data_tags()
        # every group's NumInGroup tag, at any depth, in any section or message (_prove_shape)
        self._count_tags: frozenset[int] = _count_tags_of(
            [self._header_groups, self._trailer_groups, *(m.groups for m in self._messages.values())])

    # ---- loading

    @classmethod
    def load(cls, path: str | Path = FIX44_XML) -> Dictionary:
        """The dictionary at ``path``, parsed once per process (cached by resolved path)."""
        return _load_cached(str(Path(path).resolve()))

    def _load_fields(self, node: ET.Element | None) -> None:
        for f in node if node is not None else ():
            tag = int(f.get("number", ""))
            name = f.get("name", "")
            self._tags[name] = tag
            self._names[tag] = name
            self._types[tag] = f.get("type", "STRING").upper()
            values = [v.get("enum", "") for v in f if v.get("enum") is not None]
            if values:
                self._enums[tag] = frozenset(values)

    def _members(self, node: ET.Element | None, required_ctx: bool,
                 ) -> tuple[list[int], set[int], dict[int, GroupSpec]]:
        """Tags (dictionary order), required tags and groups of a message/component/group node.

        As QuickFIX: a field inside a component is required only when the component is too.
        """
        order: list[int] = []
        required: set[int] = set()
        groups: dict[int, GroupSpec] = {}
        stack = [(iter(node if node is not None else ()), required_ctx)]
        while stack:   # explicit stack: components nest, bounded by the XML
            children, ctx = stack[-1]
            child = next(children, None)
            if child is None:
                stack.pop()
                continue
            name = child.get("name", "")
            is_req = ctx and child.get("required", "N") in ("Y", "y")
            if child.tag == "component":
                stack.append((iter(self._components[name]), is_req))
                continue
            if child.tag not in ("field", "group"):
                continue
            tag = self._tags[name]
            order.append(tag)
            if is_req:
                required.add(tag)
            if child.tag == "group":
                groups[tag] = self._group(tag, child)
        return order, required, groups

    def _group(self, count_tag: int, node: ET.Element) -> GroupSpec:
        order, required, groups = self._members(node, True)
        return GroupSpec(count_tag=count_tag, delim=order[0], order=tuple(order),
                         fields=frozenset(order), required=tuple(sorted(required)), groups=groups)

    def _message(self, node: ET.Element) -> MessageSpec:
        order, required, groups = self._members(node, True)
        body = frozenset(order) - self.header_tags - self.trailer_tags
        fast: dict[int, tuple[int, Checker | None]] = {}
        for tags, section in ((self.header_tags, HEADER), (body, BODY), (self.trailer_tags, TRAILER)):
            for tag in tags:
                fast[tag] = (section, self._checks.get(tag))
        # group count tags (and header groups) always take the careful path
        for tag in (*groups, *self._header_groups, *self._trailer_groups):
            fast.pop(tag, None)
        return MessageSpec(
            msg_type=node.get("msgtype", ""), name=node.get("name", ""),
            admin=node.get("msgcat") == "admin", fields=body,
            required=tuple(sorted(required & body)), groups=groups, fast=fast,
            enums={t: e for t, e in self._enums.items() if t in fast and fast[t][1] is self._enum_checks.get(t)
                   and self._types.get(t) not in _MULTI_VALUE},
            required_all=frozenset(self._header_required) | frozenset(self._trailer_required)
            | (required & body))

    def _find_data_tags(self) -> dict[int, int]:
        """Length tag -> data tag for every DATA field (SecureDataLen -> SecureData ...)."""
        out = dict(DEFAULT_DATA_TAGS)
        for tag, ty in self._types.items():
            if ty != "DATA":
                continue
            name = self._names[tag]
            for length_name in (name + "Len", name + "Length", name.replace("Data", "DataLength")):
                length_tag = self._tags.get(length_name)
                if length_tag is not None:
                    out[length_tag] = tag
                    break
        return out

    # ---- lookups

    def is_admin(self, msg_type: str) -> bool:
        spec = self._messages.get(msg_type)
        return spec is not None and spec.admin

    def field_name(self, tag: int) -> str | None:
        return self._names.get(tag)

    def tag_of(self, name: str) -> int | None:
        return self._tags.get(name)

    def field_type(self, tag: int) -> str | None:
        return self._types.get(tag)

    def enums(self, tag: int) -> frozenset[str]:
        return self._enums.get(tag, frozenset())

    def message_spec(self, msg_type: str) -> MessageSpec | None:
        return self._messages.get(msg_type)

    def group_entries(self, msg: Message, count_tag: int) -> list[dict[int, str]]:
        """Entries of a top-level repeating group, read with the dictionary's layout
        (nested group fields are left out of the entry; their count tag stays)."""
        spec = self._messages.get(msg.msg_type)
        if spec is None:
            return []
        _, _, body, _ = self._sections(msg.pairs)
        _, runs = _walk(body, spec.groups, False)
        for run in runs:
            if run.spec.count_tag == count_tag:
                return [dict(reversed(fields)) for fields, _ in run.entries]
        return []

    # ---- validation

    def validate(self, msg: Message, *, check_fields_out_of_order: bool = True,
                 check_fields_have_values: bool = True, check_user_defined_fields: bool = True,
                 allow_unknown_msg_fields: bool = False, validate_fields_out_of_order: bool = True,
                 strict_group_order: bool = False) -> None:
        """Raise RemoteFixError with QuickFIX's reason and ref tag, or return None.

        Header/body/trailer order (14) is checked when both order switches are on (settings
        carry only ``validate_fields_out_of_order``). ``strict_group_order`` also requires the
        fields inside a group entry in dictionary order (QuickFIX only requires the delimiter
        first).
        """
        if self._fast_ok(msg):
            return
        self._validate_careful(
            msg, ordered=check_fields_out_of_order and validate_fields_out_of_order,
            have_values=check_fields_have_values, user_defined=check_user_defined_fields,
            allow_unknown=allow_unknown_msg_fields, strict_groups=strict_group_order)
        self._prove_shape(msg)

    def _prove_shape(self, msg: Message) -> None:
        """After a message passed the careful path: if its tag sequence has groups and waits
        to be proved (``_TO_PROVE``), validate it once more with every switch at its strictest.
        Passing, later messages of that sequence take the fast path with their values checked
        and every group count equal to this one's: what the careful path decides besides the
        values (sections, repeats, required tags, where each group entry starts and ends)
        depends only on the tags, so it decides the same for them under any switches."""
        spec = self._messages.get(msg.msg_type)
        if spec is None:
            return
        tags = tuple([tag for tag, _ in msg.pairs])
        shapes = spec.shapes
        if shapes.get(tags) is not _TO_PROVE:
            return
        try:
            self._validate_careful(msg, ordered=True, have_values=True, user_defined=True,
                                   allow_unknown=False, strict_groups=True)
        except RemoteFixError:
            shapes[tags] = None          # valid only under this session's switches: stays careful
            return
        counts = self._count_tags
        checks: list[tuple[int, int, frozenset[str], Checker]] = []
        for i, (tag, value) in enumerate(msg.pairs):
            if tag in counts:            # the count must read exactly as it did here
                checks.append((i, _ENUM, frozenset((value,)), _is_int))
                continue
            check = self._checks.get(tag)
            if check is not None:
                checks.append((i, _KINDS.get(check, _CALL), _NO_ENUMS, check))
        shapes[tags] = tuple(checks)

    def plainly_valid(self, msg: Message) -> bool:
        """True when ``msg`` passes ``validate`` under any switches (no group, no repeat,
        every tag allowed, values well formed, sections in order, required tags present);
        False: ``validate`` decides. The session's fast path asks this first."""
        return self._fast_ok(msg)

    def _fast_ok(self, msg: Message) -> bool:
        """True only for a plainly valid message: no group, no repeat, every tag allowed, values
        well formed, sections in order, required tags present.

        Everything but the values depends only on the sequence of tags, which a counterparty
        repeats message after message: that part is decided once per sequence (``_plan``)."""
        spec = self._messages.get(msg.msg_type)
        if spec is None:
            return False
        shape = msg.shape
        values = msg.values
        if shape is not None and values is not None:
            # A parsed message's layout (codec.Shape: no empty value) carries the plan of
            # its tags for the spec that asked last: no pass over the tags at all.
            if values[0] != self.begin_string:
                return False
            owner, cached = shape.planned
            if owner is not spec:
                plan = self._plan_tags(spec, shape.tags)
                if plan is None or plan is _TO_PROVE:
                    if plan is None:
                        shape.planned = (spec, None)
                    return False
                cached = _Checks(plan)
                shape.planned = (spec, cached)
            return isinstance(cached, _Checks) and cached.ok(values)
        pairs = msg.pairs
        if pairs[0][1] != self.begin_string:
            return False
        plan = self._plan_of(spec, pairs)
        if plan is None or plan is _TO_PROVE:
            return False
        return _values_ok(plan, [value for _, value in pairs])

    def _plan_of(self, spec: MessageSpec, pairs: list[tuple[int, str]]) -> _Plan | None:
        """The plan of ``pairs``' tag sequence (None: careful path), or _TO_PROVE; None too
        for a message with an empty value."""
        # One native pass: no empty value (those take the careful path), and is the tag
        # sequence the one this type had last time? Then its plan is at hand, with no tuple
        # of tags built and hashed.
        seen = spec.seen
        last_tags, plan = seen.entry
        same = len(last_tags) == len(pairs)
        i = 0
        for tag, value in pairs:
            if not value:
                return None
            if same and last_tags[i] != tag:
                same = False
            i += 1
        if same:
            return plan
        return self._plan_tags(spec, tuple([tag for tag, _ in pairs]))

    def _plan_tags(self, spec: MessageSpec, tags: tuple[int, ...]) -> _Plan | None:
        """The plan of a tag sequence (None: careful path), or _TO_PROVE: made once per
        sequence, then looked up."""
        shapes = spec.shapes
        plan = shapes.get(tags, _UNPLANNED)
        if plan is _UNPLANNED:
            plan = _plan(spec, tags)
            if plan is None and not self._count_tags.isdisjoint(tags):
                plan = _TO_PROVE     # groups: the careful path decides, then _prove_shape
            if len(shapes) >= _MAX_SHAPES:
                shapes.clear()
            shapes[tags] = plan
        if plan is not _TO_PROVE:    # (_prove_shape replaces that one in shapes)
            spec.seen.entry = (tags, plan)
        return plan

    def _sections(self, pairs: list[tuple[int, str]]):
        """Header, trailer and body fields by tag (as QuickFIX files them), and the first tag
        out of header-body-trailer order (None if in order)."""
        header, trailer, body = [], [], []
        header_tags, trailer_tags = self.header_tags, self.trailer_tags
        section = HEADER
        misplaced = None
        for pair in pairs:
            tag = pair[0]
            if tag in header_tags:
                header.append(pair)
                where = HEADER
            elif tag in trailer_tags:
                trailer.append(pair)
                where = TRAILER
            else:
                body.append(pair)
                where = BODY
            if where < section and misplaced is None:
                misplaced = tag
            section = max(section, where)
        return header, trailer, body, misplaced

    def _validate_careful(self, msg: Message, *, ordered: bool, have_values: bool,
                          user_defined: bool, allow_unknown: bool, strict_groups: bool) -> None:
        pairs = msg.pairs
        msg_type = msg.msg_type
        if not pairs or pairs[0] != (8, self.begin_string):
            raise UnsupportedVersion("Incorrect BeginString", ref_tag=8, ref_msg_type=msg_type)
        header, trailer, body, misplaced = self._sections(pairs)
        if ordered and misplaced is not None:
            raise reject(TAG_OUT_OF_ORDER, misplaced, msg_type)
        spec = self._messages.get(msg_type)
        if spec is None:
            raise reject(INVALID_MSGTYPE, None, msg_type)

        head_top, head_runs = _walk(header, self._header_groups, strict_groups)
        trail_top, trail_runs = _walk(trailer, self._trailer_groups, strict_groups)
        body_top, body_runs = _walk(body, spec.groups, strict_groups)

        _check_required(self._header_required, head_top, msg_type)
        _check_required(self._trailer_required, trail_top, msg_type)
        _check_required(spec.required, body_top, msg_type)
        for run in sorted(body_runs, key=_run_key):
            _check_required_run(run, msg_type)

        check = functools.partial(self._check_fields, msg_type=msg_type, have_values=have_values,
                                  user_defined=user_defined, allow_unknown=allow_unknown)
        check(sorted(head_top, key=_header_key), head_runs, HEADER, None)
        check(sorted(trail_top, key=_trailer_key), trail_runs, TRAILER, None)
        check(sorted(body_top, key=_TAG), body_runs, BODY, spec.fields)

    def _check_fields(self, fields: list[tuple[int, str]], runs: list[_Run], section: int,
                      allowed: frozenset[int] | None, *, msg_type: str, have_values: bool,
                      user_defined: bool, allow_unknown: bool) -> None:
        """QuickFIX's DataDictionary::iterate over one field map, then its groups."""
        by_count = {run.spec.count_tag: run for run in runs}
        last = None
        for tag, value in fields:
            if tag == last:
                raise reject(TAG_APPEARS_MORE_THAN_ONCE, tag, msg_type)
            last = tag
            if have_values and not value:
                raise reject(TAG_WITHOUT_VALUE, tag, msg_type)
            fmt = self._formats.get(tag)
            if fmt is not None and not fmt(value):
                raise reject(INCORRECT_DATA_FORMAT, tag, msg_type)
            enum = self._enum_checks.get(tag)
            if enum is not None and not enum(value):
                raise reject(VALUE_OUT_OF_RANGE, tag, msg_type)
            if (allow_unknown and tag < USER_MIN) or (not user_defined and tag >= USER_MIN):
                continue
            if tag not in self._names:
                raise reject(INVALID_TAG_NUMBER, tag, msg_type)
            if allowed is not None and tag not in allowed:
                raise reject(TAG_NOT_DEFINED_FOR_MSG_TYPE, tag, msg_type)
            run = by_count.get(tag)
            if run is not None:
                if run.bad_tag is not None:
                    raise reject(REPEATING_GROUP_FIELDS_OUT_OF_ORDER, run.bad_tag, msg_type)
                if not _is_int(run.count) or int(run.count) != len(run.entries):
                    raise reject(INCORRECT_NUM_IN_GROUP, tag, msg_type)
        for run in sorted(runs, key=_run_key):
            for entry_fields, entry_runs in run.entries:
                self._check_fields(sorted(entry_fields, key=_TAG), entry_runs, section, None,
                                   msg_type=msg_type, have_values=have_values,
                                   user_defined=user_defined, allow_unknown=allow_unknown)


def _plan(spec: MessageSpec, tags: tuple[int, ...]) -> _Plan | None:
    """The value checks for messages of this tag sequence, or None when the sequence itself
    needs the careful path (a tag outside the fast table, a repeat, sections out of order, a
    required tag missing)."""
    table = spec.fast
    if len(set(tags)) != len(tags) or not spec.required_all.issubset(tags):
        return None
    checks: list[tuple[int, int, frozenset[str], Checker]] = []
    section = HEADER
    for i, tag in enumerate(tags):
        entry = table.get(tag)
        if entry is None or entry[0] < section:
            return None
        section, check = entry
        if check is not None:
            enums = spec.enums.get(tag)
            if enums is not None:
                checks.append((i, _ENUM, enums, check))
            else:
                checks.append((i, _KINDS.get(check, _CALL), _NO_ENUMS, check))
    return tuple(checks)


_NO_ENUMS: frozenset[str] = frozenset()
_UNPLANNED: Final[_Plan] = ((-1, -1, _NO_ENUMS, _is_int),)   # marks a shape not planned yet
_TO_PROVE: Final[_Plan] = ((-2, -1, _NO_ENUMS, _is_int),)    # a shape with groups, not proved yet
# How _fast_ok runs a check: inline (an enum's frozenset, the common formats) or by a call.
_CALL: Final = 0
_ENUM: Final = 1
_INT: Final = 2
_FLOAT: Final = 3
_TIMESTAMP: Final = 4
_KINDS: dict[Checker, int] = {_is_int: _INT, _is_float: _FLOAT, _is_timestamp: _TIMESTAMP}


# --------------------------------------------------------------------------------------------
# group walk (pure functions over pairs)

_TAG = itemgetter(0)
_VALUE = itemgetter(1)


class _Checks:
    """A plan (_Plan) as _fast_ok runs it on every message of a layout (codec.Shape): the
    positions of each kind of check in a list of their own, the enum sets and other checkers
    beside theirs, so no tuple is unpacked and no kind compared per value. The same checks
    as ``_values_ok`` (the order differs; each check only reads)."""

    __slots__ = ("ints", "floats", "stamps", "enum_at", "enum_sets", "call_at", "calls")

    def __init__(self, plan: _Plan) -> None:
        self.ints: list[int] = []
        self.floats: list[int] = []
        self.stamps: list[int] = []
        self.enum_at: list[int] = []
        self.enum_sets: list[frozenset[str]] = []
        self.call_at: list[int] = []
        self.calls: list[Checker] = []
        for i, kind, enums, check in plan:
            if kind == _ENUM:
                self.enum_at.append(i)
                self.enum_sets.append(enums)
            elif kind == _INT:
                self.ints.append(i)
            elif kind == _FLOAT:
                self.floats.append(i)
            elif kind == _TIMESTAMP:
                self.stamps.append(i)
            else:
                self.call_at.append(i)
                self.calls.append(check)

    def ok(self, values: list[str]) -> bool:
        for at in self.ints:
            if not _is_int(values[at]):
                return False
        for at in self.floats:
            if not _is_float(values[at]):
                return False
        sets = self.enum_sets
        k = 0
        for at in self.enum_at:
            if values[at] not in sets[k]:
                return False
            k += 1
        for at in self.stamps:
            if not _is_timestamp(values[at]):
                return False
        calls = self.calls
        k = 0
        for at in self.call_at:
            if not calls[k](values[at]):
                return False
            k += 1
        return True


def _values_ok(plan: _Plan | None, values: list[str]) -> bool:
    """The value checks of a plan on a message's values in wire order (None or _TO_PROVE:
    not plainly valid)."""
    if plan is None or plan is _TO_PROVE:
        return False
    for i, kind, enums, check in plan:     # the common checks inline, the rest called
        value = values[i]
        if kind == _ENUM:
            if value not in enums:
                return False
        elif kind == _FLOAT:
            if not _is_float(value):
                return False
        elif kind == _INT:
            if not _is_int(value):
                return False
        elif kind == _TIMESTAMP:
            if not _is_timestamp(value):
                return False
        elif not check(value):
            return False
    return True


def _header_key(pair: tuple[int, str]) -> int:
    return -1 if pair[0] == 35 else pair[0]      # QuickFIX: 8, 9, 35, then ascending


def _trailer_key(pair: tuple[int, str]) -> int:
    return 1 << 30 if pair[0] == 10 else pair[0]  # CheckSum last


def _run_key(run: _Run) -> int:
    return run.spec.count_tag


def _count_tags_of(layouts: list[dict[int, GroupSpec]]) -> frozenset[int]:
    out: set[int] = set()
    todo = [g for groups in layouts for g in groups.values()]
    while todo:
        g = todo.pop()
        out.add(g.count_tag)
        todo.extend(g.groups.values())
    return frozenset(out)


def _nested_fields(groups: dict[int, GroupSpec]) -> frozenset[int]:
    out: set[int] = set()
    todo = list(groups.values())
    while todo:
        g = todo.pop()
        out |= g.fields
        todo.extend(g.groups.values())
    return frozenset(out)


def _walk(items: list[tuple[int, str]], groups: dict[int, GroupSpec], strict: bool,
          ) -> tuple[list[tuple[int, str]], list[_Run]]:
    """Top-level fields of a section and the groups found in it (entries nested)."""
    top: list[tuple[int, str]] = []
    runs: list[_Run] = []
    i, n = 0, len(items)
    while i < n:   # bounded: i strictly increases (here or in _walk_group)
        tag, value = items[i]
        top.append(items[i])
        i += 1
        spec = groups.get(tag)
        if spec is not None:
            run, i = _walk_group(spec, value, items, i, strict)
            runs.append(run)
    return top, runs


def _walk_group(spec: GroupSpec, count: str, items: list[tuple[int, str]], i: int, strict: bool,
                ) -> tuple[_Run, int]:
    """Consume the entries of one group from items[i:]; the group ends at a non-member tag.

    An entry starts at the delimiter. A member tag where no entry has begun, a tag repeated
    inside an entry (QuickFIX starts a new entry there) or, when ``strict``, a tag before its
    predecessor in dictionary order marks the run with ``bad_tag`` (reason 15).
    """
    run = _Run(spec, count, [])
    fields: list[tuple[int, str]] | None = None
    seen: set[int] = set()
    rank = {t: k for k, t in enumerate(spec.order)} if strict else None
    last_rank = -1
    n = len(items)
    while i < n:
        tag, value = items[i]
        if tag not in spec.fields:
            break
        if tag == spec.delim or fields is None or tag in seen:
            if tag != spec.delim and run.bad_tag is None:
                run.bad_tag = tag
            fields = []
            nested: list[_Run] = []
            run.entries.append((fields, nested))
            seen = set()
            last_rank = -1
        if rank is not None:
            if rank[tag] < last_rank and run.bad_tag is None:
                run.bad_tag = tag
            last_rank = rank[tag]
        seen.add(tag)
        fields.append(items[i])
        i += 1
        sub = spec.groups.get(tag)
        if sub is not None:
            sub_run, i = _walk_group(sub, value, items, i, strict)
            run.entries[-1][1].append(sub_run)
    return run, i


def _check_required(required: Iterable[int], fields: list[tuple[int, str]], msg_type: str) -> None:
    present = {tag for tag, _ in fields}
    for tag in required:
        if tag not in present:
            raise reject(REQUIRED_TAG_MISSING, tag, msg_type)


def _check_required_run(run: _Run, msg_type: str) -> None:
    for fields, nested in run.entries:
        _check_required(run.spec.required, fields, msg_type)
        for sub in sorted(nested, key=_run_key):
            _check_required_run(sub, msg_type)


@functools.lru_cache(maxsize=8)
def _load_cached(path: str) -> Dictionary:
    return Dictionary(ET.parse(path).getroot())


__all__ = ["Dictionary", "GroupSpec", "MessageSpec", "RemoteFixError", "USER_MIN"]
