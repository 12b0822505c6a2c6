"""Scenario scripts in the QuickFIX acceptance test format (sans-IO: parsing and rendering).

One step per line:
- ``iCONNECT`` / ``iDISCONNECT``: open / close our connection;
- ``eDISCONNECT``: expect the counterparty to close it;
- ``I<fields>``: send a message; ``E<fields>``: expect the next message received;
- ``#``: a comment; blank lines are ignored;
- a digit and a comma after the letter (``i2,CONNECT``, ``I2,``, ``E2,``) address another connection.

Fields are separated by SOH (0x01); ``|`` is accepted too when a line holds no SOH, so
that people can write scripts in an ordinary editor. Placeholders:
``<TIME>``, ``<TIME+N>``, ``<TIME-N>`` (UTC now, offset in seconds; whole seconds
``YYYYMMDD-HH:MM:SS`` as QuickFIX's runner writes them when the script fixes a BodyLength
anywhere, milliseconds otherwise), ``<SENDER>`` (our
CompID), ``<TARGET>`` (the counterparty's), ``<RUNID>`` (a token unique to the run, for
ClOrdIDs a venue must not have seen before), ``<HEARTBEAT>`` (HeartBtInt from the command
line), ``<LEN+N>``/``<LEN-N>``/``<LEN>`` (only as a BodyLength value: the true length
plus or minus N, to send a wrong one on purpose) and, in ``E`` lines only, ``<ANY>`` (any
non-empty value, for free text whose wording is the counterparty's choice),
``<CAPTURE:name>`` (E lines only: any non-empty value, remembered as ``name``) and
``<VAR:name>`` / ``<VAR:name+N>`` (the value captured earlier in the same scenario, plus N
when it is an integer; in I lines it is sent, in E lines it must be received exactly).

``eCONNECT`` (certifying an initiator: wait for it to connect to us) opens a connection
like ``iCONNECT``; a script uses one or the other. Directives in comments, which QuickFIX's
runner ignores: ``#@suite NAME`` (the report's suite name) and ``#@compare strict|loose|subset``.

BodyLength(9) and CheckSum(10) are computed when absent; an ``I`` line that writes them
is sent as written. A line that does not start with ``8=`` is sent exactly as written.
"""
from __future__ import annotations

import datetime as _dt
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping

SOH = "\x01"
LINE_RE = re.compile(r"^([IEie])(?:(\d),)?(.*)$", re.S)
# <NAME>, <NAME+N>, <NAME:var>, <NAME:var+N>
PLACEHOLDER_RE = re.compile(r"<([A-Z]+)(?::([A-Za-z0-9_]+))?(?:([+-])(\d+))?>")
PLACEHOLDERS = {"TIME", "SENDER", "TARGET", "HEARTBEAT", "LEN", "ANY", "CAPTURE", "VAR", "RUNID"}
ANY = "\x00ANY\x00"  # marks an <ANY> value after rendering (never valid on the wire)
CAPTURE_PREFIX = "\x00CAPTURE:"  # <CAPTURE:name> renders as CAPTURE_PREFIX + name + "\x00"
FIXED_LENGTH_RE = re.compile(r"8=[^\x01]*\x019=\d+\x01")  # a message whose BodyLength is written as a number
DIRECTIVE_RE = re.compile(r"^#@(suite|compare)\s+(.+?)\s*$")
SUITE_ACCEPTOR, SUITE_INITIATOR, SUITE_APP = "session acceptor", "session initiator", "application"
COMPARE_MODES = ("strict", "loose", "subset")


class ScriptError(Exception):
    """A script that cannot be run; names the file and the line."""

    def __init__(self, path: Path | str, line: int, message: str) -> None:
        super().__init__(f"{path}:{line}: {message}")
        self.path, self.line, self.message = str(path), line, message


