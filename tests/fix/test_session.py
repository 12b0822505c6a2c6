"""Session, h11-style: bytes in with a FakeClock, bytes and events out, no sockets.

The acceptor tests mirror the certification scripts in
gateway/apps/certify/scenarios/fix44/*.def (named in each test): ``Peer`` plays the
certifier (the ``I`` lines), ``expect`` compares what we answer field by field (the ``E``
lines), with SendingTime/OrigSendingTime/BodyLength/CheckSum left out as the scripts do.
``SessionPair`` connects an initiator Session to an acceptor Session in memory.
"""
from __future__ import annotations

import pytest

from gateway.common.clock import FakeClock
from gateway.fix import events as ev
from gateway.fix.codec import encode, parse, utc_timestamp
from gateway.fix.events import NEED_DATA
from gateway.fix.session import ACTIVE, AWAIT_LOGON, CLOSED, LOGOUT_SENT, RESENDING, Session
from gateway.fix.settings import SessionSettings
from gateway.fix.store import MemoryStore

WALL0 = 1_800_000_000.0
SOH = "\x01"
SKIP = {8, 9, 10, 52, 122}        # compared by pattern in the scripts: left out here


def make(role: str = "acceptor", clock: FakeClock | None = None, store=None, dictionary=None,
         sender: str = "GW", target: str = "PEER", **kw) -> Session:
    clock = clock or FakeClock(100.0)
    kw.setdefault("heartbeat_s", 30)
    if dictionary is None:
        kw.setdefault("validate", False)
    settings = SessionSettings(sender_comp_id=sender, target_comp_id=target, role=role, **kw)
    return Session(settings, store or MemoryStore(), dictionary, clock=clock,
                   wall=lambda: WALL0 + clock.now())


def frames(data: bytes) -> list:
    out, rest = [], data
    while rest:
        end = rest.index(b"\x0110=") + 8
        out.append(parse(rest[:end]))
        rest = rest[end:]
    return out


def fields(msg) -> str:
    return "|".join(f"{t}={v}" for t, v in msg.pairs if t not in SKIP)


class Peer:
    """The counterparty of an acceptor Session under test (the certifier's side)."""

    def __init__(self, role: str = "acceptor", auto_accept: bool = True, **kw) -> None:
        self.clock = FakeClock(100.0)
        self.store = kw.pop("store", None) or MemoryStore()
        self.s = make(role, self.clock, self.store, **kw)
        self.auto_accept = auto_accept
        self.events: list = []
        self.s.connection_made()
        self.pump()

    def wall(self) -> float:
        return WALL0 + self.clock.now()

    def raw(self, msg_type: str, seq: int, body: str = "", *, offset: float = 0.0,
            poss_dup: bool = False, orig_offset: float | None = None, sender: str = "PEER",
            target: str = "GW", begin: str = "FIX.4.4") -> bytes:
        header = f"34={seq}{SOH}" + (f"43=Y{SOH}" if poss_dup else "")
        header += f"49={sender}{SOH}52={utc_timestamp(self.wall() + offset)}{SOH}56={target}{SOH}"
        if orig_offset is not None:
            header += f"122={utc_timestamp(self.wall() + orig_offset)}{SOH}"
        return encode(begin, msg_type, header, body)

    def send(self, msg_type: str, seq: int, body: str = "", **kw) -> list:
        return self.feed(self.raw(msg_type, seq, body, **kw))

    def feed(self, data: bytes) -> list:
        self.s.receive_data(data)
        return self.pump()

    def pump(self) -> list:
        got = []
        for _ in range(10_000):
            e = self.s.next_event()
            if e is NEED_DATA:
                break
            got.append(e)
            if isinstance(e, ev.LogonReceived) and self.auto_accept:
                self.s.accept_logon()
        self.events += got
        return got

    def out(self) -> list[str]:
        return [fields(m) for m in frames(self.s.data_to_send())]

    def logon(self, seq: int = 1, extra: str = "", hb: int = 30) -> list:
        return self.send("A", seq, f"98=0{SOH}108={hb}{SOH}{extra}")


def logged_on(**kw) -> Peer:
    p = Peer(**kw)
    p.logon()
    assert p.out() == ["35=A|34=1|49=GW|56=PEER|98=0|108=30"]
    return p


def kinds(events) -> list[str]:
    return [type(e).__name__ for e in events]


# -- logon ----------------------------------------------------------------------------------

def test_acceptor_logon_and_logout_1a_valid_logon():
    p = Peer()
    events = p.logon()
    assert kinds(events) == ["LogonReceived", "LoggedOn"] or kinds(p.events)[-2:] == ["LogonReceived", "LoggedOn"]
    assert p.out() == ["35=A|34=1|49=GW|56=PEER|98=0|108=30"]
    assert p.s.state == ACTIVE and p.s.next_target_seq == 2 and p.s.next_sender_seq == 2
    events = p.send("5", 2)
    assert p.out() == ["35=5|34=2|49=GW|56=PEER"]
    assert kinds(events)[-2:] == ["LoggedOut", "Disconnect"]
    assert p.s.state == CLOSED


def test_logon_waits_for_the_driver_and_can_be_refused():
    p = Peer(auto_accept=False)
    events = p.logon()
    assert kinds(events) == ["LogonReceived"]
    assert p.out() == [] and p.s.state == AWAIT_LOGON
    assert p.send("0", 2) == []              # nothing else is processed meanwhile
    p.s.refuse_logon("bad password")
    assert p.out() == ["35=5|34=1|49=GW|56=PEER|58=bad password"]
    assert kinds(p.pump()) == ["Disconnect"]


