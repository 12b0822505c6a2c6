"""The one interface every FIX backend implements: ``Application``, ``SessionHandle``, ``Engine``.

A process (gateway, simulator, demo client) writes an ``Application``, asks
``create_engine`` for an engine of the kind its config names, and runs one asyncio
loop. Nothing else about the backend leaks out: the native engine (``transport.py``
driving our sans-IO ``Session``) and the quickfix binding (``quickfix_backend.py``)
look the same from here.

Runnable example (an echo acceptor and an initiator in one loop)::

    import asyncio
    from gateway.fix.engine import BaseApplication, create_engine
    from gateway.fix.settings import SessionSettings
    from gateway.fix.transport import new_event_loop

    class Echo(BaseApplication):
        def on_message(self, session, msg):
            session.send("8", "37=1\\x0111=" + msg[11] + "\\x0117=1\\x01150=0\\x0139=0\\x01"
                         "55=X\\x0154=1\\x01151=0\\x0114=0\\x016=0\\x01")

    class Client(BaseApplication):
        def __init__(self):
            self.got = asyncio.get_event_loop().create_future()
        def on_logon(self, session):
            session.send("D", "11=A1\\x0155=X\\x0154=1\\x0160=20240101-00:00:00\\x0138=1\\x0140=1\\x01")
        def on_message(self, session, msg):
            self.got.set_result(msg)

    async def main():
        venue = create_engine("native", "acceptor",
                              [SessionSettings(sender_comp_id="VENUE", target_comp_id="GW",
                                               role="acceptor")],
                              Echo(), host="127.0.0.1", port=0)
        await venue.start()
        client_app = Client()
        gw = create_engine("native", "initiator",
                           [SessionSettings(sender_comp_id="GW", target_comp_id="VENUE",
                                            role="initiator", heartbeat_s=5)],
                           client_app, hosts=[("127.0.0.1", venue.port)])
        await gw.start()
        print(await asyncio.wait_for(client_app.got, 5))
        await gw.stop(); await venue.stop()

    loop = new_event_loop()
    loop.run_until_complete(main())

Invariants:
- Application callbacks run on the engine's loop thread, one at a time, never in a
  backend's own thread (quickfix's C++ threads hand over with ``call_soon_threadsafe``).
- An exception escaping a callback never ends the session or the process: it is
  logged and counted (``Engine.callback_errors``); an application message whose
  handler raised is answered with a BusinessMessageReject (35=j, 380=0, 58=text), or
  380=3 (unsupported message type) when the handler raised ``Unsupported``.
- ``SessionHandle.send`` never blocks: it queues bytes and returns; False when the
  session is not logged on (nothing is sent or stored then).
"""
from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Protocol, Sequence, runtime_checkable

if TYPE_CHECKING:   # only for annotations: engine.py must import without quickfix or the codec
    from gateway.fix.codec import Message
    from gateway.fix.settings import SessionSettings

log = logging.getLogger("gateway.fix.engine")

# BusinessRejectReason (380) values the engines use.
BRR_OTHER = "0"
BRR_UNSUPPORTED_MSGTYPE = "3"

Address = tuple[str, int]


class Unsupported(Exception):
    """Raise from ``Application.on_message`` for a MsgType this application does not handle:
    the engine answers a BusinessMessageReject with 380=3 (not an error; not counted)."""


@runtime_checkable
class Application(Protocol):
    """What a process implements. Every method runs on the engine's loop thread."""

    def on_logon(self, session: "SessionHandle") -> None: ...
    def on_logout(self, session: "SessionHandle", reason: str) -> None: ...
    def on_message(self, session: "SessionHandle", msg: "Message") -> None: ...
    def on_admin(self, session: "SessionHandle", msg: "Message") -> None: ...
    def check_logon(self, session: "SessionHandle", logon: "Message") -> str | None: ...


