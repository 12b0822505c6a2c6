"""Dictionary: loading FIX44.xml and QuickFIX's reject reasons for the certification cases
(gateway/apps/certify/scenarios/fix44/14*, 15, 2q, 2r, 21)."""
from __future__ import annotations

import pytest

from gateway.fix.codec import parse
from gateway.fix.dictionary import Dictionary
from gateway.fix.errors import REJECT_TEXT, RemoteFixError, UnsupportedVersion

HDR = "49=CLIENT|52=20240102-03:04:05.678|56=GW|"
NOS = "11=ORD1|21=1|38=1000|40=2|44=1.1|54=1|55=EURUSD|60=20240102-03:04:05.678|"


@pytest.fixture(scope="module")
def dd() -> Dictionary:
    return Dictionary.load()


def msg(fields: str):
    """'35=D|34=2|...' (SOH written as '|') -> parsed Message with 8, 9 and 10 computed."""
    body = fields.replace("|", "\x01").encode("latin-1")
    data = b"8=FIX.4.4\x019=%d\x01" % len(body) + body
    return parse(data + b"10=%03d\x01" % (sum(data) & 255))


def rejected(dd: Dictionary, fields: str, **switches) -> tuple[int, int | None]:
    with pytest.raises(RemoteFixError) as err:
        dd.validate(msg(fields), **switches)
    assert str(err.value) == REJECT_TEXT[err.value.reject_reason]
    return err.value.reject_reason, err.value.ref_tag


def test_load_basics(dd):
    assert dd.begin_string == "FIX.4.4"
    assert Dictionary.load() is dd
    assert dd.is_admin("0") and dd.is_admin("A") and not dd.is_admin("D")
    assert {"0", "1", "2", "3", "4", "5", "A", "D", "8", "R", "j"} <= dd.msg_types
    assert dd.field_name(11) == "ClOrdID" and dd.tag_of("ClOrdID") == 11
    assert {8, 9, 35, 49, 56, 34, 52} <= dd.header_tags and {10, 89, 93} <= dd.trailer_tags
    assert dd.data_tags[90] == 91 and dd.data_tags[95] == 96 and dd.data_tags[93] == 89
    assert "2" in dd.enums(40)


def test_valid_messages_pass(dd):
    dd.validate(msg(f"35=D|34=2|{HDR}{NOS}"))
    dd.validate(msg(f"35=0|34=2|{HDR}"))
    dd.validate(msg(f"35=A|34=1|{HDR}98=0|108=30|"))
    dd.validate(msg(f"35=1|56=GW|52=20240102-03:04:05|34=2|49=CLIENT|112=REORDERED|"))  # case 15


def test_valid_groups_pass(dd):
    dd.validate(msg(f"35=D|34=2|{HDR}{NOS}386=2|336=PRE-OPEN|336=AFTER-HOURS|"))
    dd.validate(msg(f"35=R|49=C|52=20240102-03:04:05|34=3|56=GW|146=1|55=EURUSD|131=Q3|"))  # 15
    dd.validate(msg(f"35=R|34=2|{HDR}131=QZERO|146=1|55=EURUSD|454=0|"))                     # 21
    dd.validate(msg(f"35=R|34=2|{HDR}131=Q|146=2|55=EURUSD|454=1|455=X|456=4|55=GBPUSD|"))
    dd.validate(msg(f"35=D|34=2|{HDR}{NOS}453=2|448=P1|447=D|452=1|802=1|523=S|803=4|448=P2|"))


def test_14a_invalid_tag_number(dd):
    assert rejected(dd, f"35=0|34=2|{HDR}999=HI|") == (0, 999)
    assert rejected(dd, f"35=0|34=3|{HDR}0=HI|") == (0, 0)
    assert rejected(dd, f"35=0|34=4|{HDR}-1=HI|") == (0, -1)


