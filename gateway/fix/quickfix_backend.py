"""The quickfix edge shared by the gateway and the simulator.

Everything here is thin glue around the quickfix binding:
- session settings built from plain dicts (``build_settings``),
- ``SafeApplication``, the base of every quickfix Application of ours: the binding
  calls ``Py_Exit(1)`` when a non-FIX exception escapes a callback, so no exception of
  ours may ever leave one; unexpected ones are counted, logged and answered with a
  BusinessMessageReject,
- small field accessors and message builders,
- ``start_engine`` / ``wait_for_shutdown`` so that the main thread blocks (never
  polls) while quickfix's C++ threads run our callbacks (see the GIL trap in DESIGN.md).
"""
from __future__ import annotations

import logging
import signal
import threading
import time
from pathlib import Path
from typing import Iterable, Mapping

from gateway.common.paths import FIX44_XML

import quickfix as fix

BEGIN_STRING = "FIX.4.4"

# Exceptions the binding maps back to C++ (anything else kills the process).
FIX_EXCEPTIONS = (
    fix.FieldNotFound,
    fix.IncorrectDataFormat,
    fix.IncorrectTagValue,
    fix.UnsupportedMessageType,
)

# BusinessRejectReason (380)
BRR_OTHER = "0"
BRR_UNKNOWN_ID = "1"
BRR_UNSUPPORTED_MSGTYPE = "3"
BRR_APP_NOT_AVAILABLE = "4"
BRR_CONDITIONALLY_REQUIRED_MISSING = "5"

log = logging.getLogger("fixedge")


def dictionary_path() -> Path:
    """Our FIX 4.4 data dictionary (quickfix DataDictionary format)."""
    return FIX44_XML


# ---------------------------------------------------------------- settings

def settings_text(default: Mapping[str, object], sessions: Iterable[Mapping[str, object]]) -> str:
    """Render a QuickFIX settings file: a [DEFAULT] section and one [SESSION] each."""
    lines = ["[DEFAULT]"]
    lines += [f"{k}={_setting(v)}" for k, v in default.items() if v is not None]
    for sess in sessions:
        lines.append("[SESSION]")
        lines += [f"{k}={_setting(v)}" for k, v in sess.items() if v is not None]
    return "\n".join(lines) + "\n"


def _setting(value: object) -> str:
    if isinstance(value, bool):
        return "Y" if value else "N"
    return str(value)


def build_settings(default: Mapping[str, object], sessions: Iterable[Mapping[str, object]]) -> fix.SessionSettings:
    settings = fix.SessionSettings()
    settings.setFromString(settings_text(default, sessions))
    return settings


def engine_defaults(store_dir: Path | str, log_dir: Path | str | None = None,
                    dictionary: Path | str | None = None) -> dict[str, object]:
    """Defaults every session of ours shares: FileStore, FIX 4.4 validation on."""
    store = Path(store_dir)
    store.mkdir(parents=True, exist_ok=True)
    out: dict[str, object] = {
        "BeginString": BEGIN_STRING,
        "FileStorePath": str(store),
        "UseDataDictionary": True,
        "DataDictionary": str(dictionary or dictionary_path()),
        "StartTime": "00:00:00",
        "EndTime": "00:00:00",
        "ValidateUserDefinedFields": False,
        "SocketNodelay": True,
        "PersistMessages": True,
    }
    if log_dir is not None:
        Path(log_dir).mkdir(parents=True, exist_ok=True)
        out["FileLogPath"] = str(log_dir)
    return out


def start_engine(role: str, app: "fix.Application", settings: fix.SessionSettings,
                 log_to_files: bool = False, threaded: bool = False):
    """Create and start a quickfix acceptor or initiator (``role``: 'acceptor'|'initiator').

    Message stores are FileStores: sequence numbers survive a restart.
    """
    store = fix.FileStoreFactory(settings)
    args = [app, store, settings]
    if log_to_files:
        args.append(fix.FileLogFactory(settings))
    if role == "acceptor":
        cls = fix.ThreadedSocketAcceptor if threaded else fix.SocketAcceptor
    elif role == "initiator":
        cls = fix.ThreadedSocketInitiator if threaded else fix.SocketInitiator
    else:
        raise ValueError(f"role must be 'acceptor' or 'initiator', not {role!r}")
    engine = cls(*args)
    engine.start()
    return engine


