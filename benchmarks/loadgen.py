"""A fast FIX load generator for throughput runs: an OMS client and a fake venue, each its own
process, with byte-level framing instead of simplefix (a simplefix client and venue in one
process top out near 4,000 orders/s, below what the gateway can take).

    python benchmarks/loadgen.py venue PORT NAME            # fills every NewOrderSingle at once
    python benchmarks/loadgen.py client PORT TARGET N WINDOW [PREFIX]   # prints a JSON result line

The client's result: ``terminal`` orders (distinct ClOrdIDs with a terminal report), how many of
them ``filled``, ``duplicates`` (terminal reports beyond an order's first) and ``per_s``
(terminal orders per second).

Only what a throughput run needs: Logon, Heartbeat answers to TestRequests, D -> 8 fills.
"""
from __future__ import annotations

import json
import resource
import socket
import sys
import time
from zlib import adler32

SOH = b"\x01"
TERMINAL = (b"2", b"4", b"8", b"C")     # OrdStatus filled, canceled, rejected, expired


_stamp: list = [0, ""]                  # the SendingTime of the current second: [second, text]


def sending_time() -> str:
    """UTC now to the second (``.000``): formatted once a second, not once a message."""
    sec = int(time.time())
    if sec != _stamp[0]:
        _stamp[0], _stamp[1] = sec, time.strftime("%Y%m%d-%H:%M:%S", time.gmtime(sec)) + ".000"
    return _stamp[1]


def frame(msg_type: str, seq: int, sender: str, target: str, body: str) -> bytes:
    """A whole FIX 4.4 message with BodyLength and CheckSum."""
    now = sending_time()
    inner = f"35={msg_type}\x0134={seq}\x0149={sender}\x0152={now}\x0156={target}\x01{body}".encode()
    head = b"8=FIX.4.4\x019=" + str(len(inner)).encode() + SOH
    data = head + inner
    return data + b"10=" + f"{checksum(data):03d}".encode() + SOH


def checksum(data: bytes) -> int:
    """The byte sum mod 256, summed in C: adler32's low half is 1 + the byte sum mod 65521,
    exact for up to 256 bytes at a time (as gateway/fix/codec.py sums it)."""
    total = 0
    for start in range(0, len(data), 256):
        total += (adler32(data[start:start + 256]) & 0xFFFF) - 1
    return total & 255


def messages(buf: bytearray):
    """Split complete messages off the front of ``buf`` (checksum field ends each)."""
    out = []
    start = 0
    while True:
        end = buf.find(b"\x0110=", start)
        if end < 0 or len(buf) < end + 8:
            break
        out.append(bytes(buf[start:end + 8]))
        start = end + 8
    del buf[:start]
    return out


def field(msg: bytes, tag: bytes) -> bytes | None:
    i = msg.find(SOH + tag + b"=")
    if i < 0:
        return None
    i += len(tag) + 2
    return msg[i:msg.find(SOH, i)]


def venue(port: int, name: str) -> None:
    """Serve connections one after another (a port probe is one) until a session logs out."""
    lsock = socket.socket()
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.bind(("127.0.0.1", port))
    lsock.listen(4)
    lsock.settimeout(120)
    for _ in range(100):
        conn, _ = lsock.accept()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn.settimeout(180)
        with conn:
            if serve(conn, name):
                return


def serve(conn: socket.socket, name: str) -> bool:
    """One connection; True when it ended with a Logout."""
    buf, seq, n = bytearray(), 1, 0
    peer = ""                           # the connected session's SenderCompID (from its Logon)
    while True:
        try:
            data = conn.recv(65536)
        except OSError:
            return False
        if not data:
            return False
        buf += data
        out = []
        for msg in messages(buf):
            mt = field(msg, b"35")
            if not peer:
                peer = field(msg, b"49").decode()
            if mt == b"D":
                n += 1
                cid, qty, px = field(msg, b"11").decode(), field(msg, b"38").decode(), field(msg, b"44").decode()
                out.append(frame("8", seq, name, peer,
                                 f"6={px}\x0111={cid}\x0114={qty}\x0117=X{n}\x0131={px}\x0132={qty}\x0137=V{n}\x01"
                                 f"38={qty}\x0139=2\x0154=1\x0155=AAPL\x0160=20260101-00:00:00.000\x01150=F\x01"
                                 f"151=0\x01"))
            elif mt == b"A":
                seq = 1
                out.append(frame("A", seq, name, peer, "98=0\x01108=30\x01"))
            elif mt == b"1":
                out.append(frame("0", seq, name, peer, f"112={field(msg, b'112').decode()}\x01"))
            elif mt == b"5":
                conn.sendall(frame("5", seq, name, peer, ""))
                return True
            else:
                continue
            seq += 1
        if out:
            conn.sendall(b"".join(out))


def client(port: int, target: str, n: int, window: int, sender: str = "OMS1", prefix: str = "L") -> dict:
    """N orders with at most WINDOW in flight; ClOrdIDs PREFIX0, PREFIX1... (a second run against
    the same gateway takes another prefix: its orders are new, not duplicates)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.sendall(frame("A", 1, sender, target, "98=0\x01108=30\x01141=Y\x01"))
    buf, seq = bytearray(), 2
    while not any(field(m, b"35") == b"A" for m in messages(buf)):
        buf += sock.recv(65536)
    sent = done = filled = duplicates = reads = writes = 0
    ended: set[bytes] = set()           # ClOrdIDs with a terminal report: each order counts once
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    deadline = time.monotonic() + 120
    while done < n and time.monotonic() < deadline:
        burst = []
        while sent < n and sent - done < window:
            burst.append(frame("D", seq, sender, target, f"11={prefix}{sent}\x0138=1\x0140=2\x0144=190\x0154=1\x0155=AAPL\x01"
                                                         f"59=3\x0160=20260101-00:00:00.000\x01"))
            seq += 1
            sent += 1
        if burst:
            sock.sendall(b"".join(burst))
            writes += 1
        data = sock.recv(262144)
        reads += 1
        if not data:
            break
        buf += data
        for msg in messages(buf):
            if field(msg, b"35") == b"8" and (status := field(msg, b"39")) in TERMINAL:
                cid = field(msg, b"11")
                if cid in ended:            # a second terminal report of one order: counted, not as done
                    duplicates += 1
                    continue
                ended.add(cid)
                done += 1
                filled += status == b"2"
    elapsed = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = r1.ru_utime + r1.ru_stime - r0.ru_utime - r0.ru_stime
    switches, preempted = r1.ru_nvcsw + r1.ru_nivcsw - r0.ru_nvcsw - r0.ru_nivcsw, r1.ru_nivcsw - r0.ru_nivcsw
    sock.sendall(frame("5", seq, sender, target, ""))
    sock.close()
    return {"orders": n, "terminal": done, "filled": filled, "duplicates": duplicates, "seconds": elapsed,
            "per_s": done / elapsed,
            "usage": {"cpu_us": round(cpu / n * 1e6, 1), "busy": round(cpu / elapsed, 2), "reads": round(reads / n, 3), "writes": round(writes / n, 3),
                      "ctx_switches": round(switches / n, 3), "preempted": round(preempted / n, 3)}}


if __name__ == "__main__":
    role = sys.argv[1]
    if role == "venue":
        venue(int(sys.argv[2]), sys.argv[3])
    else:
        print(json.dumps(client(int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), int(sys.argv[5]),
                                prefix=sys.argv[6] if len(sys.argv) > 6 else "L")), flush=True)