def test_14b_required_tag_missing(dd):
    assert rejected(dd, "35=0|34=2|49=CLIENT|52=20240102-03:04:05|") == (1, 56)
    nos = f"35=D|49=C|34=3|56=GW|52=20240102-03:04:05|55=EURUSD|44=1.1|38=1000|60=20240102-03:04:05|54=1|11=X|"
    assert rejected(dd, nos) == (1, 40)


def test_14c_tag_not_defined_for_msg_type(dd):
    assert rejected(dd, f"35=0|34=2|{HDR}55=EURUSD|") == (2, 55)


def test_14d_tag_without_value(dd):
    assert rejected(dd, f"35=1|34=2|{HDR}112=|") == (4, 112)
    dd.validate(msg(f"35=1|34=2|{HDR}112=|"), check_fields_have_values=False)


def test_14e_value_out_of_range(dd):
    assert rejected(dd, f"35=D|34=2|{HDR}{NOS.replace('21=1', '21=4')}") == (5, 21)
    assert rejected(dd, f"35=D|34=3|{HDR}{NOS}167=BOO|") == (5, 167)


def test_14f_incorrect_data_format(dd):
    assert rejected(dd, f"35=D|34=2|{HDR}{NOS.replace('38=1000', '38=+1000')}") == (6, 38)
    assert rejected(dd, f"35=D|34=2|{HDR}{NOS.replace('44=1.1', '44=1e3')}") == (6, 44)
    assert rejected(dd, f"35=D|34=2|{HDR}{NOS.replace('60=20240102-03:04:05.678', '60=2024')}") == (6, 60)
    assert rejected(dd, f"35=0|34=2|{HDR}43=X|") == (6, 43)
    dd.validate(msg(f"35=1|34=3|{HDR}112=FMT|"))


def test_14g_header_body_trailer_out_of_order(dd):
    assert rejected(dd, "35=1|112=BODYFIRST|34=2|49=C|52=20240102-03:04:05|56=GW|") == (14, 34)
    nos = f"35=D|55=EURUSD|34=3|49=C|52=20240102-03:04:05|56=GW|{NOS.replace('55=EURUSD|', '')}"
    assert rejected(dd, nos) == (14, 34)
    assert rejected(dd, f"35=0|34=2|{HDR}93=1|89=X|112=LATE|") == (14, 112)
    both_off = dict(check_fields_out_of_order=False)
    dd.validate(msg("35=1|112=BODYFIRST|34=2|49=C|52=20240102-03:04:05|56=GW|"), **both_off)
    dd.validate(msg("35=1|112=BODYFIRST|34=2|49=C|52=20240102-03:04:05|56=GW|"),
                validate_fields_out_of_order=False)


def test_14h_repeated_tag(dd):
    assert rejected(dd, f"35=D|34=2|{HDR}{NOS.replace('40=2|', '40=2|40=1|')}") == (13, 40)
    assert rejected(dd, f"35=0|34=2|{HDR}49=AGAIN|") == (13, 49)


def test_14i_group_count_not_equal(dd):
    bad = f"35=D|34=2|{HDR}{NOS}386=3|336=PRE-OPEN|336=AFTER-HOURS|"
    assert rejected(dd, bad) == (16, 386)
    assert rejected(dd, f"35=D|34=2|{HDR}{NOS}386=x|336=PRE-OPEN|") == (6, 386)


def test_group_first_field_wrong_is_15(dd):
    bad = f"35=D|34=2|{HDR}{NOS}453=1|447=D|448=P1|"
    assert rejected(dd, bad) == (15, 447)
    repeated = f"35=D|34=2|{HDR}{NOS}453=2|448=P1|447=D|447=P|"
    assert rejected(dd, repeated) == (15, 447)


def test_group_entry_order_only_when_strict(dd):
    out_of_order = f"35=D|34=2|{HDR}{NOS}453=1|448=P1|452=1|447=D|"
    dd.validate(msg(out_of_order))
    assert rejected(dd, out_of_order, strict_group_order=True) == (15, 447)


