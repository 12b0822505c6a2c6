"""A real quickfix initiator (as the gateway runs it: FIXGW, dictionary validation on) against a venue.

Whatever the venue sends must pass the peer's quickfix validation: no session Reject may
come back for ExecutionReports, W, X or Y.
"""
from __future__ import annotations

import threading

import quickfix as fix

from gateway.fix import quickfix_backend as fixedge
from sim_helpers import quiet_venue


class Peer(fixedge.SafeApplication):
    def __init__(self) -> None:
        super().__init__("test.peer")
        self.logged_on = threading.Event()
        self.cond = threading.Condition()
        self.received: list[tuple[str, dict[int, str]]] = []
        self.rejects_sent: list[str] = []
        self.session_id = None

    def on_logon(self, session_id):
        self.session_id = session_id
        self.logged_on.set()

    def to_admin(self, msg, session_id):
        if fixedge.msg_type(msg) == "3":
            self.rejects_sent.append(msg.toString().replace("\x01", "|"))

    def to_app(self, msg, session_id):
        if fixedge.msg_type(msg) == "j":
            self.rejects_sent.append(msg.toString().replace("\x01", "|"))

    def from_app(self, msg, session_id):
        fields = {t: fixedge.get(msg, t) for t in (11, 39, 150, 262, 268, 55) if msg.isSetField(t)}
        with self.cond:
            self.received.append((fixedge.msg_type(msg), fields))
            self.cond.notify_all()

    def wait_for(self, pred, timeout=5.0) -> bool:
        with self.cond:
            return self.cond.wait_for(lambda: pred(self.received), timeout)


def start_peer(tmp_path, port: int, venue: str):
    app = Peer()
    default = fixedge.engine_defaults(tmp_path / "peer-store")
    default.update(ConnectionType="initiator", ReconnectInterval=1, HeartBtInt=30)
    settings = fixedge.build_settings(default, [{"SenderCompID": "FIXGW", "TargetCompID": venue,
                                                 "SocketConnectHost": "127.0.0.1", "SocketConnectPort": port}])
    engine = fixedge.start_engine("initiator", app, settings)
    return app, engine


def test_gateway_like_quickfix_peer_accepts_everything_the_venue_sends(exchange_factory, ports, tmp_path):
    exchange_factory([quiet_venue("ALPHA", ports[0], base_us=100, jitter_us=10)])
    app, engine = start_peer(tmp_path, ports[0], "ALPHA")
    try:
        assert app.logged_on.wait(10), "no logon"
        md = fixedge.new_message("V")
        md.setField(262, "q1")
        md.setField(263, "1")
        md.setField(264, "0")
        md.setField(265, "1")
        for kind in "012":
            g = fix.Group(267, 269)
            g.setField(269, kind)
            md.addGroup(g)
        g = fix.Group(146, 55)
        g.setField(55, "T1")
        md.addGroup(g)
        assert fixedge.send(md, app.session_id)
        assert app.wait_for(lambda r: any(t == "W" for t, _ in r))
        nos = fixedge.new_message("D")
        for tag, value in ((11, "g1"), (55, "T1"), (54, "1"), (38, "150"), (40, "2"), (44, "100.00"),
                           (59, "3"), (60, fixedge.utc_timestamp(micros=False))):
            nos.setField(tag, value)
        assert fixedge.send(nos, app.session_id)
        assert app.wait_for(lambda r: any(t == "8" and f.get(39) == "4" for t, f in r))
        assert app.wait_for(lambda r: any(t == "X" for t, _ in r))
        bad = fixedge.new_message("V")
        bad.setField(262, "q2")
        bad.setField(263, "0")
        bad.setField(264, "1")
        g = fix.Group(267, 269)
        g.setField(269, "0")
        bad.addGroup(g)
        g = fix.Group(146, 55)
        g.setField(55, "NOPE")
        bad.addGroup(g)
        fixedge.send(bad, app.session_id)
        assert app.wait_for(lambda r: any(t == "Y" for t, _ in r))
        kinds = [(t, f.get(150)) for t, f in app.received if t == "8"]
        assert kinds == [("8", "0"), ("8", "F"), ("8", "4")], kinds
        assert app.rejects_sent == [] and app.callback_errors == 0
    finally:
        engine.stop(True)
