"""A plain quickfix FIX 4.4 initiator: the reference counterparty for the initiator suite.

Configured as the initiator suite expects of any initiator under test: a FileStore (so
sequence numbers persist across reconnects), ResetOnLogout=Y (every scenario ends with a
Logout, so the next one starts at MsgSeqNum 1), no reset on logon or disconnect, and a
short ReconnectInterval (the certifier waits ``--accept-timeout`` for each connection).
"""
from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from gateway.fix import quickfix_backend as fixedge


class InitiatorApp(fixedge.SafeApplication):
    def __init__(self) -> None:
        super().__init__("certify.initiator")
        self.logons = 0

    def on_logon(self, session_id) -> None:
        self.logons += 1


@dataclass
class ReferenceInitiator:
    """Connects to 127.0.0.1:``port`` as ``comp_id`` -> ``target``; ``start()`` / ``stop()``."""
    port: int
    comp_id: str = "CERTI"
    target: str = "CERT"
    heartbeat: int = 30
    settings: Mapping[str, object] = field(default_factory=dict)  # session overrides
    store_dir: Path | None = None

    def __post_init__(self) -> None:
        self.app = InitiatorApp()
        self.engine = None
        self._tmp: tempfile.TemporaryDirectory | None = None

    def start(self) -> "ReferenceInitiator":
        if self.store_dir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="certify-initiator-")
            self.store_dir = Path(self._tmp.name)
        sess: dict[str, object] = {
            "ConnectionType": "initiator", "SenderCompID": self.comp_id, "TargetCompID": self.target,
            "SocketConnectHost": "127.0.0.1", "SocketConnectPort": self.port, "HeartBtInt": self.heartbeat,
            "ReconnectInterval": 1, "ResetOnLogon": False, "ResetOnLogout": True, "ResetOnDisconnect": False,
            "ValidateUserDefinedFields": True,
        }
        sess.update(self.settings)
        settings = fixedge.build_settings(fixedge.engine_defaults(self.store_dir), [sess])
        # threaded, as the reference acceptor: stop() of the plain socket engines races its event thread
        self.engine = fixedge.start_engine("initiator", self.app, settings, threaded=True)
        return self

    def stop(self) -> None:
        if self.engine is not None:
            self.engine.stop(True)
            self.engine = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> "ReferenceInitiator":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