def test_nested_group_count_and_required(dd):
    nested_bad = f"35=D|34=2|{HDR}{NOS}453=1|448=P1|447=D|802=2|523=S|"
    assert rejected(dd, nested_bad) == (16, 802)
    no_delim = f"35=R|34=2|{HDR}131=Q|146=1|454=1|455=X|"   # entry must start with 55
    assert rejected(dd, no_delim) == (15, 454)


def test_2q_invalid_msg_type(dd):
    assert rejected(dd, f"35=*|34=2|{HDR}") == (11, None)


def test_2r_unsupported_but_valid_msg_type_passes(dd):
    dd.validate(msg(f"35=R|34=2|{HDR}131=CERTQ1|146=1|55=EURUSD|"))


def test_user_defined_tags(dd):
    assert rejected(dd, f"35=0|34=2|{HDR}5000=X|") == (0, 5000)
    dd.validate(msg(f"35=0|34=2|{HDR}5000=X|"), check_user_defined_fields=False)
    assert rejected(dd, f"35=0|34=2|{HDR}999=X|", check_user_defined_fields=False) == (0, 999)


def test_allow_unknown_msg_fields(dd):
    dd.validate(msg(f"35=0|34=2|{HDR}55=EURUSD|999=X|"), allow_unknown_msg_fields=True)
    assert rejected(dd, f"35=0|34=2|{HDR}5001=X|", allow_unknown_msg_fields=True) == (0, 5001)


def test_wrong_begin_string(dd):
    body = f"35=0|34=2|{HDR}".replace("|", "\x01").encode()
    data = b"8=FIX.4.2\x019=%d\x01" % len(body) + body
    with pytest.raises(UnsupportedVersion):
        dd.validate(parse(data + b"10=%03d\x01" % (sum(data) & 255)))


def test_quickfix_check_order_first_error_wins(dd):
    # required (1) is checked before formats: a missing 40 beats a bad 38
    bad = f"35=D|34=2|{HDR}{NOS.replace('40=2|', '').replace('38=1000', '38=x')}"
    assert rejected(dd, bad) == (1, 40)
    # within the body, fields are checked in ascending tag order
    bad = f"35=D|34=2|{HDR}{NOS.replace('54=1', '54=Z').replace('21=1', '21=9')}"
    assert rejected(dd, bad) == (5, 21)


def test_secure_data_in_header_validates(dd):
    secret = "35=D\x0156=X"
    dd.validate(msg(f"35=0|34=2|{HDR}90={len(secret)}|91={secret}|"))


def test_group_entries_reader(dd):
    m = msg(f"35=D|34=2|{HDR}{NOS}453=2|448=P1|447=D|452=1|802=1|523=S|803=4|448=P2|447=D|")
    assert dd.group_entries(m, 453) == [{448: "P1", 447: "D", 452: "1", 802: "1"},
                                        {448: "P2", 447: "D"}]


def test_local_mkt_date_is_a_string_as_in_quickfix(dd):
    dd.validate(msg(f"35=D|34=2|{HDR}{NOS}64=2024|"))
    assert rejected(dd, f"35=D|34=2|{HDR}{NOS.replace('60=20240102-03:04:05.678', '60=20240132-00:00:00')}") == (6, 60)


def test_int_and_float_formats_are_ascii_only_and_quickfix_strict():
    from gateway.fix.dictionary import _is_float, _is_int
    floats = {"1": True, "-1": True, "1.": True, ".5": True, "-.5": True, "0": True, "-0.0": True,
              "": False, "-": False, ".": False, "-.": False, "1.2.3": False, "--1": False,
              "+1": False, "1e5": False, "12a": False, "\u0661\u0662": False, "\u00b2": False}
    ints = {"1": True, "-12": True, "0": True, "": False, "-": False, "1.0": False, "+1": False,
            "--1": False, "\u0661": False, "\u00b2": False, "1 ": False}
    assert {v: _is_float(v) for v in floats} == floats
    assert {v: _is_int(v) for v in ints} == ints


