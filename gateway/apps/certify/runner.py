"""Running scenario scripts against a counterparty, one connection set per scenario.

We connect to a counterparty acceptor (``iCONNECT`` scripts), or, certifying an initiator,
wait on our Listener for it to connect (``eCONNECT`` scripts).
"""
from __future__ import annotations

import socket
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterable

from gateway.apps.certify import compare as cmp
from gateway.apps.certify.script import (SUITE_ACCEPTOR, Context, Script, ScriptError, Step, UnknownVariable,
                                         fixify, parse_file, show, split_fields, substitute,
                                         with_logon_fields)
from gateway.apps.certify.wire import Connection, ConnectionClosed, FramingError, Listener

PASS, FAIL, ERROR = "pass", "fail", "error"
MSG_TYPES = {"0": "Heartbeat", "1": "TestRequest", "2": "ResendRequest", "3": "Reject",
             "4": "SequenceReset", "5": "Logout", "A": "Logon", "j": "BusinessMessageReject",
             "8": "ExecutionReport", "9": "OrderCancelReject", "D": "NewOrderSingle"}


class Unreachable(Exception):
    """The counterparty does not accept connections."""


@dataclass
class Target:
    host: str
    port: int
    sender: str  # our CompID
    target: str  # the counterparty's CompID
    heartbeat: int = 30
    label: str = ""
    listen: bool = False  # we are the acceptor: host:port is where we listen
    # Fields every Logon we send carries (e.g. Password 554 a gateway requires), appended to
    # scripted Logons that do not fix their BodyLength; never logged or shown in reports.
    logon_fields: tuple[tuple[int, str], ...] = ()

    def describe(self) -> str:
        name = f"{self.label} " if self.label else ""
        where = f"initiators connecting to {self.host}:{self.port}" if self.listen else f"{self.host}:{self.port}"
        return f"{name}{where} ({self.sender} -> {self.target})"


@dataclass
class Options:
    mode: str = cmp.STRICT
    timeout: float = 10.0  # seconds to wait for each expected message or disconnect
    pause: float = 0.1  # between scenarios, so the counterparty sees the previous close first
    compid_map: dict[str, str] = field(default_factory=dict)
    accept_timeout: float = 30.0  # eCONNECT: an initiator reconnects on its own timer (ReconnectInterval)


@dataclass
class Outcome:
    name: str
    file: str
    status: str
    seconds: float = 0.0
    reason: str = ""
    step: str = ""  # file:line of the step that failed
    expected: str = ""
    received: str = ""
    description: str = ""  # the script's leading comments
    suite: str = SUITE_ACCEPTOR  # session acceptor | session initiator | application

    def to_dict(self) -> dict:
        return asdict(self)


def check_reachable(target: Target, timeout: float = 3.0) -> None:
    try:
        with socket.create_connection((target.host, target.port), timeout=timeout):
            pass
    except OSError as exc:
        raise Unreachable(f"cannot connect to {target.host}:{target.port}: {exc.strerror or exc}") from None


class _Failure(Exception):
    def __init__(self, status: str, reason: str, step: Step | None = None, expected: str = "", received: str = ""):
        super().__init__(reason)
        self.status, self.reason, self.step = status, reason, step
        self.expected, self.received = expected, received


