"""A weekly schedule on the sans-IO Session, under a fake clock and a fake wall clock:
it logs out at the end, refuses to log on outside, and resets the numbers at the next start."""
from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from gateway.common.clock import FakeClock
from gateway.fix import events as ev
from gateway.fix.events import NEED_DATA
from gateway.fix.schedule import SessionSchedule
from gateway.fix.session import ACTIVE, DISCONNECTED, Session
from gateway.fix.settings import SessionSettings
from gateway.fix.store import MemoryStore

NY = ZoneInfo("America/New_York")
WEEK = SessionSchedule(start_day="Sun", start_time="17:00", end_day="Fri", end_time="17:00",
                       time_zone="America/New_York")
FRI_4PM = datetime(2026, 12, 11, 16, 0, tzinfo=NY).timestamp()
SUN_5PM = datetime(2026, 12, 13, 17, 0, tzinfo=NY).timestamp()


class Pair:
    def __init__(self, init_schedule=WEEK, acc_schedule=WEEK, start=FRI_4PM) -> None:
        self.clock = FakeClock(0.0)
        wall = lambda: start + self.clock.now()   # noqa: E731
        self.stores = {"init": MemoryStore(wall=wall), "acc": MemoryStore(wall=wall)}
        mk = lambda role, snd, tgt, sched, store: Session(   # noqa: E731
            SessionSettings(sender_comp_id=snd, target_comp_id=tgt, role=role, heartbeat_s=60,
                            validate=False, schedule=sched), store, None, clock=self.clock, wall=wall)
        self.init = mk("initiator", "GW", "VENUE", init_schedule, self.stores["init"])
        self.acc = mk("acceptor", "VENUE", "GW", acc_schedule, self.stores["acc"])
        self.got: dict[str, list] = {"init": [], "acc": []}

    def connect(self) -> None:
        self.init.connection_made()
        self.acc.connection_made()
        self.run()

    def run(self) -> None:
        for _ in range(50):
            moved = False
            for name, me, other in (("init", self.init, self.acc), ("acc", self.acc, self.init)):
                while (e := me.next_event()) is not NEED_DATA:
                    self.got[name].append(e)
                    if isinstance(e, ev.LogonReceived):
                        me.accept_logon()
                    if isinstance(e, ev.Disconnect):
                        me.connection_lost()
                        other.receive_data(me.data_to_send())
                        other.receive_data(b"")
                data = me.data_to_send()
                if data:
                    other.receive_data(data)
                    moved = True
            if not moved:
                return
        raise AssertionError("never settled")

    def run_until(self, seconds: float) -> None:
        """Advance to ``seconds`` from the start, firing each session's timer at its deadline."""
        target = self.clock.now() + seconds
        for _ in range(1000):
            deadlines = [d for d in (self.init.next_deadline(), self.acc.next_deadline()) if d is not None]
            step = min([d for d in deadlines if d > self.clock.now()] + [target])
            self.clock.set(max(step, self.clock.now()))
            self.init.on_timer()
            self.acc.on_timer()
            self.run()
            if self.clock.now() >= target:
                return
        raise AssertionError("too many timer rounds")

    def disconnects(self, name: str) -> list[str]:
        return [e.reason for e in self.got[name] if isinstance(e, ev.Disconnect)]


def test_weekly_schedule_logs_out_at_end_and_resets_at_next_start():
    p = Pair()
    p.connect()
    assert p.init.state == ACTIVE and p.acc.state == ACTIVE
    p.init.send("D", "11=A\x01")
    p.run()
    sent_before = p.init.next_sender_seq
    assert sent_before > 2
    # one hour later it is Friday 17:00 New York: the week is over
    p.run_until(3600 + 1)
    assert p.init.state == DISCONNECTED and p.acc.state == DISCONNECTED
    # the initiator's Logout(58=end of session) is what the acceptor logged out on
    assert [e.reason for e in p.got["acc"] if isinstance(e, ev.LoggedOut)] == ["end of session"]
    # the weekend: the initiator does not log on; numbers are kept until the next instance
    p.got = {"init": [], "acc": []}
    p.init.connection_made()
    p.run()
    assert p.disconnects("init") == ["outside the session schedule: not logging on"]
    p.init.connection_lost()
    assert p.init.next_sender_seq >= sent_before
    # Sunday 17:00: a new session instance: the driver checks at the boundary, the store resets
    p.clock.set(SUN_5PM - FRI_4PM + 1)
    p.init.check_schedule()
    p.acc.check_schedule()
    assert (p.init.next_sender_seq, p.init.next_target_seq) == (1, 1)
    assert (p.acc.next_sender_seq, p.acc.next_target_seq) == (1, 1)
    assert p.init.schedule_resets == 1
    p.got = {"init": [], "acc": []}
    p.connect()
    assert p.init.state == ACTIVE and p.acc.state == ACTIVE
    assert p.init.next_sender_seq == 2 and p.acc.next_target_seq == 2


def test_reset_also_happens_at_connect_when_nobody_checked():
    p = Pair()
    p.connect()
    p.init.send("D", "11=A\x01")
    p.run_until(3600 + 1)
    p.clock.set(SUN_5PM - FRI_4PM + 60)
    p.got = {"init": [], "acc": []}
    p.connect()                      # no check_schedule() before: connection_made / Logon reset
    assert p.init.state == ACTIVE
    assert p.init.next_sender_seq == 2 and p.acc.next_target_seq == 2


def test_acceptor_refuses_logon_outside_schedule():
    sat = datetime(2026, 12, 12, 12, 0, tzinfo=NY).timestamp()
    p = Pair(init_schedule=None, start=sat)
    p.connect()
    assert p.acc.state == DISCONNECTED
    assert any(r.startswith("logon refused: outside the session schedule") for r in p.disconnects("acc"))
    assert not any(isinstance(e, ev.LoggedOn) for e in p.got["init"])