@dataclass(frozen=True)
class Step:
    kind: str  # connect | accept | disconnect | expect_disconnect | send | expect
    conn: int
    line: int
    text: str = ""  # message template for send/expect (SOH separated, ends with SOH)

    @property
    def label(self) -> str:
        letter = {"connect": "i", "accept": "e", "disconnect": "i", "expect_disconnect": "e", "send": "I", "expect": "E"}[self.kind]
        return f"{letter}{self.conn}"


@dataclass
class Script:
    path: Path
    steps: list[Step]
    description: str = ""
    connections: set[int] = field(default_factory=set)
    directives: dict[str, str] = field(default_factory=dict)  # from #@suite / #@compare comments

    @property
    def name(self) -> str:
        return self.path.stem

    @property
    def listens(self) -> bool:
        """True for a script certifying an initiator (eCONNECT: we are the acceptor)."""
        return any(s.kind == "accept" for s in self.steps)

    @property
    def suite(self) -> str:
        return self.directives.get("suite") or (SUITE_INITIATOR if self.listens else SUITE_ACCEPTOR)

    @property
    def compare_mode(self) -> str | None:
        return self.directives.get("compare")

    @property
    def fixes_body_length(self) -> bool:
        """True when a message line writes BodyLength as a number: a QuickFIX-style script.

        Such a script was written against QuickFIX's runner, which renders <TIME> in whole
        seconds; rendering milliseconds would make every echoed time 4 bytes longer than
        the BodyLength the author computed.
        """
        return any(FIXED_LENGTH_RE.match(s.text) for s in self.steps if s.kind in ("send", "expect"))

    def where(self, step: Step) -> str:
        return f"{self.path}:{step.line}"


# ---------------------------------------------------------------- parsing

def parse_file(path: Path | str) -> Script:
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise ScriptError(p, 0, f"cannot read: {exc.strerror or exc}") from None
    return parse_text(raw.decode("latin-1"), p)


def parse_text(text: str, path: Path | str = "<script>") -> Script:
    p = Path(path)
    steps: list[Step] = []
    comments: list[str] = []
    open_conns: set[int] = set()
    used: set[int] = set()
    directives: dict[str, str] = {}
    for number, line in enumerate(text.split("\n"), start=1):
        line = line.rstrip("\r\n \t")
        if not line.strip():
            continue
        if line.lstrip().startswith("#"):
            directive = DIRECTIVE_RE.match(line.strip())
            if directive:
                directives[directive.group(1)] = _check_directive(directive, number, p)
            elif not steps:
                comments.append(line.lstrip()[1:].strip())
            continue
        step = _parse_line(line, number, p)
        _check_connection_use(step, open_conns, p)
        used.add(step.conn)
        steps.append(step)
    kinds = {s.kind for s in steps}
    if not kinds & {"connect", "accept"}:
        raise ScriptError(p, 1, "no iCONNECT or eCONNECT step: nothing would be sent")
    if {"connect", "accept"} <= kinds:
        raise ScriptError(p, 1, "a script either connects (iCONNECT) or accepts (eCONNECT), not both")
    return Script(p, steps, " ".join(c for c in comments if c), used, directives)


def _check_directive(m: re.Match, number: int, path: Path) -> str:
    key, value = m.group(1), m.group(2)
    if key == "compare" and value not in COMPARE_MODES:
        raise ScriptError(path, number, f"#@compare {value!r}: expected one of {', '.join(COMPARE_MODES)}")
    return value


def _parse_line(line: str, number: int, path: Path) -> Step:
    m = LINE_RE.match(line)
    if m is None:
        raise ScriptError(path, number, f"syntax error: a step starts with I, E, i or e, not {line[:1]!r}")
    letter, conn_text, body = m.group(1), m.group(2), m.group(3)
    conn = int(conn_text) if conn_text else 1
    if letter in "ie":
        return _parse_connection_step(letter, body.strip(), conn, number, path)
    if not body:
        raise ScriptError(path, number, f"syntax error: {letter} line without a message")
    if SOH not in body and "|" in body:
        body = body.replace("|", SOH)
    if not body.endswith(SOH):
        body += SOH
    _check_placeholders(body, letter, number, path)
    if letter == "E":
        _check_expected(body, number, path)
    return Step("send" if letter == "I" else "expect", conn, number, body)


