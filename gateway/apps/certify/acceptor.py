"""A plain quickfix FIX 4.4 acceptor: the reference counterparty for the scenario suite.

Configured like our venues (FIX 4.4 dictionary, ResetOnLogon for the certifier) but with
QuickFIX's own default ValidateUserDefinedFields=Y; its application supports no message
type, so every valid application message is answered with BusinessMessageReject 380=3, as
the simulator and the gateway answer a QuoteRequest. With ``echo=True`` it is QuickFIX's
acceptance-test acceptor instead: application messages are sent back as received (same
MsgType, body and PossResend), under its own session header, as QuickFIX's test server does.
"""
from __future__ import annotations

import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

import quickfix as fix

from gateway.fix import quickfix_backend as fixedge


class ReferenceApp(fixedge.SafeApplication):
    def __init__(self, echo: bool = False) -> None:
        super().__init__("certify.acceptor")
        self.logons = 0
        self.echo = echo

    def on_logon(self, session_id) -> None:
        self.logons += 1

    def from_app(self, msg, session_id) -> None:
        if not self.echo:
            raise fix.UnsupportedMessageType()
        fix.Session.sendToTarget(_echo_of(msg), session_id)


def _echo_of(msg: "fix.Message") -> "fix.Message":
    """The same MsgType, body and PossResend; quickfix fills in CompIDs, MsgSeqNum and SendingTime."""
    echo = fix.Message()
    echo.setString(msg.toString(), False)  # no validation: the body as received
    header = echo.getHeader()
    for tag in (34, 43, 49, 52, 56, 122):
        header.removeField(tag)
    return echo


@dataclass
class ReferenceAcceptor:
    """Start with ``start()``, stop with ``stop()``; one session per client CompID."""
    port: int
    comp_id: str = "ISLD"
    clients: tuple[str, ...] = ("CERT",)
    settings: Mapping[str, object] = field(default_factory=dict)  # per-session overrides
    store_dir: Path | None = None
    echo: bool = False  # QuickFIX's acceptance-test acceptor: application messages sent back

    def __post_init__(self) -> None:
        self.app = ReferenceApp(self.echo)
        self.engine = None
        self._tmp: tempfile.TemporaryDirectory | None = None

    def start(self) -> "ReferenceAcceptor":
        if self.store_dir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="certify-acceptor-")
            self.store_dir = Path(self._tmp.name)
        sessions = []
        for client in self.clients:
            sess: dict[str, object] = {
                "ConnectionType": "acceptor", "SenderCompID": self.comp_id, "TargetCompID": client,
                "SocketAcceptPort": self.port, "SocketAcceptHost": "127.0.0.1",
                "ResetOnLogon": True, "ResetOnDisconnect": True,
                "ValidateUserDefinedFields": True,  # QuickFIX's default (engine_defaults turns it off)
            }
            sess.update(self.settings)
            sessions.append(sess)
        settings = fixedge.build_settings(fixedge.engine_defaults(self.store_dir), sessions)
        # Threaded: the plain SocketAcceptor's stop() races its own event thread over the
        # socket map (seen as a segfault in SocketServer::close).
        self.engine = fixedge.start_engine("acceptor", self.app, settings, threaded=True)
        return self

    def stop(self) -> None:
        if self.engine is not None:
            self.engine.stop(True)  # force: no logout round trips, the certifier has closed its sockets
            self.engine = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> "ReferenceAcceptor":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def serve(acceptor: ReferenceAcceptor, stop: threading.Event | None = None) -> None:
    """Run until SIGINT/SIGTERM (the main thread blocks; quickfix threads do the work)."""
    acceptor.start()
    try:
        fixedge.wait_for_shutdown(stop)
    finally:
        acceptor.stop()