MDX = (f"35=X|34=2|{HDR}262=R1|268=2|279=0|269=0|55=EURUSD|270=1.1|271=100|"
       "279=0|269=1|55=EURUSD|270=1.2|271=200|")


def test_group_shape_proved_once_then_fast_with_values_and_counts_still_checked(dd):
    from gateway.fix.dictionary import _TO_PROVE
    good = msg(MDX)
    dd.validate(good)                                   # careful, then proved
    tags = tuple(t for t, _ in good.pairs)
    plan = dd.message_spec("X").shapes[tags]
    assert plan and plan is not _TO_PROVE
    assert dd._fast_ok(msg(MDX.replace("270=1.2", "270=1.3")))       # other values: fast
    # the same tags with a wrong count, a bad enum, a bad number: the careful path's reasons
    assert rejected(dd, MDX.replace("268=2", "268=3")) == (16, 268)
    assert rejected(dd, MDX.replace("269=1", "269=Z")) == (5, 269)
    assert rejected(dd, MDX.replace("271=200", "271=2x0")) == (6, 271)
    assert rejected(dd, MDX.replace("279=0|269=1", "279=7|269=1")) == (5, 279)
    dd.validate(good)


def test_group_shape_valid_only_under_loose_switches_is_not_proved(dd):
    out_of_order = f"35=D|34=2|{HDR}{NOS}453=1|448=P1|452=1|447=D|"
    for _ in range(2):
        dd.validate(msg(out_of_order))
        assert rejected(dd, out_of_order, strict_group_order=True) == (15, 447)
    tags = tuple(t for t, _ in msg(out_of_order).pairs)
    assert dd.message_spec("D").shapes[tags] is None


def _forget_layouts() -> None:
    """The codec's layout caches are process-wide: earlier tests (the fuzzers' random tags)
    may have cleared ``_SHAPES`` while a MsgType's last layout still holds the old, equal
    one; start from none so the messages below share one ``Shape`` object."""
    from gateway.fix import codec
    codec._SHAPES.clear()
    codec._LAST_SHAPE.clear()
    codec._LAST_BY_CHAR[:] = [None] * len(codec._LAST_BY_CHAR)


def test_a_layout_shared_by_two_msg_types_keeps_each_ones_plan(dd):
    """A Heartbeat and a Logout with no body have the same tags, so one codec.Shape; the plan
    cached on it is the last asker's (its MessageSpec), never the other type's: each is
    decided by its own spec, whatever the order they come in."""
    _forget_layouts()
    hb = msg("35=0\x0134=2\x0149=A\x0152=20240102-03:04:05.678\x0156=B\x01")
    lo = msg("35=5\x0134=3\x0149=A\x0152=20240102-03:04:05.678\x0156=B\x01")
    tr = msg("35=1\x0134=4\x0149=A\x0152=20240102-03:04:05.678\x0156=B\x01")   # 112 required
    assert hb.shape is not None and hb.shape is lo.shape is tr.shape
    for _ in range(3):
        for m in (hb, lo, hb, hb, lo):
            dd.validate(m)
        with pytest.raises(RemoteFixError) as err:
            dd.validate(tr)
        assert err.value.ref_tag == 112


def test_a_layout_with_a_bad_value_each_time(dd):
    """The plan on the layout decides the tags; the values are checked on every message."""
    good = "35=0\x0134=2\x0149=A\x0152=20240102-03:04:05.678\x0156=B\x01112=X\x01"
    dd.validate(msg(good))
    for bad in ("35=0\x0134=2\x0149=A\x0152=2024-01-02\x0156=B\x01112=X\x01",
                "35=0\x0134=X\x0149=A\x0152=20240102-03:04:05.678\x0156=B\x01112=X\x01"):
        m = msg(bad)
        assert m.shape is msg(good).shape
        with pytest.raises(RemoteFixError):
            dd.validate(m)
    dd.validate(msg(good))