def wait_for_shutdown(stop: threading.Event | None = None, duration: float | None = None) -> threading.Event:
    """Block the main thread (no polling) until SIGINT/SIGTERM, ``stop`` is set, or ``duration`` passes."""
    stop = stop or threading.Event()

    def _handler(signum, frame):  # noqa: ARG001 - signal signature
        stop.set()

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, _handler)
        signal.signal(signal.SIGTERM, _handler)
    stop.wait(duration)
    return stop


# ---------------------------------------------------------------- fields and messages

def get(msg: fix.FieldMap, tag: int, default: str | None = None) -> str | None:
    """A field's string value, or ``default`` when absent."""
    if msg.isSetField(tag):
        return msg.getField(tag)
    return default


def require(msg: fix.FieldMap, tag: int) -> str:
    """A field's string value; raises quickfix's FieldNotFound (answered as a session Reject)."""
    return msg.getField(tag)


def msg_type(msg: fix.Message) -> str:
    return msg.getHeader().getField(35)


def seq_num(msg: fix.Message) -> int:
    return int(msg.getHeader().getField(34))


SOH = "\x01"


def message_from_body(msg_type_value: str, body: str) -> fix.Message:
    """A message from its body already in wire form ('11=X\x0155=Y\x01').

    quickfix fills the header (CompIDs, MsgSeqNum, SendingTime) and the trailer on send.
    One SWIG call instead of one per field: about 5x cheaper than ``setField`` (measured:
    3 us vs 14 us for a NewOrderSingle), which matters on the order path: every SWIG call
    releases the GIL, a chance for quickfix's other thread to take it and make this one
    wait. Only for messages without repeating groups (parsed without a dictionary).
    """
    text = f"35={msg_type_value}{SOH}{body}"
    return fix.Message(f"8={BEGIN_STRING}{SOH}9={len(text)}{SOH}{text}10=000{SOH}", False)


def field_pairs(text: str) -> list[tuple[int, str]]:
    """(tag, value) pairs of a message's wire text in order, repeats kept (for groups);
    malformed pieces are skipped."""
    out = []
    for piece in text.split(SOH):
        tag, sep, value = piece.partition("=")
        if sep and tag.isdigit():
            out.append((int(tag), value))
    return out


def fix_number(value: float | int) -> str:
    """A Price/Qty as FIX text: no float noise, no exponent, no trailing zeros ('1.1', '100')."""
    if isinstance(value, int):
        return str(value)
    text = f"{value:.10f}".rstrip("0").rstrip(".")
    return text if text not in ("", "-0") else "0"


def field_map(msg: fix.Message) -> dict[str, str]:
    """Every field of a message as {tag: value} (string tags; the last value wins on repeats).

    One ``toString`` and a split: about 7x cheaper than a ``getField`` call per tag.
    """
    out: dict[str, str] = {}
    for pair in msg.toString().split(SOH)[:-1]:
        tag, _, value = pair.partition("=")
        out[tag] = value
    return out


def required(fields: dict[str, str], tag: int) -> str:
    """A required field of a ``field_map``; missing -> FieldNotFound (quickfix answers a session Reject)."""
    value = fields.get(str(tag))
    if value is None:
        raise fix.FieldNotFound(tag)
    return value


def number(fields: dict[str, str], tag: int, need: bool = True) -> float:
    """A numeric field of a ``field_map``; bad text -> IncorrectDataFormat; absent and optional -> 0."""
    text = required(fields, tag) if need else fields.get(str(tag))
    if not text:
        return 0.0
    try:
        return float(text)
    except ValueError:
        raise fix.IncorrectDataFormat(tag, text) from None


def new_message(msg_type_value: str) -> fix.Message:
    msg = fix.Message()
    msg.getHeader().setField(fix.BeginString(BEGIN_STRING))
    msg.getHeader().setField(fix.MsgType(msg_type_value))
    return msg


_second: tuple[int, str] = (0, "")   # (UTC second, its text): strftime once a second, not per message


def utc_timestamp(micros: bool = True) -> str:
    """UTCTimestamp as FIX writes it: YYYYMMDD-HH:MM:SS.ffffff (or .fff)."""
    global _second
    now = time.time()
    sec = int(now)
    cached, text = _second          # one tuple: threads never see a half-updated pair
    if sec != cached:
        text = time.strftime("%Y%m%d-%H:%M:%S", time.gmtime(sec))
        _second = (sec, text)
    frac = int((now - sec) * 1_000_000)
    return f"{text}.{frac:06d}" if micros else f"{text}.{frac // 1000:03d}"