def test_logon_seq_too_high_answers_then_asks_for_the_gap_1a():
    p = Peer()
    events = p.logon(seq=5)
    assert p.out() == ["35=A|34=1|49=GW|56=PEER|98=0|108=30", "35=2|34=2|49=GW|56=PEER|7=1|16=0"]
    assert ev.GapDetected(begin=1, end=0) in events
    assert p.s.state == RESENDING
    p.send("4", 1, f"36=6{SOH}123=Y{SOH}", poss_dup=True, orig_offset=0)
    assert p.s.next_target_seq == 6 and p.s.state == ACTIVE
    p.send("1", 6, f"112=AFTERGAP{SOH}")
    assert p.out() == ["35=0|34=3|49=GW|56=PEER|112=AFTERGAP"]
    p.send("5", 7)
    assert p.out() == ["35=5|34=4|49=GW|56=PEER"]


def test_first_message_not_logon_disconnects_1e():
    p = Peer()
    events = p.send("0", 1)
    assert kinds(events) == ["Disconnect"] and p.out() == []


@pytest.mark.parametrize("kw", [dict(offset=-3600), dict(sender="XPEERX"), dict(target="XGWX"),
                                dict(begin="FIX.4.2")])
def test_bad_logon_disconnects_without_a_word_1c_1d(kw):
    p = Peer()
    events = p.send("A", 1, f"98=0{SOH}108=30{SOH}", **kw)
    assert kinds(events) == ["Disconnect"] and p.out() == []


def test_garbled_logon_disconnects_1d_length():
    p = Peer()
    good = p.raw("A", 1, f"98=0{SOH}108=30{SOH}")
    length = int(good.split(b"\x01")[1][2:])
    data = good.replace(b"9=%d" % length, b"9=%d" % (length - 10), 1)     # <LEN-10>
    assert kinds(p.feed(data))[-1:] == ["Disconnect"]


def test_logon_timeout_acceptor():
    p = Peer()
    assert p.s.next_deadline() == pytest.approx(110.0)
    p.clock.advance(9.9)
    p.s.on_timer()
    assert p.pump() == []
    p.clock.advance(0.2)
    p.s.on_timer()
    assert kinds(p.pump()) == ["Disconnect"]


def test_reset_seq_num_flag_mid_session_22():
    p = logged_on()
    p.send("0", 2)
    p.send("0", 3)
    p.send("1", 4, f"112=BEFORE{SOH}")
    assert p.out() == ["35=0|34=2|49=GW|56=PEER|112=BEFORE"]
    events = p.logon(extra=f"141=Y{SOH}")
    assert p.out() == ["35=A|34=1|49=GW|56=PEER|98=0|108=30|141=Y"]
    assert ev.LoggedOn(session_key=p.s.key, reset=True) in events
    p.send("1", 2, f"112=AFTER{SOH}")
    assert p.out() == ["35=0|34=2|49=GW|56=PEER|112=AFTER"]


def test_reset_on_logon_setting_answers_with_141():
    store = MemoryStore()
    store.set_next_sender(40)
    store.set_next_target(40)
    p = Peer(store=store, reset_on_logon=True)
    p.logon(extra=f"141=Y{SOH}")
    assert p.out() == ["35=A|34=1|49=GW|56=PEER|98=0|108=30|141=Y"]
    assert p.s.next_target_seq == 2


def test_logon_seq_too_low_is_logged_out():
    store = MemoryStore()
    store.set_next_target(10)
    p = Peer(store=store)
    events = p.logon(seq=3)
    assert p.out() == ["35=5|34=1|49=GW|56=PEER|58=MsgSeqNum too low, expecting 10 but received 3"]
    assert kinds(events) == ["Disconnect"]


# -- heartbeats -----------------------------------------------------------------------------

def test_heartbeat_then_test_request_then_disconnect_on_silence_4a():
    p = logged_on()
    p.s.heartbeat_s  # taken from the peer's Logon
    p.clock.advance(30)
    p.s.on_timer()
    assert p.out() == ["35=0|34=2|49=GW|56=PEER"]
    assert p.s.next_deadline() == pytest.approx(100 + 36)
    p.clock.advance(6)
    p.s.on_timer()
    assert p.out() == ["35=1|34=3|49=GW|56=PEER|112=TEST"]
    p.clock.advance(36)
    p.s.on_timer()
    assert kinds(p.pump()) == ["LoggedOut", "Disconnect"]


def test_test_request_answered_resets_the_probe_counter_4a_4b():
    p = Peer()
    p.logon(hb=5)
    p.out()
    p.clock.advance(5)
    p.s.on_timer()
    p.clock.advance(1)
    p.s.on_timer()
    assert p.out() == ["35=0|34=2|49=GW|56=PEER", "35=1|34=3|49=GW|56=PEER|112=TEST"]
    p.send("0", 2, f"112=TEST{SOH}")
    p.send("1", 3, f"112=ALIVE{SOH}")
    assert p.out() == ["35=0|34=4|49=GW|56=PEER|112=ALIVE"]
    p.clock.advance(6.5)
    p.s.on_timer()             # a fresh interval: a TestRequest, not a disconnect
    assert p.out() == ["35=1|34=5|49=GW|56=PEER|112=TEST"]


def test_our_latency_probe_and_its_heartbeat():
    p = logged_on()
    p.s.send_test_request("PROBE-1")
    assert p.out() == ["35=1|34=2|49=GW|56=PEER|112=PROBE-1"]
    events = p.send("0", 2, f"112=PROBE-1{SOH}")
    assert events[0].message.get(112) == "PROBE-1"


