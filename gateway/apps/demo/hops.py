"""Where signal-to-execution goes: FIX messages timed on the loopback wire, hop by hop.

    python -m gateway.apps.demo.hops record --out hops.bin --duration 30 &   # root or CAP_NET_RAW
    fixgw demo --policy scalp --no-control --zero-latency ...
    python -m gateway.apps.demo.hops report hops.bin [--demo-report reports/demo-.../report.json]

``record`` opens a packet socket on ``lo`` and keeps, for every TCP segment with a payload,
the kernel's receive timestamp (``SO_TIMESTAMPNS``: taken when the sender's write reached
the loopback device, so it is the moment the bytes left a process) with the ports and the
payload. No process of the demo is touched and nothing is added to its path; the recorder
costs CPU on the shared cores (a wake-up per segment), which ``report`` does not hide.

``report`` rebuilds the FIX messages per TCP stream and follows every entry order the
client sent (MsgType D from the demo's OMS client):

    md      the last market data message from the lead venue to the client before the order
    c_out   the client's NewOrderSingle on the wire            (md -> c_out: the client)
    g_out   the gateway's child NewOrderSingle to the venue    (c_out -> g_out: the gateway, inbound)
    v_out   the venue's first ExecutionReport for that child   (g_out -> v_out: the venue)
    v_fill  the venue's first fill (or terminal report) for it (v_out -> v_fill: the venue, ack -> fill)
    g_back  the gateway's first ExecutionReport to the client  (v_out -> g_back: the gateway, outbound)
    g_fill  the gateway's first fill (or the IOC's terminal report) to the client
                                                               (v_fill -> g_fill: the gateway, outbound)

Each interval includes the receiver's wake-up, its read, parse and work, and its write;
the loopback "wire" itself adds no measurable time. Times are microseconds.
"""
from __future__ import annotations

import argparse
import json
import math
import socket
import struct
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ETH_P_ALL = 0x0003
SO_TIMESTAMPNS = 35
PACKET_OUTGOING = 4
SOH = b"\x01"
REC = struct.Struct("<dHHI")       # timestamp (s), source port, destination port, payload length


def record(out: Path, duration_s: float, iface: str = "lo") -> int:
    """Write every TCP payload segment seen on ``iface`` for ``duration_s`` seconds; the count."""
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    sock.bind((iface, 0))
    sock.settimeout(0.5)
    deadline = time.monotonic() + duration_s
    # The kernel stamps segments with CLOCK_REALTIME; perf (sched.py) with CLOCK_MONOTONIC.
    clock = {"realtime_minus_monotonic": time.clock_gettime(time.CLOCK_REALTIME) - time.monotonic()}
    Path(f"{out}.clock.json").write_text(json.dumps(clock))
    n = 0
    with open(out, "wb") as f:
        while time.monotonic() < deadline:
            try:
                data, anc, _flags, addr = sock.recvmsg(65600, 64)
            except socket.timeout:
                continue
            if addr[2] == PACKET_OUTGOING:      # loopback shows each segment twice: keep the inbound copy
                continue
            seg = _tcp_payload(data)
            if seg is None:
                continue
            ts = time.time()
            for level, kind, cdata in anc:
                if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
                    sec, nsec = struct.unpack("qq", cdata[:16])
                    ts = sec + nsec * 1e-9
            sport, dport, payload = seg
            f.write(REC.pack(ts, sport, dport, len(payload)))
            f.write(payload)
            n += 1
    return n


def _tcp_payload(frame: bytes) -> tuple[int, int, bytes] | None:
    if len(frame) < 14 + 20 or frame[12:14] != b"\x08\x00":
        return None
    ip = frame[14:]
    ihl = (ip[0] & 0x0F) * 4
    if ip[9] != 6:
        return None
    total = struct.unpack_from("!H", ip, 2)[0]
    tcp = ip[ihl:total]
    if len(tcp) < 20:
        return None
    sport, dport = struct.unpack_from("!HH", tcp, 0)
    off = (tcp[12] >> 4) * 4
    payload = tcp[off:]
    return (sport, dport, bytes(payload)) if payload else None


# ---------------------------------------------------------------- analysis

@dataclass(slots=True)
class Msg:
    at: float
    sender: str
    target: str
    msg_type: str
    fields: dict[str, str] = field(default_factory=dict)


def read_messages(path: Path) -> list[Msg]:
    """Every FIX message in the recording, at the time of the segment that completed it."""
    data = Path(path).read_bytes()
    streams: dict[tuple[int, int], bytearray] = {}
    out: list[Msg] = []
    pos = 0
    while pos + REC.size <= len(data):
        ts, sport, dport, n = REC.unpack_from(data, pos)
        pos += REC.size
        payload = data[pos:pos + n]
        pos += n
        buf = streams.setdefault((sport, dport), bytearray())
        buf += payload
        while True:
            start = buf.find(b"8=FIX")
            if start < 0:
                buf.clear()
                break
            end = buf.find(SOH + b"10=", start)
            if end < 0 or buf.find(SOH, end + 1) < 0:
                del buf[:start]
                break
            stop = buf.find(SOH, end + 1) + 1
            raw = bytes(buf[start:stop])
            del buf[:stop]
            fields: dict[str, str] = {}
            for part in raw.split(SOH):
                tag, _, value = part.partition(b"=")
                key = tag.decode("latin-1")     # any bytes: other traffic on lo may be garbled
                if tag and key not in fields:
                    fields[key] = value.decode(errors="replace")
            out.append(Msg(ts, fields.get("49", ""), fields.get("56", ""), fields.get("35", ""), fields))
    out.sort(key=lambda m: m.at)
    return out