def _parse_connection_step(letter: str, word: str, conn: int, number: int, path: Path) -> Step:
    if letter == "i" and word == "CONNECT":
        return Step("connect", conn, number)
    if letter == "i" and word == "DISCONNECT":
        return Step("disconnect", conn, number)
    if letter == "e" and word == "DISCONNECT":
        return Step("expect_disconnect", conn, number)
    if letter == "e" and word == "CONNECT":
        return Step("accept", conn, number)
    raise ScriptError(path, number, f"syntax error: {letter}{word!r}: expected CONNECT or DISCONNECT")


def _check_placeholders(body: str, letter: str, number: int, path: Path) -> None:
    for m in PLACEHOLDER_RE.finditer(body):
        name, var = m.group(1), m.group(2)
        if name not in PLACEHOLDERS:
            raise ScriptError(path, number, f"unknown placeholder {m.group(0)} "
                                            f"(known: {', '.join('<%s>' % n for n in sorted(PLACEHOLDERS))})")
        if name == "ANY" and letter != "E":
            raise ScriptError(path, number, "<ANY> is only allowed in E (expect) lines")
        if name == "LEN" and not _in_tag(body, m.start(), "9"):
            raise ScriptError(path, number, "<LEN> is only allowed as the BodyLength (9) value")
        if m.group(3) and name not in ("TIME", "LEN", "VAR"):
            raise ScriptError(path, number, f"{m.group(0)}: only <TIME>, <LEN> and <VAR:name> take an offset")
        if (name in ("CAPTURE", "VAR")) != bool(var):
            raise ScriptError(path, number, f"{m.group(0)}: only <CAPTURE:name> and <VAR:name> take a name")
        if name == "CAPTURE" and letter != "E":
            raise ScriptError(path, number, "<CAPTURE:name> is only allowed in E (expect) lines")
    stray = re.sub(PLACEHOLDER_RE, "", body)
    if re.search(r"<[A-Z+\-0-9:]*>", stray):
        raise ScriptError(path, number, "malformed placeholder: " + re.search(r"<[A-Z+\-0-9:]*>", stray).group(0))


def _in_tag(body: str, pos: int, tag: str) -> bool:
    start = body.rfind(SOH, 0, pos) + 1
    return body[start:pos] == f"{tag}="


def _check_expected(body: str, number: int, path: Path) -> None:
    fields = body.split(SOH)[:-1]
    if not fields or not fields[0].startswith("8="):
        raise ScriptError(path, number, "syntax error: an expected message starts with 8=")
    for f in fields:
        tag, sep, _ = f.partition("=")
        if not sep or not re.fullmatch(r"-?\d+", tag):
            raise ScriptError(path, number, f"syntax error: expected field {f!r} is not tag=value")


def _check_connection_use(step: Step, open_conns: set[int], path: Path) -> None:
    if step.kind in ("connect", "accept"):
        if step.conn in open_conns:
            raise ScriptError(path, step.line, f"connection {step.conn} is already open")
        open_conns.add(step.conn)
        return
    if step.conn not in open_conns:
        raise ScriptError(path, step.line, f"connection {step.conn} used before i{step.conn},CONNECT" if step.conn != 1
                          else "step before iCONNECT (or eCONNECT)")
    if step.kind in ("disconnect", "expect_disconnect"):
        open_conns.discard(step.conn)


# ---------------------------------------------------------------- rendering

@dataclass(frozen=True)
class Context:
    """Values substituted into placeholders."""
    sender: str
    target: str
    heartbeat: int = 30
    compid_map: Mapping[str, str] = field(default_factory=dict)  # e.g. TW->CERT, ISLD->ALPHA
    run_id: str = field(default_factory=lambda: new_run_id())