# -- sequence numbers -----------------------------------------------------------------------

def test_seq_too_high_resend_request_and_queue_2b():
    p = logged_on()
    p.send("0", 2)
    p.send("0", 3)
    events = p.send("0", 7)
    assert p.out() == ["35=2|34=2|49=GW|56=PEER|7=4|16=0"]
    assert ev.GapDetected(begin=4, end=0) in events
    for seq in (4, 5, 6):
        p.send("0", seq, poss_dup=True, orig_offset=0)
    assert p.s.next_target_seq == 8            # the queued 7 counted
    assert ev.ResendCompleted() in p.events
    p.send("1", 8, f"112=CAUGHTUP{SOH}")
    assert p.out() == ["35=0|34=3|49=GW|56=PEER|112=CAUGHTUP"]
    p.send("5", 9)
    assert p.out() == ["35=5|34=4|49=GW|56=PEER"]


def test_queued_app_messages_are_delivered_in_order_after_the_gap():
    p = logged_on()
    p.send("D", 4, f"11=C{SOH}")
    p.send("D", 3, f"11=B{SOH}")
    assert p.out() == ["35=2|34=2|49=GW|56=PEER|7=2|16=0"]
    events = p.send("D", 2, f"11=A{SOH}", poss_dup=True, orig_offset=-1)
    apps = [e.message.get(11) for e in events if isinstance(e, ev.AppMessageReceived)]
    assert apps == ["A", "B", "C"]
    assert p.s.next_target_seq == 5


def test_out_of_order_queue_is_capped():
    p = logged_on(max_out_of_order=3)
    for seq in range(10, 20):
        p.send("0", seq)
    assert len(p.s._queue) == 3
    assert p.out() == ["35=2|34=2|49=GW|56=PEER|7=2|16=0"]     # one request, not ten


def test_seq_too_low_without_possdup_logout_and_disconnect_2c():
    p = logged_on()
    for seq in (2, 3, 4):
        p.send("0", seq)
    events = p.send("0", 2)
    assert p.out() == ["35=5|34=2|49=GW|56=PEER|58=MsgSeqNum too low, expecting 5 but received 2"]
    assert kinds(events)[-1] == "Disconnect"


def test_possdup_already_received_is_ignored_2e():
    p = logged_on()
    p.send("0", 2)
    assert p.send("1", 2, f"112=DUPLICATE{SOH}", poss_dup=True, orig_offset=0) == []
    assert p.out() == []
    p.send("1", 3, f"112=NEXT{SOH}")
    assert p.out() == ["35=0|34=2|49=GW|56=PEER|112=NEXT"]


def test_possdup_not_received_is_processed_2e():
    p = logged_on()
    p.send("0", 2)
    p.send("1", 3, f"112=POSSDUP{SOH}", poss_dup=True, orig_offset=-1)
    assert p.out() == ["35=0|34=2|49=GW|56=PEER|112=POSSDUP"]


def test_app_possdup_flag_is_passed_on():
    p = logged_on()
    events = p.send("D", 2, f"11=X{SOH}", poss_dup=True, orig_offset=-1)
    assert events == [ev.AppMessageReceived(message=events[0].message, poss_dup=True)]


def test_next_item_gives_the_in_sequence_app_message_itself():
    """next_item: the fast path's message as its Message (no event made), anything else as
    next_event gives it; next_event wraps the same message in an AppMessageReceived."""
    from gateway.fix.codec import Message
    p = logged_on()
    p.s.receive_data(p.raw("D", 2, f"11=X{SOH}55=EURUSD{SOH}", poss_dup=True, orig_offset=-1)
                     + p.raw("D", 3, f"11=Y{SOH}"))
    first = p.s.next_item()
    assert type(first) is Message and first.get(11) == "X" and first.get(43) == "Y"
    event = p.s.next_event()
    assert event == ev.AppMessageReceived(message=event.message, poss_dup=False)
    assert event.message.get(11) == "Y"
    assert p.s.next_item() is NEED_DATA and p.s.next_target_seq == 4
    p.s.receive_data(p.raw("0", 4))                      # an admin message: its event, as before
    assert kinds([p.s.next_item()]) == ["AdminMessageReceived"]
    p.s.receive_data(p.raw("D", 9, f"11=Z{SOH}"))        # a gap: events, no message
    assert "GapDetected" in kinds(iter(p.s.next_item, NEED_DATA))


def test_possdup_orig_sending_time_too_high_reject_then_logout_2f():
    p = logged_on()
    p.send("1", 2, f"112=ONE{SOH}")
    p.send("1", 3, f"112=TWO{SOH}")
    p.out()
    p.send("1", 2, f"112=ONE{SOH}", poss_dup=True, orig_offset=10)
    assert p.out() == ["35=3|34=4|49=GW|56=PEER|45=2|58=SendingTime accuracy problem|372=1|373=10",
                       "35=5|34=5|49=GW|56=PEER"]
    assert p.s.state == LOGOUT_SENT
    events = p.send("5", 4)
    assert p.out() == []                       # our Logout was the first: no second one
    assert kinds(events)[-1] == "Disconnect"


def test_possdup_without_orig_sending_time_rejected_2g():
    p = logged_on()
    p.send("1", 2, f"112=ONE{SOH}")
    p.send("1", 3, f"112=TWO{SOH}")
    p.out()
    p.send("1", 2, f"112=ONE{SOH}", poss_dup=True)
    assert p.out() == ["35=3|34=4|49=GW|56=PEER|45=2|58=Required tag missing|371=122|372=1|373=1"]
    p.send("1", 4, f"112=THREE{SOH}")
    assert p.out() == ["35=0|34=5|49=GW|56=PEER|112=THREE"]