def send(msg: fix.Message, session_id: fix.SessionID) -> bool:
    """Send on a session; False when quickfix refuses (unknown session, not sendable)."""
    try:
        return bool(fix.Session.sendToTarget(msg, session_id))
    except fix.SessionNotFound:
        return False


def session_key(session_id: fix.SessionID) -> str:
    """A stable text key for a session: 'FIX.4.4:SENDER->TARGET'."""
    return session_id.toString()


def seq_nums(session_id: fix.SessionID | None) -> dict:
    """The next sequence numbers quickfix expects to send and to receive on a session."""
    session = fix.Session.lookupSession(session_id) if session_id is not None else None
    if session is None:
        return {"next_sender_seq": None, "next_target_seq": None}
    return {"next_sender_seq": session.getExpectedSenderNum(), "next_target_seq": session.getExpectedTargetNum()}


def business_reject(ref: fix.Message | None, text: str, reason: str = BRR_OTHER,
                    ref_id: str | None = None) -> fix.Message:
    """A BusinessMessageReject (35=j) answering ``ref``."""
    out = new_message("j")
    if ref is not None:
        header = ref.getHeader()
        if header.isSetField(34):
            out.setField(45, header.getField(34))
        if header.isSetField(35):
            out.setField(372, header.getField(35))
    else:
        out.setField(372, "?")
    if ref_id:
        out.setField(379, ref_id)
    out.setField(380, reason)
    out.setField(58, text[:200])
    return out


class SafeApplication(fix.Application):
    """Base of every quickfix Application of ours.

    Subclasses override the snake_case hooks (``on_logon``, ``from_app`` ...). The
    camelCase quickfix callbacks wrap them so that quickfix's own FIX exceptions pass
    through (quickfix answers them with a session Reject) and anything else is
    counted, logged and, for application messages, answered with a
    BusinessMessageReject instead of ending the process.
    """

    def __init__(self, name: str = "app") -> None:
        super().__init__()
        self.log = logging.getLogger(name)
        self.callback_errors = 0

    # -- hooks for subclasses
    def on_create(self, session_id: fix.SessionID) -> None: ...
    def on_logon(self, session_id: fix.SessionID) -> None: ...
    def on_logout(self, session_id: fix.SessionID) -> None: ...
    def to_admin(self, msg: fix.Message, session_id: fix.SessionID) -> None: ...
    def from_admin(self, msg: fix.Message, session_id: fix.SessionID) -> None: ...
    def to_app(self, msg: fix.Message, session_id: fix.SessionID) -> None: ...
    def from_app(self, msg: fix.Message, session_id: fix.SessionID) -> None: ...

    # -- quickfix callbacks
    def onCreate(self, session_id):
        self._guarded(self.on_create, session_id)

    def onLogon(self, session_id):
        self._guarded(self.on_logon, session_id)

    def onLogout(self, session_id):
        self._guarded(self.on_logout, session_id)

    def toAdmin(self, msg, session_id):
        self._guarded(self.to_admin, msg, session_id)

    def fromAdmin(self, msg, session_id):
        try:
            self.from_admin(msg, session_id)
        except (fix.RejectLogon,) + FIX_EXCEPTIONS:
            raise
        except Exception:  # noqa: BLE001 - must not escape into the binding
            self._count_error("fromAdmin")

    def toApp(self, msg, session_id):
        try:
            self.to_app(msg, session_id)
        except fix.DoNotSend:
            raise
        except Exception:  # noqa: BLE001
            self._count_error("toApp")

    def fromApp(self, msg, session_id):
        try:
            self.from_app(msg, session_id)
        except FIX_EXCEPTIONS:
            raise
        except Exception as exc:  # noqa: BLE001
            self._count_error("fromApp")
            try:
                send(business_reject(msg, f"internal error: {type(exc).__name__}: {exc}"), session_id)
            except Exception:  # noqa: BLE001
                self._count_error("fromApp reject")

    def _guarded(self, fn, *args):
        try:
            fn(*args)
        except Exception:  # noqa: BLE001
            self._count_error(fn.__name__)

    def _count_error(self, where: str) -> None:
        self.callback_errors += 1
        self.log.exception("unexpected error in %s (answered, session kept)", where)