class ScenarioRunner:
    def __init__(self, target: Target, options: Options | None = None, listener: Listener | None = None) -> None:
        self.target = target
        self.options = options or Options()
        self.ctx = Context(target.sender, target.target, target.heartbeat, self.options.compid_map)
        self.listener = listener  # required by eCONNECT scripts
        self.variables: dict[str, str] = {}  # <CAPTURE:name> values, per scenario
        self.whole_seconds = False  # <TIME> as QuickFIX's runner renders it (the script fixes BodyLength)
        self.mode = self.options.mode

    # -- whole runs
    def run_paths(self, paths: Iterable[Path], on_start: Callable[[int, int, str], None] | None = None,
                  on_done: Callable[[int, int, Outcome], None] | None = None) -> list[Outcome]:
        paths = list(paths)
        outcomes = []
        for i, path in enumerate(paths, start=1):
            if on_start:
                on_start(i, len(paths), Path(path).stem)
            outcome = self.run_path(path)
            outcomes.append(outcome)
            if on_done:
                on_done(i, len(paths), outcome)
            time.sleep(self.options.pause)
        return outcomes

    def run_path(self, path: Path) -> Outcome:
        path = Path(path)
        try:
            script = parse_file(path)
        except ScriptError as exc:
            return Outcome(path.stem, str(path), ERROR, 0.0, f"script error: {exc.message}",
                           step=f"{exc.path}:{exc.line}")
        return self.run_script(script)

    # -- one scenario
    def run_script(self, script: Script) -> Outcome:
        conns: dict[int, Connection] = {}
        started = time.monotonic()
        step: Step | None = None
        self.variables = {}
        self.whole_seconds = script.fixes_body_length
        self.mode = script.compare_mode or self.options.mode
        try:
            for step in script.steps:
                self._do(step, conns, script)
            status, reason, where, exp, got = PASS, "", "", "", ""
        except _Failure as f:
            status, reason, exp, got = f.status, f.reason, f.expected, f.received
            where = script.where(f.step) if f.step else str(script.path)
        except Exception as exc:  # noqa: BLE001 - one broken scenario must not end the run
            status, reason, exp, got = ERROR, f"internal error: {type(exc).__name__}: {exc}", "", ""
            where = script.where(step) if step else str(script.path)
        finally:
            for c in conns.values():
                c.close()
        return Outcome(script.name, str(script.path), status, round(time.monotonic() - started, 3),
                       reason, where, exp, got, script.description, script.suite)

    def _do(self, step: Step, conns: dict[int, Connection], script: Script) -> None:
        if step.kind == "accept":
            conns[step.conn] = self._accept(step)
        elif step.kind == "connect":
            if self.listener is not None:
                raise _Failure(ERROR, "iCONNECT in a run that certifies an initiator (--listen): this script "
                                      "is for certifying an acceptor", step)
            try:
                conns[step.conn] = Connection(self.target.host, self.target.port)
            except OSError as exc:
                raise _Failure(ERROR, f"cannot connect to {self.target.host}:{self.target.port}: "
                                      f"{exc.strerror or exc}", step) from None
        elif step.kind == "disconnect":
            conns.pop(step.conn).close()
        elif step.kind == "send":
            self._send(step, conns[step.conn])
        elif step.kind == "expect":
            self._expect(step, conns[step.conn])
        elif step.kind == "expect_disconnect":
            self._expect_disconnect(step, conns.pop(step.conn))

    def _accept(self, step: Step) -> Connection:
        if self.listener is None:
            raise _Failure(ERROR, "eCONNECT: this script certifies an initiator; run it with --listen HOST:PORT", step)
        conn = self.listener.accept(self.options.accept_timeout)
        if conn is None:
            raise _Failure(FAIL, f"timed out after {self.options.accept_timeout:g}s waiting for the initiator to "
                                 f"connect to {self.listener.host}:{self.listener.port}", step)
        return conn

    def _render(self, step: Step) -> str:
        try:
            return substitute(step.text, self.ctx, whole_seconds=self.whole_seconds, variables=self.variables)
        except UnknownVariable as exc:
            raise _Failure(ERROR, f"<VAR:{exc.args[0]}> before any <CAPTURE:...> of it in this scenario",
                           step) from None

    def _send(self, step: Step, conn: Connection) -> None:
        data = fixify(with_logon_fields(self._render(step), self.target.logon_fields))
        try:
            conn.send(data)
        except ConnectionClosed:
            raise _Failure(FAIL, "the counterparty had closed the connection before this message "
                                 f"could be sent ({_summary(data)})", step, show(data)) from None

    def _expect(self, step: Step, conn: Connection) -> None:
        rendered = self._render(step)
        explicit_length = any(t == "9" for t, _ in split_fields(rendered))
        expected = fixify(rendered)
        waited = self.options.timeout
        try:
            received = self._receive(conn, expected, waited)
        except ConnectionClosed:
            raise _Failure(FAIL, f"the counterparty closed the connection while we waited for "
                                 f"{_summary(expected)}", step, show(expected)) from None
        except FramingError as exc:
            raise _Failure(FAIL, f"the counterparty sent a malformed message: {exc}", step, show(expected)) from None
        if received is None:
            raise _Failure(FAIL, f"timed out after {waited:g}s waiting for {_summary(expected)}",
                           step, show(expected))
        reason = cmp.compare(expected, received, self.mode, explicit_length)
        if reason:
            raise _Failure(FAIL, f"{reason} (expected {_summary(expected)}, received {_summary(received)})",
                           step, show(expected), show(received))
        self.variables.update(cmp.captures(expected, received))

    def _receive(self, conn: Connection, expected: bytes, timeout: float) -> bytes | None:
        """The next message; in subset mode (application flows) optional messages are skipped
        unless the script expects one of that kind: a plain Heartbeat (its timing is the
        counterparty's business) and an ExecutionReport of a pending state (PendingNew,
        PendingCancel, PendingReplace: FIX 4.4 lets a venue send them or not)."""
        deadline = time.monotonic() + timeout
        optional_kind = _optional_kind(expected)
        while True:
            received = conn.receive(max(deadline - time.monotonic(), 0.0))
            if received is None or self.mode != cmp.SUBSET:
                return received
            kind = _optional_kind(received)
            if kind is None or kind == optional_kind:
                return received

    def _expect_disconnect(self, step: Step, conn: Connection) -> None:
        try:
            data = conn.wait_closed(self.options.timeout)
        except TimeoutError:
            raise _Failure(FAIL, f"timed out after {self.options.timeout:g}s waiting for the counterparty "
                                 "to disconnect", step) from None
        except FramingError as exc:
            raise _Failure(FAIL, f"expected a disconnect, received malformed data: {exc}", step) from None
        finally:
            conn.close()
        if data is not None:
            raise _Failure(FAIL, f"expected a disconnect, received {_summary(data)}", step,
                           "(disconnect)", show(data))