def test_garbled_and_bad_checksum_are_ignored_2d_3b():
    p = logged_on()
    bad_sum = p.raw("0", 2)[:-4] + b"256\x01"
    assert p.feed(bad_sum) == []
    garbled = p.raw("0", 2).replace(b"49=PEER", b"4garbled9=PEER")
    assert p.feed(garbled) == []
    assert p.s.next_target_seq == 2 and p.out() == []
    p.send("0", 2)
    assert p.s.next_target_seq == 3
    p.feed(p.raw("1", 3, f"112=BADSUM{SOH}")[:-4] + b"256\x01")
    p.send("0", 4)
    assert p.out() == ["35=2|34=2|49=GW|56=PEER|7=3|16=0"]
    p.send("4", 3, f"36=4{SOH}123=Y{SOH}", poss_dup=True, orig_offset=0)
    p.send("1", 5, f"112=CAUGHTUP{SOH}")
    assert p.out() == ["35=0|34=3|49=GW|56=PEER|112=CAUGHTUP"]


def test_reject_received_consumes_its_number_7():
    p = logged_on()
    events = p.send("3", 2, f"45=1{SOH}")
    assert kinds(events) == ["AdminMessageReceived"]
    p.send("1", 3, f"112=AFTERREJECT{SOH}")
    assert p.out() == ["35=0|34=2|49=GW|56=PEER|112=AFTERREJECT"]


# -- CompID, SendingTime, BeginString ---------------------------------------------------------

@pytest.mark.parametrize("kw", [dict(sender="XPEERX"), dict(target="XGWX")])
def test_comp_id_problem_reject_then_logout_2k(kw):
    p = logged_on()
    p.send("1", 2, f"112=WRONG{SOH}", **kw)
    assert p.out() == ["35=3|34=2|49=GW|56=PEER|45=2|58=CompID problem|372=1|373=9",
                       "35=5|34=3|49=GW|56=PEER"]
    events = p.send("5", 3)
    assert kinds(events)[-1] == "Disconnect"


@pytest.mark.parametrize("offset", [-121, 121])
def test_sending_time_out_of_range_2o(offset):
    p = logged_on()
    p.send("0", 2, offset=offset)
    assert p.out() == ["35=3|34=2|49=GW|56=PEER|45=2|58=SendingTime accuracy problem|372=0|373=10",
                       "35=5|34=3|49=GW|56=PEER"]


def test_latency_check_can_be_switched_off():
    p = logged_on(check_latency=False)
    p.send("0", 2, offset=-3600)
    assert p.out() == [] and p.s.next_target_seq == 3


def test_wrong_begin_string_logout_then_timeout_2i_13a():
    p = logged_on()
    p.send("1", 2, f"112=OLD{SOH}", begin="FIX.4.2")
    assert p.out() == ["35=5|34=2|49=GW|56=PEER|58=Incorrect BeginString"]
    p.clock.advance(2.1)
    p.s.on_timer()
    assert kinds(p.pump())[-1] == "Disconnect"


# -- SequenceReset --------------------------------------------------------------------------

def test_gap_fill_equal_moves_expected_10():
    p = logged_on()
    p.send("4", 2, f"36=20{SOH}123=Y{SOH}")
    p.send("1", 20, f"112=TWENTY{SOH}")
    assert p.out() == ["35=0|34=2|49=GW|56=PEER|112=TWENTY"]


def test_gap_fill_greater_is_a_gap_10():
    p = logged_on()
    p.send("4", 10, f"36=20{SOH}123=Y{SOH}")
    assert p.out() == ["35=2|34=2|49=GW|56=PEER|7=2|16=0"]
    p.send("5", 2)
    assert p.out() == ["35=5|34=3|49=GW|56=PEER"]


def test_gap_fill_less_ignored_with_possdup_logout_without_10():
    p = logged_on()
    p.send("4", 1, f"36=20{SOH}123=Y{SOH}", poss_dup=True, orig_offset=-1)
    p.send("1", 2, f"112=STILLTWO{SOH}")
    assert p.out() == ["35=0|34=2|49=GW|56=PEER|112=STILLTWO"]
    events = p.send("4", 1, f"36=20{SOH}123=Y{SOH}")
    assert p.out() == ["35=5|34=3|49=GW|56=PEER|58=MsgSeqNum too low, expecting 3 but received 1"]
    assert kinds(events)[-1] == "Disconnect"


def test_reset_greater_moves_expected_whatever_its_number_11a():
    p = logged_on()
    p.send("4", 0, f"36=25{SOH}")
    p.send("1", 25, f"112=TWENTYFIVE{SOH}")
    assert p.out() == ["35=0|34=2|49=GW|56=PEER|112=TWENTYFIVE"]
    p.send("4", 0, f"36=50{SOH}123=N{SOH}")
    p.send("1", 50, f"112=FIFTY{SOH}")
    assert p.out() == ["35=0|34=3|49=GW|56=PEER|112=FIFTY"]


def test_reset_equal_changes_nothing_11b():
    p = logged_on()
    p.send("4", 0, f"36=2{SOH}")
    p.send("1", 2, f"112=TWO{SOH}")
    assert p.out() == ["35=0|34=2|49=GW|56=PEER|112=TWO"]


