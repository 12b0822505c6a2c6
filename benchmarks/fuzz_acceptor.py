"""Fuzz a native FIX acceptor over loopback: garbled, truncated and random messages.

    python benchmarks/fuzz_acceptor.py                  # the full run: 100,000 messages
    python benchmarks/fuzz_acceptor.py --messages 5000 --seed 7

A child process runs a native acceptor (``--serve``) with two sessions: FUZZ, which we
log on and then feed mutated messages (after a Logout or a disconnect we log on again
with 141=Y), and WELL, a well-behaved session that sends a TestRequest every 50 ms and
must get its Heartbeat every time. The mutations: flipped and inserted bytes, truncation,
a wrong BodyLength or CheckSum, random tags and values, valid messages with a MsgSeqNum
too high or too low, unknown MsgTypes, repeated and empty fields, SOH inside values, pure
random bytes, an oversized BodyLength. Printed, never asserted: messages sent, reconnects
of FUZZ, what the acceptor answered (Reject, BusinessMessageReject, Logout), the WELL
session's probes answered and its worst round trip, and the acceptor's peak RSS. The
process must be alive at the end (exit status 1 otherwise).
"""
from __future__ import annotations

import argparse
import asyncio
import os
import random
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gateway.fix.codec import Framer, encode, parse, utc_timestamp  # noqa: E402

SOH = b"\x01"
NOS = "11=F{n}\x0155=EURUSD\x0154=1\x0160={t}\x0138=100\x0140=2\x0144=1.1\x0159=3\x01"
BODIES = ["112=T{n}\x01", "58=hello {n}\x01", NOS, "7=1\x0116=0\x01", "36=5\x01123=Y\x01", "45=1\x0158=x\x01"]
TYPES = ["1", "0", "D", "3", "2", "4", "j", "F", "ZZ", "Q"]


# ------------------------------------------------------------------ the acceptor under test
def serve(port: int) -> None:
    from gateway.fix.engine import BaseApplication, Unsupported, create_engine
    from gateway.fix.settings import SessionSettings
    from gateway.fix.transport import new_event_loop

    class App(BaseApplication):
        def on_message(self, session, msg):
            if msg.msg_type != "D":
                raise Unsupported(f"MsgType {msg.msg_type} not supported")
            session.send("8", f"37=1\x0111={msg.get(11, '?')}\x0117=1\x01150=8\x0139=8\x0155=X\x0154=1\x01"
                              f"151=0\x0114=0\x016=0\x0158=fuzz acceptor\x01")

    sessions = [SessionSettings(sender_comp_id="ACC", target_comp_id=c, role="acceptor", reset_on_logon=True)
                for c in ("FUZZ", "WELL")]
    loop = new_event_loop()
    engine = create_engine("native", "acceptor", sessions, App(), host="127.0.0.1", port=port, loop=loop)
    loop.run_until_complete(engine.start())
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    print("ready", flush=True)
    loop.run_until_complete(stop.wait())
    loop.run_until_complete(engine.stop())


# ------------------------------------------------------------------ a raw client
class Client:
    def __init__(self, port: int, sender: str) -> None:
        self.port, self.sender, self.seq = port, sender, 1
        self.sock: socket.socket | None = None
        self.framer = Framer()

    def connect(self) -> bool:
        self.close()
        self.sock = socket.create_connection(("127.0.0.1", self.port), timeout=2)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.framer = Framer()
        self.seq = 1
        self.send("A", "98=0\x01108=30\x01141=Y\x01")
        return any(m.msg_type == "A" for m in self.read(2.0, until="A"))

    def frame(self, msg_type: str, body: str, seq: int | None = None) -> bytes:
        if seq is None:
            seq, self.seq = self.seq, self.seq + 1
        header = f"49={self.sender}\x0156=ACC\x0134={seq}\x0152={utc_timestamp(time.time())}\x01"
        return encode("FIX.4.4", msg_type, header, body)

    def send(self, msg_type: str, body: str, seq: int | None = None) -> None:
        self.raw(self.frame(msg_type, body, seq))

    def raw(self, data: bytes) -> None:
        assert self.sock is not None
        self.sock.sendall(data)

    def read(self, timeout: float, until: str | None = None) -> list:
        """Messages received within ``timeout`` (stops early at MsgType ``until``); [] on close."""
        out, deadline = [], time.monotonic() + timeout
        while self.sock is not None:
            frame = self.framer.next_message()
            if frame is not None:
                try:
                    msg = parse(frame)
                except Exception:  # noqa: BLE001 - the acceptor sent something we cannot read: count it
                    out.append(None)
                    continue
                out.append(msg)
                if until is not None and msg.msg_type == until:
                    return out
                continue
            left = deadline - time.monotonic()
            if left <= 0 and timeout > 0:
                return out
            self.sock.settimeout(max(left, 0.0))   # 0: a non-blocking drain of what has arrived
            try:
                data = self.sock.recv(65536)
            except (socket.timeout, BlockingIOError):
                return out
            except OSError:
                data = b""
            if not data:
                self.close()
                return out
            self.framer.feed(data)
        return out

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None