def new_run_id() -> str:
    """Milliseconds since the epoch in base 36 (8 characters): a venue rejects a ClOrdID it
    has seen that day, so the application suite's ClOrdIDs must differ from run to run."""
    n = int(_dt.datetime.now(_dt.timezone.utc).timestamp() * 1000)
    digits = ""
    while n:
        n, r = divmod(n, 36)
        digits = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"[r] + digits
    return digits


def utc_time(offset_seconds: int = 0, now: _dt.datetime | None = None, whole_seconds: bool = False) -> str:
    """UTC ``YYYYMMDD-HH:MM:SS.sss``, or ``YYYYMMDD-HH:MM:SS`` with ``whole_seconds``.

    Whole seconds are what QuickFIX's Ruby runner writes for <TIME> (``strftime
    ("%Y%m%d-%H:%M:%S")`` of the UTC time, offset by whole seconds), so a script whose
    author computed BodyLength from that rendering gets the same bytes from us.
    """
    now = now or _dt.datetime.now(_dt.timezone.utc)
    t = now + _dt.timedelta(seconds=offset_seconds)
    if whole_seconds:
        return t.strftime("%Y%m%d-%H:%M:%S")
    return t.strftime("%Y%m%d-%H:%M:%S.%f")[:-3]


class UnknownVariable(KeyError):
    """<VAR:name> before any <CAPTURE:name> in the scenario."""


def substitute(template: str, ctx: Context, now: _dt.datetime | None = None, whole_seconds: bool = False,
               variables: Mapping[str, str] | None = None) -> str:
    """Replace every placeholder except <LEN> (resolved by ``fixify``), <ANY> and <CAPTURE>
    (both become markers for the comparison).

    One clock reading per message: SendingTime and OrigSendingTime written as <TIME> must
    be equal, or OrigSendingTime could come out a millisecond later (a real fault).
    """
    now = now or _dt.datetime.now(_dt.timezone.utc)
    variables = variables or {}

    def repl(m: re.Match) -> str:
        name, var, sign, num = m.group(1), m.group(2), m.group(3), m.group(4)
        off = int(num or 0) * (-1 if sign == "-" else 1)
        if name == "TIME":
            return utc_time(off, now, whole_seconds)
        if name == "CAPTURE":
            return f"{CAPTURE_PREFIX}{var}\x00"
        if name == "VAR":
            return _variable(variables, var, off)
        if name == "SENDER":
            return ctx.sender
        if name == "TARGET":
            return ctx.target
        if name == "RUNID":
            return ctx.run_id
        if name == "HEARTBEAT":
            return str(ctx.heartbeat)
        if name == "ANY":
            return ANY
        return m.group(0)  # <LEN...>
    text = PLACEHOLDER_RE.sub(repl, template)
    if ctx.compid_map:
        text = _map_compids(text, ctx.compid_map)
    return text


COMPID_TAGS = ("49", "56", "115", "128")


def _variable(variables: Mapping[str, str], name: str, offset: int) -> str:
    if name not in variables:
        raise UnknownVariable(name)
    value = variables[name]
    if offset:
        if not re.fullmatch(r"-?\d+", value):
            raise UnknownVariable(f"{name} (value {value!r} is not an integer, cannot add {offset})")
        return str(int(value) + offset)
    return value


def capture_name(value: str) -> str | None:
    """The variable name when ``value`` is a rendered <CAPTURE:name>, else None."""
    if value.startswith(CAPTURE_PREFIX) and value.endswith("\x00"):
        return value[len(CAPTURE_PREFIX):-1]
    return None


def _map_compids(text: str, mapping: Mapping[str, str]) -> str:
    out = []
    for f in text.split(SOH):
        tag, sep, value = f.partition("=")
        if sep and tag in COMPID_TAGS and value in mapping:
            f = f"{tag}={mapping[value]}"
        out.append(f)
    return SOH.join(out)