def test_reset_less_is_rejected_11c():
    p = logged_on()
    p.send("4", 0, f"36=1{SOH}")
    assert p.out() == ["35=3|34=2|49=GW|56=PEER|45=0|58=Value is incorrect (out of range) for this tag|372=4|373=5"]
    p.send("1", 2, f"112=TWO{SOH}")
    assert p.out() == ["35=0|34=3|49=GW|56=PEER|112=TWO"]


# -- ResendRequest from the peer ------------------------------------------------------------

def _bmr(p: Peer, seq: int) -> None:
    """The application's answer to an unsupported QuoteRequest (2r)."""
    p.s.send("j", f"45={seq}{SOH}58=Unsupported{SOH}372=R{SOH}380=3{SOH}")


def test_resend_admin_and_app_messages_8():
    p = logged_on()
    p.send("1", 2, f"112=A2{SOH}")
    p.send("R", 3, f"131=Q3{SOH}")
    _bmr(p, 3)
    p.send("1", 4, f"112=A4{SOH}")
    p.send("R", 5, f"131=Q5{SOH}")
    _bmr(p, 5)
    p.out()
    p.send("2", 6, f"7=1{SOH}16=0{SOH}")
    out = frames(p.s.data_to_send())
    assert [fields(m) for m in out] == [
        "35=4|34=1|43=Y|49=GW|56=PEER|36=3|123=Y",
        "35=j|34=3|43=Y|49=GW|56=PEER|45=3|58=Unsupported|372=R|380=3",
        "35=4|34=4|43=Y|49=GW|56=PEER|36=5|123=Y",
        "35=j|34=5|43=Y|49=GW|56=PEER|45=5|58=Unsupported|372=R|380=3"]
    assert all(m.get(122) for m in out)
    p.send("1", 7, f"112=AFTER{SOH}")
    assert p.out() == ["35=0|34=6|49=GW|56=PEER|112=AFTER"]


def test_resent_app_message_keeps_its_original_sending_time():
    p = logged_on()
    p.s.send("D", f"11=ORIG{SOH}")
    first = frames(p.s.data_to_send())[0]
    p.clock.advance(5)
    p.send("2", 2, f"7=2{SOH}16=2{SOH}")
    again = frames(p.s.data_to_send())[0]
    assert again.get(122) == first.get(52) != again.get(52)
    assert again.get(43) == "Y" and again.get(11) == "ORIG"


def test_resend_only_admin_one_gap_fill_8():
    p = logged_on()
    for seq in (2, 3, 4):
        p.send("1", seq, f"112=A{seq}{SOH}")
    p.out()
    p.send("2", 5, f"7=1{SOH}16=4{SOH}")
    assert p.out() == ["35=4|34=1|43=Y|49=GW|56=PEER|36=5|123=Y"]
    p.send("1", 6, f"112=A6{SOH}")
    p.out()
    p.send("2", 7, f"7=1{SOH}16=0{SOH}")
    assert p.out() == ["35=4|34=1|43=Y|49=GW|56=PEER|36=6|123=Y"]


def test_resend_only_app_then_trailing_gap_fill_8():
    p = logged_on()
    for seq in (2, 3, 4):
        p.send("R", seq, f"131=Q{seq}{SOH}")
        _bmr(p, seq)
    p.out()
    p.send("2", 5, f"7=2{SOH}16=4{SOH}")
    assert [o.split("|")[0:3] for o in p.out()] == [["35=j", "34=2", "43=Y"], ["35=j", "34=3", "43=Y"],
                                                   ["35=j", "34=4", "43=Y"]]
    p.send("1", 6, f"112=AFTER{SOH}")
    p.out()
    p.send("2", 7, f"7=2{SOH}16=0{SOH}")
    out = p.out()
    assert len(out) == 4 and out[-1] == "35=4|34=5|43=Y|49=GW|56=PEER|36=6|123=Y"


def test_simultaneous_resend_requests_20():
    p = logged_on()
    for seq in (2, 3):
        p.send("R", seq, f"131=Q{seq}{SOH}")
        _bmr(p, seq)
    p.out()
    p.send("0", 7)
    assert p.out() == ["35=2|34=4|49=GW|56=PEER|7=4|16=0"]
    p.send("2", 8, f"7=2{SOH}16=3{SOH}")
    assert [o[:17] for o in p.out()] == ["35=j|34=2|43=Y|49", "35=j|34=3|43=Y|49"]
    for seq in (4, 5, 6):
        p.send("0", seq, poss_dup=True, orig_offset=0)
    assert p.s.next_target_seq == 9           # 7 and the ResendRequest 8 counted
    p.send("5", 9)
    assert p.out() == ["35=5|34=5|49=GW|56=PEER"]


def test_resend_streams_in_bounded_batches_and_new_messages_wait():
    p = logged_on(max_resend_bytes=1024)
    for i in range(200):
        p.s.send("D", f"11=ORDER{i:05d}{SOH}55=EURUSD{SOH}")
    p.out()
    p.send("2", 2, f"7=1{SOH}16=0{SOH}")
    p.s.send("D", f"11=NEW{SOH}")             # sent while the resend streams: goes after it
    batches = []
    while chunk := p.s.data_to_send():
        batches.append(chunk)
        assert len(batches) < 100
    assert len(batches) > 10 and max(len(b) for b in batches) < 1024 + 200
    msgs = [m for b in batches for m in frames(b)]
    assert [m.seq_num for m in msgs] == [1] + list(range(2, 202)) + [202]
    assert msgs[0].msg_type == "4" and msgs[-1].get(11) == "NEW" and msgs[-1].get(43) is None