PENDING_EXEC_TYPES = {"A": "PendingNew", "6": "PendingCancel", "E": "PendingReplace"}


def _optional_kind(data: bytes) -> str | None:
    """'Heartbeat' or a pending ExecType name when the message is one a venue may omit."""
    fields = dict(split_fields(data))
    if fields.get("35") == "0" and "112" not in fields:
        return "Heartbeat"
    if fields.get("35") == "8":
        return PENDING_EXEC_TYPES.get(fields.get("150", ""))
    return None


def _summary(data: bytes) -> str:
    fields = dict(split_fields(data))
    mtype = fields.get("35", "?")
    parts = [f"{MSG_TYPES.get(mtype, 'MsgType')} 35={mtype}"]
    for tag in ("34", "7", "16", "36", "45", "112", "11", "150", "39", "58"):
        if tag in fields:
            parts.append(f"{tag}={fields[tag]}")
    return " ".join(parts)


# ---------------------------------------------------------------- sequence reset check

def reset_check(target: Target, timeout: float = 5.0, rounds: int = 2) -> str | None:
    """Check the counterparty resets sequence numbers on logon for our CompID.

    Every scenario logs on with MsgSeqNum=1 and no ResetSeqNumFlag, as the QuickFIX
    acceptance scripts do, so the counterparty must reset on logon (ResetOnLogon=Y).
    Logs on and out ``rounds`` times; None when every Logon answer carries MsgSeqNum=1.
    """
    ctx = Context(target.sender, target.target, 30)
    for attempt in range(1, rounds + 1):
        try:
            conn = Connection(target.host, target.port)
        except OSError as exc:
            raise Unreachable(f"cannot connect to {target.host}:{target.port}: {exc.strerror or exc}") from None
        try:
            conn.send(fixify(with_logon_fields(substitute("8=FIX.4.4\x0135=A\x0134=1\x0149=<SENDER>\x0152=<TIME>\x01"
                                                          "56=<TARGET>\x0198=0\x01108=30\x01", ctx),
                                               target.logon_fields)))
            try:
                answer = conn.receive(timeout)
            except (ConnectionClosed, FramingError):
                answer = b""
            problem = _reset_problem(answer, target, attempt)
            if problem:
                return problem
            conn.send(fixify(substitute("8=FIX.4.4\x0135=5\x0134=2\x0149=<SENDER>\x0152=<TIME>\x01"
                                        "56=<TARGET>\x01", ctx)))
            try:
                conn.wait_closed(timeout)
            except (TimeoutError, ConnectionClosed, FramingError):
                pass
        finally:
            conn.close()
        time.sleep(0.1)
    return None


def _reset_problem(answer: bytes | None, target: Target, attempt: int) -> str | None:
    advice = (f"scenarios log on with MsgSeqNum=1: the counterparty must reset sequence numbers on logon "
              f"for {target.sender} (QuickFIX: ResetOnLogon=Y)")
    if answer is None:
        return f"no answer to our Logon within the timeout (logon {attempt}); {advice}"
    if answer == b"":
        return (f"the counterparty closed the connection on our Logon (logon {attempt}): is {target.sender} "
                f"a known counterparty of {target.target}?")
    fields = dict(split_fields(answer))
    if fields.get("35") == "A" and fields.get("34") == "1":
        return None
    if fields.get("35") == "A":
        return f"its Logon answer had MsgSeqNum={fields.get('34')}, not 1 (logon {attempt}); {advice}"
    return f"it answered our Logon with {show(answer)} (logon {attempt}); {advice}"