# ------------------------------------------------------------------ mutations
def mutate(rng: random.Random, client: Client, n: int) -> bytes:
    kind = rng.randrange(12)
    t = utc_timestamp(time.time())
    body = rng.choice(BODIES).format(n=n, t=t)
    msg_type = rng.choice(TYPES)
    if kind == 0:                                   # a valid message
        return client.frame(msg_type, body)
    if kind == 1:                                   # MsgSeqNum too high, or 1 (too low: Logout)
        jump = rng.choice((-3, -1, 5, 50, None))
        return client.frame(msg_type, body, seq=1 if jump is None else max(1, client.seq + jump))
    data = bytearray(client.frame(msg_type, body))
    if kind == 2:                                   # flipped bytes
        for _ in range(rng.randint(1, 4)):
            data[rng.randrange(len(data))] = rng.randrange(256)
    elif kind == 3:                                 # truncated
        data = data[:rng.randrange(1, len(data))]
    elif kind == 4:                                 # inserted junk
        pos = rng.randrange(len(data))
        data[pos:pos] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 20)))
    elif kind == 5:                                 # wrong BodyLength
        return bytes(data).replace(b"\x019=", b"\x019=1", 1)
    elif kind == 6:                                 # wrong CheckSum
        data[-4:-1] = b"%03d" % rng.randrange(1000)
    elif kind == 7:                                 # random tags and values
        junk = "".join(f"{rng.randrange(1, 10000)}={rng.getrandbits(24):x}\x01" for _ in range(rng.randint(1, 6)))
        return client.frame(msg_type, body + junk)
    elif kind == 8:                                 # repeated, empty, SOH-free damage
        return client.frame(msg_type, body + body + "58=\x01")
    elif kind == 9:                                 # random bytes
        return bytes(rng.randrange(256) for _ in range(rng.randint(1, 300)))
    elif kind == 10:                                # oversized BodyLength
        return b"8=FIX.4.4\x019=2000000000\x0135=D\x01" + bytes(50)
    else:                                           # bytes 0x80-0xFF in a text field
        return client.frame(msg_type, "58=" + bytes(range(128, 256)).decode("latin-1") + "\x01")
    return bytes(data)


# ------------------------------------------------------------------ the run
def rss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(messages: int, seed: int, time_limit_s: float = 900.0, quiet: bool = False) -> dict:
    port = free_port()
    proc = subprocess.Popen([sys.executable, __file__, "--serve", str(port)], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    try:
        if proc.stdout.readline().strip() != "ready":
            raise RuntimeError("the acceptor did not start")
        return _drive(proc, port, messages, seed, time_limit_s, quiet)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def _drive(proc: subprocess.Popen, port: int, messages: int, seed: int, time_limit_s: float, quiet: bool) -> dict:
    rng = random.Random(seed)
    fuzz, well = Client(port, "FUZZ"), Client(port, "WELL")
    if not (fuzz.connect() and well.connect()):
        raise RuntimeError("logon failed before fuzzing")
    stats = dict(sent=0, reconnects=0, answers={}, probes=0, probes_answered=0, worst_probe_us=0.0,
                 peak_rss_kb=rss_kb(proc.pid))
    deadline = time.monotonic() + time_limit_s
    next_probe = time.monotonic()
    for n in range(messages):
        if time.monotonic() > deadline:
            break
        if fuzz.sock is None and not _reconnect(fuzz, stats):
            break
        try:
            fuzz.raw(mutate(rng, fuzz, n))
            stats["sent"] += 1
        except OSError:
            fuzz.close()
            continue
        for msg in fuzz.read(0.0):
            key = "unreadable" if msg is None else msg.msg_type
            stats["answers"][key] = stats["answers"].get(key, 0) + 1
        if time.monotonic() >= next_probe:
            _probe(well, stats, n)
            stats["peak_rss_kb"] = max(stats["peak_rss_kb"], rss_kb(proc.pid))
            next_probe = time.monotonic() + 0.05
            if not quiet and n and n % 10000 < 20:
                print(f"  {stats['sent']:,} sent, {stats['reconnects']} reconnects, "
                      f"{stats['probes_answered']}/{stats['probes']} probes", flush=True)
    _probe(well, stats, messages)
    stats["alive"] = proc.poll() is None
    return stats


def _reconnect(client: Client, stats: dict) -> bool:
    for _ in range(20):
        try:
            if client.connect():
                stats["reconnects"] += 1
                return True
        except OSError:
            pass
        time.sleep(0.05)      # a duplicate logon is refused until the old connection is gone
    return False


def _probe(well: Client, stats: dict, n: int) -> None:
    stats["probes"] += 1
    sent = time.perf_counter()
    try:
        well.send("1", f"112=W{n}\x01")
        got = well.read(2.0, until="0")
    except OSError:
        got = []
    if any(m is not None and m.msg_type == "0" and m.get(112) == f"W{n}" for m in got):
        stats["probes_answered"] += 1
        stats["worst_probe_us"] = max(stats["worst_probe_us"], (time.perf_counter() - sent) * 1e6)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--messages", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--serve", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve:
        serve(args.serve)
        return 0
    t0 = time.monotonic()
    s = run(args.messages, args.seed)
    took = time.monotonic() - t0
    print(f"messages sent        {s['sent']:,} in {took:.1f} s ({s['sent'] / took:,.0f}/s)")
    print(f"FUZZ reconnects      {s['reconnects']:,} (after a Logout or a disconnect for cause)")
    print("acceptor answered    " + ", ".join(f"35={k}: {v:,}" for k, v in sorted(s["answers"].items())))
    print(f"WELL probes answered {s['probes_answered']:,}/{s['probes']:,}, worst round trip "
          f"{s['worst_probe_us']:,.0f} us")
    print(f"acceptor peak RSS    {s['peak_rss_kb'] / 1024:.1f} MiB; alive at the end: {s['alive']}")
    return 0 if s["alive"] and s["probes_answered"] == s["probes"] else 1


if __name__ == "__main__":
    sys.exit(main())