def test_resend_without_persisted_messages_is_one_gap_fill():
    p = logged_on(persist_messages=False)
    p.s.send("D", f"11=X{SOH}")
    p.out()
    p.send("2", 2, f"7=1{SOH}16=0{SOH}")
    assert p.out() == ["35=4|34=1|43=Y|49=GW|56=PEER|36=3|123=Y"]


def test_our_resend_requests_in_chunks():
    p = logged_on(resend_chunk_size=2)
    p.send("0", 7)
    assert p.out() == ["35=2|34=2|49=GW|56=PEER|7=2|16=3"]
    p.send("0", 2, poss_dup=True, orig_offset=0)
    p.send("0", 3, poss_dup=True, orig_offset=0)
    assert p.out() == ["35=2|34=3|49=GW|56=PEER|7=4|16=5"]
    p.send("4", 4, f"36=7{SOH}123=Y{SOH}", poss_dup=True, orig_offset=0)
    assert p.s.next_target_seq == 8 and p.s.state == ACTIVE


# -- logout ---------------------------------------------------------------------------------

def test_our_logout_answered():
    p = logged_on()
    p.s.logout("bye")
    assert p.out() == ["35=5|34=2|49=GW|56=PEER|58=bye"]
    assert p.s.state == LOGOUT_SENT
    events = p.send("5", 2)
    assert p.out() == [] and kinds(events)[-2:] == ["LoggedOut", "Disconnect"]


def test_our_logout_times_out():
    p = logged_on()
    p.s.logout()
    p.out()
    assert p.s.next_deadline() == pytest.approx(102.0)
    p.clock.advance(2)
    p.s.on_timer()
    assert kinds(p.pump())[-1] == "Disconnect"


def test_reset_on_logout_and_disconnect():
    p = logged_on(reset_on_logout=True)
    p.s.send("D", f"11=X{SOH}")
    p.send("5", 2)
    assert p.s.next_sender_seq == 1 and p.s.next_target_seq == 1
    q = logged_on(reset_on_disconnect=True)
    q.s.connection_lost()
    assert q.s.next_sender_seq == 1 and kinds(q.pump()) == ["LoggedOut"]


def test_peer_close_is_a_disconnect():
    p = logged_on()
    events = p.feed(b"")
    assert kinds(events) == ["LoggedOut", "Disconnect"]


# -- operator commands and send -------------------------------------------------------------

def test_operator_sets_sequence_numbers():
    p = logged_on()
    p.s.set_next_sender_seq(100)
    p.s.set_next_target_seq(50)
    p.s.send("D", f"11=X{SOH}")
    assert p.out() == ["35=D|34=100|49=GW|56=PEER|11=X"]
    p.send("0", 50)
    assert p.s.next_target_seq == 51


def test_send_before_logon_is_a_local_error():
    from gateway.fix.errors import LocalFixError
    p = Peer()
    with pytest.raises(LocalFixError):
        p.s.send("D", f"11=X{SOH}")


def test_send_stores_before_queueing():
    p = logged_on()
    seq = p.s.send("D", f"11=X{SOH}55=EURUSD{SOH}", extra_header=f"50=DESK{SOH}")
    stored = dict(p.store.load_range(seq, seq))[seq]
    assert p.s.data_to_send() == stored
    assert fields(parse(stored)) == "35=D|34=2|49=GW|56=PEER|50=DESK|11=X|55=EURUSD"


# -- SessionPair: our initiator against our acceptor -----------------------------------------

class SessionPair:
    """An initiator Session and an acceptor Session joined by memory; one clock."""

    def __init__(self, **kw) -> None:
        self.clock = FakeClock(100.0)
        only_init, only_acc = kw.pop("initiator", {}), kw.pop("acceptor", {})
        ikw, akw = {**kw, **only_init}, {**kw, **only_acc}
        self.init = make("initiator", self.clock, sender="BANK", target="VENUE", **ikw)
        self.acc = make("acceptor", self.clock, sender="VENUE", target="BANK", **akw)
        self.got: dict[str, list] = {"init": [], "acc": []}

    def connect(self) -> None:
        self.init.connection_made()
        self.acc.connection_made()
        self.run()

    def run(self, rounds: int = 50) -> None:
        for _ in range(rounds):
            moved = False
            for name, me, other in (("init", self.init, self.acc), ("acc", self.acc, self.init)):
                while (e := me.next_event()) is not NEED_DATA:
                    self.got[name].append(e)
                    if isinstance(e, ev.LogonReceived):
                        me.accept_logon()
                data = me.data_to_send()
                if data:
                    other.receive_data(data)
                    moved = True
            if not moved:
                return
        raise AssertionError("the pair never settled")

    def tick(self, seconds: float) -> None:
        self.clock.advance(seconds)
        self.init.on_timer()
        self.acc.on_timer()
        self.run()


def test_pair_logon_order_and_execution_report():
    pair = SessionPair()
    pair.connect()
    assert pair.init.state == ACTIVE and pair.acc.state == ACTIVE
    assert kinds(pair.got["init"]) == ["Connected", "LoggedOn"]
    pair.init.send("D", f"11=ORD1{SOH}55=EURUSD{SOH}54=1{SOH}38=100{SOH}40=2{SOH}44=1.1{SOH}")
    pair.run()
    new = pair.got["acc"][-1]
    assert isinstance(new, ev.AppMessageReceived) and new.message.get(11) == "ORD1"
    pair.acc.send("8", f"37=X1{SOH}11=ORD1{SOH}150=0{SOH}39=0{SOH}")
    pair.run()
    assert pair.got["init"][-1].message.get(37) == "X1"