class BaseApplication:
    """An ``Application`` that does nothing: subclass and override what you need.

    ``check_logon`` accepts everyone; ``on_message`` raises ``Unsupported`` so a
    process that forgot a MsgType answers 380=3 instead of silently dropping it.
    """

    def on_logon(self, session: "SessionHandle") -> None:
        pass

    def on_logout(self, session: "SessionHandle", reason: str) -> None:
        pass

    def on_message(self, session: "SessionHandle", msg: "Message") -> None:
        raise Unsupported(f"MsgType {msg.msg_type} not supported")

    def on_admin(self, session: "SessionHandle", msg: "Message") -> None:
        pass

    def check_logon(self, session: "SessionHandle", logon: "Message") -> str | None:
        return None


class SessionHandle:
    """One configured FIX session as the application sees it (both backends subclass it).

    The handle outlives connections: keep it, and ``send`` on it after a reconnect.
    """

    key: str                 # "FIX.4.4:SENDER->TARGET"
    sender_comp_id: str
    target_comp_id: str
    # --- transport-edge timestamp (latency probes' floor split; added for issue 12) ---
    # Engine clock time at which the bytes now being handled were read from the socket,
    # before parsing; None when the backend cannot say (quickfix).
    received_at: float | None = None

    @property
    def logged_on(self) -> bool:
        raise NotImplementedError

    def send(self, msg_type: str, body: str | Sequence[tuple[int, Any]], *, extra_header: str = "") -> bool:
        """Send an application message. ``body`` is wire text without header/trailer
        ('11=X\\x0155=Y\\x01', the fast path) or (tag, value) pairs; ``extra_header``: more
        header fields as wire text (e.g. '97=Y\\x01' PossResend). False when not logged on."""
        raise NotImplementedError

    def send_test_request(self, test_req_id: str) -> bool:
        """A TestRequest (35=1) with our own 112; its Heartbeat comes back to ``on_admin``."""
        raise NotImplementedError

    def logout(self, text: str = "") -> None:
        raise NotImplementedError

    @property
    def next_sender_seq(self) -> int | None:
        raise NotImplementedError

    @property
    def next_target_seq(self) -> int | None:
        raise NotImplementedError

    def status(self) -> dict:
        """A JSON-able summary (key, logged_on, seq numbers, counters) for status pages."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.key} logged_on={self.logged_on}>"


class Engine(Protocol):
    """What ``create_engine`` returns. Start and stop on the loop that will drive it."""

    sessions: dict[str, SessionHandle]
    port: int | None          # acceptor: the bound port (useful with port=0); initiator: None
    callback_errors: int

    async def start(self) -> None: ...
    async def stop(self) -> None: ...


def body_text(body: str | Sequence[tuple[int, Any]]) -> str:
    """Wire text ('t=v\\x01...') of a body given as text or pairs (numbers via str())."""
    if isinstance(body, str):
        return body
    return "".join(f"{tag}={value}\x01" for tag, value in body)


def reject_body(ref_seq: int | None, ref_msg_type: str, reason: str, text: str) -> str:
    """The body of a BusinessMessageReject answering one message."""
    # Ascending tag order, as QuickFIX writes a body: strict certification compares order.
    # 58 is a plain String: no SOH inside, and keep it short.
    ref = f"45={ref_seq}\x01" if ref_seq is not None else ""
    return (f"{ref}58=" + text.replace("\x01", " ")[:200]
            + f"\x01372={ref_msg_type or '?'}\x01380={reason}\x01")


def normalize_hosts(hosts: Sequence[Address] | Mapping[str, Sequence[Address]] | None,
                    keys: Sequence[str]) -> dict[str, list[Address]]:
    """Failover addresses per session key: one list for all sessions, or one per key."""
    if hosts is None:
        raise ValueError("an initiator needs hosts=[(host, port), ...]")
    if isinstance(hosts, Mapping):
        missing = [k for k in keys if not hosts.get(k)]
        if missing:
            raise ValueError(f"no hosts for sessions {missing}")
        return {k: [(str(h), int(p)) for h, p in hosts[k]] for k in keys}
    addresses = [(str(h), int(p)) for h, p in hosts]
    if not addresses:
        raise ValueError("hosts is empty")
    return {k: list(addresses) for k in keys}


def create_engine(kind: str, role: str, settings: Sequence["SessionSettings"], app: Application, *,
                  host: str = "127.0.0.1", port: int = 0,
                  hosts: Sequence[Address] | Mapping[str, Sequence[Address]] | None = None,
                  store_dir: str | Path | None = None, tls: Any = None,
                  log_dir: str | Path | None = None,
                  loop: asyncio.AbstractEventLoop | None = None, **options: Any) -> Engine:
    """An engine of ``kind`` ("native" | "quickfix") in ``role`` ("acceptor" | "initiator").

    - ``settings``: one ``SessionSettings`` per session (their ``role`` must match).
    - acceptor: ``host``/``port`` to listen on (port 0: any free port, see ``engine.port``;
      the quickfix backend cannot bind one address and warns).
    - initiator: ``hosts``: failover list [(host, port), ...] for every session, or
      {session key: [...]}.
    - ``store_dir``: FileStore directory (sequence numbers survive restarts); None: memory.
    - ``tls``: a ``transport.TlsConfig`` or an ``ssl.SSLContext`` (native only).
    - ``log_dir``: per-session message and event logs (append).
    - ``options``: backend limits, e.g. ``max_outbound_bytes`` (see ``transport.NativeEngine``);
      native only: ``store_wrapper(settings, store) -> store``, the store a session uses in
      place of the one the engine made (a venue that never resends market data wraps it).
    """
    if role not in ("acceptor", "initiator"):
        raise ValueError(f"role must be 'acceptor' or 'initiator', not {role!r}")
    wrong = [s.key for s in settings if s.role != role]
    if wrong:
        raise ValueError(f"sessions {wrong} are not configured as {role}")
    if kind == "native":
        from gateway.fix.transport import NativeEngine
        return NativeEngine(role, settings, app, host=host, port=port, hosts=hosts, store_dir=store_dir,
                            tls=tls, log_dir=log_dir, loop=loop, **options)
    if kind == "quickfix":
        # Imported here: quickfix is a heavy, optional binding; the native engine never loads it.
        from gateway.fix.quickfix_backend import QuickfixEngine
        return QuickfixEngine(role, settings, app, host=host, port=port, hosts=hosts, store_dir=store_dir,
                              tls=tls, log_dir=log_dir, loop=loop, **options)
    raise ValueError(f"engine kind must be 'native' or 'quickfix', not {kind!r}")


def call_app(app: Any, name: str, counter: "ErrorCounter", *args: Any) -> Any:
    """Call an optional Application method; an exception is logged and counted, never raised."""
    fn = getattr(app, name, None)
    if fn is None:
        return None
    try:
        return fn(*args)
    except Exception:  # noqa: BLE001 - the application must never end a session
        counter.count(name)
        return None


class ErrorCounter:
    """Counts and logs application callback failures (one per engine)."""

    def __init__(self) -> None:
        self.errors = 0

    def count(self, where: str) -> None:
        self.errors += 1
        log.exception("application error in %s (session kept)", where)


def dispatch_app_message(app: Any, handle: SessionHandle, msg: "Message", counter: ErrorCounter) -> None:
    """Give an application message to ``app.on_message``; answer a failure with 35=j."""
    try:
        app.on_message(handle, msg)
    except Exception as exc:  # noqa: BLE001
        answer_app_error(handle, msg, exc, counter)


def answer_app_error(handle: SessionHandle, msg: "Message", exc: Exception, counter: ErrorCounter) -> None:
    """``on_message`` raised ``exc``: answer the message with a BusinessMessageReject
    (380=3 for ``Unsupported``, else 380=0, counted and logged). For a driver that calls
    ``on_message`` itself in its own ``try`` (the native engine's pump)."""
    if isinstance(exc, Unsupported):
        reason, text = BRR_UNSUPPORTED_MSGTYPE, str(exc) or f"unsupported MsgType {msg.msg_type}"
    else:
        counter.count("on_message")
        reason, text = BRR_OTHER, f"internal error: {type(exc).__name__}: {exc}"
    try:
        handle.send("j", reject_body(msg.seq_num, msg.msg_type, reason, text))
    except Exception:  # noqa: BLE001 - the reject itself failing must not end anything either
        counter.count("business reject")