def follow_entries(msgs: list[Msg], client: str = "DEMO", gateway: str = "FIXGW",
                   md_client: str = "CLIENT", lead: str | None = "BRAVO", prefix: str = "") -> list[dict]:
    """One row per client order (ClOrdID starting with ``prefix``): the wire time of each hop."""
    last_md: dict[str, float] = {}
    rows: dict[str, dict] = {}
    child_of: dict[str, str] = {}
    pending: list[str] = []                      # client orders not yet matched to a child
    for m in msgs:
        f = m.fields
        if m.target == md_client and m.msg_type in ("W", "X"):
            last_md[m.sender] = m.at
        elif m.sender == client and m.target == gateway and m.msg_type == "D":
            cl = f.get("11", "")
            if cl.startswith(prefix):
                md = last_md.get(lead) if lead else max(last_md.values(), default=None)
                rows[cl] = {"cl_ord_id": cl, "md": md, "c_out": m.at, "key": (f.get("55"), f.get("54")),
                            "g_out": None, "venue": None, "v_out": None, "v_fill": None, "g_back": None,
                            "g_fill": None,
                            "outcome": None}
                pending.append(cl)
        elif m.sender == gateway and m.target != client and m.msg_type == "D":
            key = (f.get("55"), f.get("54"))
            for cl in pending:
                if rows[cl]["key"] == key:
                    pending.remove(cl)
                    rows[cl]["g_out"], rows[cl]["venue"] = m.at, m.target
                    child_of[f.get("11", "")] = cl
                    break
        elif m.target == gateway and m.msg_type == "8":
            cl = child_of.get(f.get("11", ""))
            if cl is None:
                continue
            if rows[cl]["v_out"] is None:
                rows[cl]["v_out"] = m.at
            if rows[cl]["v_fill"] is None and _fill_or_end(f):
                rows[cl]["v_fill"] = m.at
        elif m.sender == gateway and m.target == client and m.msg_type == "8":
            row = rows.get(f.get("11", ""))
            if row is None:
                continue
            if row["g_back"] is None:
                row["g_back"] = m.at
            if row["g_fill"] is None and _fill_or_end(f):
                row["g_fill"] = m.at
                row["outcome"] = "fill" if float(f.get("32") or 0) > 0 else "no fill"
    return list(rows.values())


def _fill_or_end(f: dict[str, str]) -> bool:
    return float(f.get("32") or 0) > 0 or f.get("39", "") in ("2", "4", "8", "C")


HOPS = (("md", "c_out", "client: market data out of the venue -> NOS out"),
        ("c_out", "g_out", "gateway in: NOS -> child NOS to the venue"),
        ("g_out", "v_out", "venue: child NOS -> first ExecutionReport"),
        ("v_out", "v_fill", "venue: first ER -> fill/terminal ER"),
        ("v_fill", "g_fill", "gateway out: venue fill -> fill to the client"),
        ("v_out", "g_back", "gateway out: venue's first ER -> first ER to the client"),
        ("md", "g_fill", "market data out -> fill/terminal ER out of the gateway"))


def pct(values: list[float], q: float) -> float | None:
    arr = sorted(values)
    if not arr:
        return None
    k = (len(arr) - 1) * q / 100
    lo, hi = math.floor(k), math.ceil(k)
    return arr[lo] + (arr[hi] - arr[lo]) * (k - lo)


def summarize(rows: list[dict], only: str | None = None) -> dict:
    out = {}
    for a, b, label in HOPS:
        xs = [(r[b] - r[a]) * 1e6 for r in rows if r[a] is not None and r[b] is not None
              and (only is None or r["outcome"] == only)]
        out[f"{a}->{b}"] = {"label": label, "n": len(xs), "p50_us": _r(pct(xs, 50)), "p90_us": _r(pct(xs, 90))}
    return out


def _r(x: float | None) -> float | None:
    return None if x is None else round(x, 1)


def render(summary: dict) -> str:
    lines = [f"{'hop':<16} {'n':>5} {'p50 us':>9} {'p90 us':>9}  what"]
    for key, s in summary.items():
        lines.append(f"{key:<16} {s['n']:>5} {_f(s['p50_us'])} {_f(s['p90_us'])}  {s['label']}")
    return "\n".join(lines)


def _f(x: float | None) -> str:
    return f"{'-':>9}" if x is None else f"{x:>9,.0f}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m gateway.apps.demo.hops", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("record", help="record loopback TCP payloads (root or CAP_NET_RAW)")
    r.add_argument("--out", required=True)
    r.add_argument("--duration", type=float, default=30.0)
    r.add_argument("--iface", default="lo")
    a = sub.add_parser("report", help="the hop breakdown of a recording")
    a.add_argument("path")
    a.add_argument("--lead", default="BRAVO")
    a.add_argument("--prefix", default="", help="only client orders whose ClOrdID starts with this")
    a.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    if args.cmd == "record":
        try:
            n = record(Path(args.out), args.duration, args.iface)
        except PermissionError:
            print("hops record: a packet socket needs root or CAP_NET_RAW", file=sys.stderr)
            return 2
        print(f"hops record: {n} segments -> {args.out}")
        return 0
    rows = follow_entries(read_messages(Path(args.path)), lead=args.lead, prefix=args.prefix)
    summary = {"all": summarize(rows), "filled": summarize(rows, "fill")}
    if args.json:
        print(json.dumps({"orders": len(rows), **summary}))
    else:
        print(f"{len(rows)} client orders followed")
        for name, s in summary.items():
            print(f"\n-- {name} entries/exits\n" + render(s))
    return 0


if __name__ == "__main__":
    sys.exit(main())