def test_pair_heartbeats_keep_both_alive():
    pair = SessionPair()
    pair.connect()
    for _ in range(20):
        pair.tick(10)
    assert pair.init.state == ACTIVE and pair.acc.state == ACTIVE
    assert not any(isinstance(e, ev.Disconnect) for e in pair.got["init"] + pair.got["acc"])


def test_pair_initiator_logon_timeout():
    pair = SessionPair()
    pair.init.connection_made()
    pair.init.data_to_send()            # lost: the acceptor never hears it
    pair.clock.advance(10)
    pair.init.on_timer()
    assert isinstance(pair.init.next_event(), ev.Connected)
    assert isinstance(pair.init.next_event(), ev.Disconnect)


def test_pair_logon_fields_and_reset_on_logon():
    pair = SessionPair(initiator=dict(reset_on_logon=True, logon_fields=((553, "user"), (554, "pw"))))
    pair.init.connection_made()
    logon = frames(pair.init.data_to_send())[0]
    assert fields(logon) == "35=A|34=1|49=BANK|56=VENUE|98=0|108=30|141=Y|553=user|554=pw"
    pair.acc.connection_made()
    pair.acc.receive_data(logon.raw)
    pair.run()
    assert pair.init.state == ACTIVE and pair.acc.next_target_seq == 2


def test_pair_logout_handshake_from_initiator():
    pair = SessionPair()
    pair.connect()
    pair.init.logout("done")
    pair.run()
    assert kinds(pair.got["acc"])[-2:] == ["LoggedOut", "Disconnect"]
    assert kinds(pair.got["init"])[-2:] == ["LoggedOut", "Disconnect"]


def test_pair_recovers_a_lost_message_after_reconnect():
    store = MemoryStore()
    pair = SessionPair(acceptor=dict(store=store))
    pair.connect()
    pair.acc.send("8", f"37=A{SOH}")
    pair.acc.data_to_send()            # lost on the wire
    pair.acc.connection_lost()
    pair.init.connection_lost()
    pair.connect()                     # numbers kept: the initiator sees the gap
    reports = [e.message.get(37) for e in pair.got["init"] if isinstance(e, ev.AppMessageReceived)]
    assert reports == ["A"]
    assert pair.got["init"][-1] == ev.ResendCompleted() or ev.ResendCompleted() in pair.got["init"]


# -- the certification scripts themselves, played against an acceptor Session ----------------

def _scripts() -> list:
    import pathlib
    root = pathlib.Path(__file__).resolve().parents[2] / "gateway/apps/certify/scenarios/fix44"
    # Two-connection scripts (1b duplicate identity) are the transport's: it sees both sockets.
    return sorted(p for p in root.glob("*.def") if "I2," not in p.read_text(encoding="latin-1"))


class ScriptPeer(Peer):
    """Plays one .def script: I lines in, E lines compared, the application answers every
    application message with a BusinessMessageReject (380=3), as the certified peer does."""

    HB = 30

    def __init__(self, dictionary) -> None:
        self.dictionary = dictionary
        self.store = MemoryStore()
        self.clock = FakeClock(100.0)
        self.pending: list = []
        self.events = []
        self.s = None

    def connect(self) -> None:
        self.s = make("acceptor", self.clock, self.store, dictionary=self.dictionary,
                      reset_on_logon=True)
        self.s.connection_made()
        self.disconnected = False
        self.pump()

    def pump(self) -> list:
        got = super().pump() if self.s is not None else []
        for e in got:
            if isinstance(e, ev.AppMessageReceived):
                m = e.message
                self.s.send("j", f"45={m.seq_num}{SOH}58=Unsupported message type{SOH}"
                                 f"372={m.msg_type}{SOH}380=3{SOH}")
            if isinstance(e, ev.Disconnect):
                self.disconnected = True
        self.auto_accept = True
        data = self.s.data_to_send()
        if data:
            self.pending += frames(data)
        return got

    def subst(self, text: str) -> str:
        def time_text(m) -> str:
            return utc_timestamp(self.wall() + int(m.group(1) or 0))
        import re
        text = text.replace("<SENDER>", "PEER").replace("<TARGET>", "GW").replace("<HEARTBEAT>", str(self.HB))
        return re.sub(r"<TIME([+-]\d+)?>", time_text, text)

    def send_line(self, line: str) -> None:
        pairs = [f.split("=", 1) for f in self.subst(line).split(SOH) if f]
        begin = pairs[0][1]
        length = next((v for t, v in pairs if t == "9"), None)
        checksum = next((v for t, v in pairs if t == "10"), None)
        body = "".join(f"{t}={v}{SOH}" for t, v in pairs if t not in ("8", "9", "10"))
        n = len(body)
        if length is not None and length.startswith("<LEN"):
            n += int(length[4:-1] or 0)
        data = f"8={begin}{SOH}9={n}{SOH}{body}".encode("latin-1")
        data += b"10=%s\x01" % (checksum.encode() if checksum else b"%03d" % (sum(data) & 255))
        self.feed(data)

    def expect_line(self, line: str) -> None:
        for _ in range(5):                   # silence expected: let the timers run
            if self.pending:
                break
            self.clock.set(max(self.s.next_deadline() or self.clock.now(), self.clock.now()))
            self.s.on_timer()
            self.pump()
        assert self.pending, f"nothing sent, expected {line!r}"
        got = self.pending.pop(0)
        want = [f.split("=", 1) for f in line.replace("<TIME>", "T").replace("<TARGET>", "GW")
                .replace("<SENDER>", "PEER").replace("<HEARTBEAT>", str(self.HB)).split(SOH) if f]
        got_pairs = [(str(t), v) for t, v in got.pairs if t not in (9, 10)]
        assert [t for t, _ in got_pairs] == [t for t, _ in want], (fields(got), line)
        for (t, v), (_, w) in zip(got_pairs, want):
            if w in ("T", "<ANY>", "*") or t in ("52", "122"):
                continue
            assert v == w, (t, fields(got), line)

    def expect_disconnect(self) -> None:
        for _ in range(5):
            if self.disconnected:
                break
            self.clock.set(max(self.s.next_deadline() or self.clock.now(), self.clock.now()))
            self.s.on_timer()
            self.pump()
        assert self.disconnected and not self.pending, [fields(m) for m in self.pending]
        self.s.connection_lost()