def with_logon_fields(text: str, fields: Iterable[tuple[int, str]]) -> str:
    """``text`` with ``fields`` appended when it is a Logon (35=A) that neither fixes its
    BodyLength nor carries them already; anything else unchanged."""
    fields = tuple(fields)
    if not fields or f"{SOH}35=A{SOH}" not in text:
        return text
    present = {tag for tag, _ in split_fields(text)}
    if "9" in present:
        return text
    extra = "".join(f"{tag}={value}{SOH}" for tag, value in fields if str(tag) not in present)
    body, sep, trailer = text.rpartition(f"{SOH}10=")
    if sep:
        return f"{body}{SOH}{extra}10={trailer}"
    return text + ("" if text.endswith(SOH) else SOH) + extra


def checksum(data: bytes) -> int:
    return sum(data) % 256


def fixify(text: str) -> bytes:
    """The wire bytes of a rendered message: BodyLength and CheckSum filled in when absent."""
    data = text.encode("latin-1")
    if not data.startswith(b"8="):
        return data
    head, _, rest = data.partition(SOH.encode())
    head += b"\x01"
    fields = rest.split(b"\x01")
    if fields and fields[-1] == b"":
        fields.pop()
    trailer = b""
    if fields and fields[-1].startswith(b"10="):
        trailer = fields.pop() + b"\x01"
    length_index = next((i for i, f in enumerate(fields) if f.startswith(b"9=")), None)
    if length_index is None:
        body = b"".join(f + b"\x01" for f in fields)
        length = b"9=%d\x01" % len(body)
    else:
        after = b"".join(f + b"\x01" for f in fields[length_index + 1:])
        value = _resolve_len(fields[length_index][2:].decode("latin-1"), len(after))
        fields[length_index] = b"9=" + value.encode()
        length = b""
        body = b"".join(f + b"\x01" for f in fields)
    if not trailer:
        trailer = b"10=%03d\x01" % checksum(head + length + body)
    return head + length + body + trailer


def _resolve_len(value: str, true_length: int) -> str:
    m = re.fullmatch(r"<LEN(?:([+-])(\d+))?>", value)
    if m is None:
        return value
    delta = int(m.group(2) or 0) * (-1 if m.group(1) == "-" else 1)
    return str(max(true_length + delta, 0))


def split_fields(data: bytes | str) -> list[tuple[str, str]]:
    """'8=FIX.4.4^9=5^...' -> [('8', 'FIX.4.4'), ('9', '5'), ...] (a token without '=' keeps an empty tag)."""
    text = data.decode("latin-1") if isinstance(data, bytes) else data
    out = []
    for token in text.split(SOH):
        if token == "":
            continue
        tag, sep, value = token.partition("=")
        out.append((tag, value) if sep else ("", token))
    return out


def show(data: bytes | str | Iterable[tuple[str, str]]) -> str:
    """A message for people: fields joined with '|'."""
    if isinstance(data, (bytes, str)):
        pairs = split_fields(data)
    else:
        pairs = list(data)
    return "|".join(f"{t}={_shown(v)}" if t else v for t, v in pairs)


def _shown(value: str) -> str:
    if value == ANY:
        return "<ANY>"
    name = capture_name(value)
    return f"<CAPTURE:{name}>" if name else value


def discover(paths: Iterable[Path | str]) -> list[Path]:
    """Script files from files and directories (``*.def``, sorted by name within a directory)."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out += sorted(p.glob("*.def"), key=lambda q: _natural_key(q.name))
        else:
            out.append(p)
    return out


def _natural_key(name: str) -> list:
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", name)]


SCENARIOS = Path(__file__).resolve().parent / "scenarios"


def builtin_suite(kind: str = "acceptor") -> Path:
    """The bundled scripts: ``acceptor`` (session layer, we initiate), ``initiator``
    (session layer, we accept) or ``app`` (order flow)."""
    return SCENARIOS / {"acceptor": "fix44", "initiator": "fix44-initiator", "app": "fix44-app"}[kind]