@pytest.fixture(scope="module")
def fix44():
    from gateway.fix.dictionary import Dictionary
    return Dictionary.load()


@pytest.mark.parametrize("path", _scripts(), ids=lambda p: p.stem)
def test_certification_script(path, fix44):
    peer = ScriptPeer(fix44)
    for number, line in enumerate(path.read_text(encoding="latin-1").splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        try:
            if line == "iCONNECT":
                peer.connect()
            elif line == "eDISCONNECT":
                peer.expect_disconnect()
            elif line.startswith("I"):
                peer.send_line(line[1:])
            elif line.startswith("E"):
                peer.expect_line(line[1:])
        except AssertionError as e:
            raise AssertionError(f"{path.name}:{number}: {line!r}: {e}") from None


# -- initiator side and restarts --------------------------------------------------------------

def test_initiator_logon_answer_too_high_asks_for_the_gap():
    pair = SessionPair()
    pair.acc._store.set_next_sender(5)          # the venue is ahead of us
    pair.connect()
    assert ev.GapDetected(begin=1, end=0) in pair.got["init"]
    assert ev.ResendCompleted() in pair.got["init"]          # the venue gap-filled 1..4
    assert pair.init.next_target_seq == 6 and pair.init.state == ACTIVE


def test_initiator_logon_refused_reports_the_reason():
    pair = SessionPair()
    pair.init.connection_made()
    pair.acc.connection_made()
    pair.acc.receive_data(pair.init.data_to_send())
    assert isinstance(pair.acc.next_event(), ev.Connected)
    assert isinstance(pair.acc.next_event(), ev.LogonReceived)
    pair.acc.refuse_logon("unknown user")
    pair.init.receive_data(pair.acc.data_to_send())
    got = [pair.init.next_event() for _ in range(3)]
    assert got[-1] == ev.Disconnect(reason="logon refused: unknown user")


def test_session_over_file_store_survives_a_restart(tmp_path):
    from gateway.fix.store import FileStore
    key = "FIX.4.4:GW->PEER"
    p = logged_on(store=FileStore(tmp_path, key))
    p.s.send("8", f"37=E1{SOH}")
    p.send("0", 2)
    p.out()
    p.s.connection_lost()
    p.store.close()
    store = FileStore(tmp_path, key)               # a new process
    assert (store.next_sender_seq, store.next_target_seq) == (3, 3)
    q = Peer(store=store)
    q.logon(seq=3)
    assert q.out() == ["35=A|34=3|49=GW|56=PEER|98=0|108=30"]
    q.send("2", 4, f"7=1{SOH}16=0{SOH}")
    assert q.out() == ["35=4|34=1|43=Y|49=GW|56=PEER|36=2|123=Y",
                       "35=8|34=2|43=Y|49=GW|56=PEER|37=E1",
                       "35=4|34=3|43=Y|49=GW|56=PEER|36=4|123=Y"]
    store.close()


def test_a_hole_left_after_a_partial_resend_is_asked_for_again():
    p = logged_on()
    p.send("0", 5)
    assert p.out() == ["35=2|34=2|49=GW|56=PEER|7=2|16=0"]
    p.send("0", 9)                                   # covered by the open request: no new one
    assert p.out() == []
    p.send("4", 2, f"36=6{SOH}123=Y{SOH}", poss_dup=True, orig_offset=0)   # fills 2-5 only
    assert p.s.next_target_seq == 6
    assert p.out() == ["35=2|34=3|49=GW|56=PEER|7=6|16=0"]
    p.send("4", 6, f"36=9{SOH}123=Y{SOH}", poss_dup=True, orig_offset=0)
    assert p.s.next_target_seq == 10 and p.s.state == ACTIVE


def test_frames_to_send_is_data_to_send_one_frame_each():
    """The driver's pull: the queued frames as a list (theirs to keep), the same bytes that
    data_to_send() would join; [] and b"" when nothing is queued."""
    p = logged_on()
    assert p.s.frames_to_send() == [] and p.s.data_to_send() == b""
    p.s.send("D", "11=A\x0155=X\x01")
    p.s.send("D", "11=B\x0155=X\x01")
    got = p.s.frames_to_send()
    assert [fields(parse(f)) for f in got] == ["35=D|34=2|49=GW|56=PEER|11=A|55=X",
                                               "35=D|34=3|49=GW|56=PEER|11=B|55=X"]
    got.clear()                                       # the caller's list: the queue is not it
    p.s.send("D", "11=C\x0155=X\x01")
    assert p.out() == ["35=D|34=4|49=GW|56=PEER|11=C|55=X"]
    assert p.s.frames_to_send() == []
