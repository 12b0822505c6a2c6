"""Codec micro-benchmark: parse+validate a NewOrderSingle, encode an ExecutionReport.

Ours (gateway.fix.codec/dictionary) next to the quickfix binding and simplefix in the same run,
p50/p99 in microseconds per operation (each op timed alone), median over several runs.
When the mypyc build is in use (gateway/common/accel.py), ours runs twice: compiled, and the
pure-Python modules loaded beside it, with the ratio pure / compiled of the p50s.
Prints a table; asserts nothing.

    PYTHONPATH=. python benchmarks/bench_codec.py [--runs 5] [--iters 20000]
"""
from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from types import ModuleType

import gateway.fix.codec as codec_module
import gateway.fix.dictionary as dictionary_module
from gateway.common.paths import FIX44_XML
from gateway.common import accel
from gateway.fix.codec import encode, fix_number

HEADER = "49=CLIENT\x0156=GATEWAY\x0134=12345\x0152=20240102-03:04:05.678\x01"
NOS_BODY = ("11=ORD-000012345\x011=ACC-1\x0121=1\x0138=1000\x0140=2\x0144=1.10525\x0154=1"
            "\x0155=EURUSD\x0159=0\x0160=20240102-03:04:05.678\x0115=USD\x01207=XCME\x01"
            "18=M\x0158=scalp\x01")
NOS = encode("FIX.4.4", "D", HEADER, NOS_BODY)
NOS_TEXT = NOS.decode("latin-1")
# A MarketDataIncrementalRefresh of ten entries (a repeating group), the same layout each time
MDX = encode("FIX.4.4", "X", HEADER, "262=R1\x01268=10\x01" + "".join(
    f"279=1\x01269={i % 2}\x0155=EURUSD\x01270=1.1052{i}\x01271={100 + i}\x01" for i in range(10)))

ER_FIELDS = [(37, "O-1"), (11, "ORD-000012345"), (17, "E-1"), (150, "F"), (39, "2"), (55, "EURUSD"),
             (54, "1"), (38, 1000), (44, 1.10525), (32, 1000), (31, 1.10525), (151, 0), (14, 1000),
             (6, 1.10525), (60, "20240102-03:04:05.678")]


def measure(op: Callable[[], object], iters: int) -> list[float]:
    """Per-op times in microseconds (perf_counter_ns around each call)."""
    clock = time.perf_counter_ns
    out = [0.0] * iters
    for i in range(iters):
        t0 = clock()
        op()
        out[i] = (clock() - t0) / 1000
    return out


def pct(sorted_values: list[float], q: float) -> float:
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


def ours(codec: ModuleType = codec_module, dictionary: ModuleType = dictionary_module,
         ) -> dict[str, Callable[[], object]]:
    dd = dictionary.Dictionary.load(FIX44_XML)
    wall = time.time()
    parse, encode, fix_number, utc_timestamp = (
        codec.parse, codec.encode, codec.fix_number, codec.utc_timestamp)

    def parse_validate():
        dd.validate(parse(NOS))

    def encode_er():
        body = (f"37=O-1\x0111=ORD-000012345\x0117=E-1\x01150=F\x0139=2\x0155=EURUSD\x0154=1\x01"
                f"38={fix_number(1000)}\x0144={fix_number(1.10525)}\x0132={fix_number(1000)}\x01"
                f"31={fix_number(1.10525)}\x01151=0\x0114={fix_number(1000)}\x01"
                f"6={fix_number(1.10525)}\x0160={utc_timestamp(wall)}\x01")
        header = f"49=GATEWAY\x0156=CLIENT\x0134=12345\x0152={utc_timestamp(wall)}\x01"
        return encode("FIX.4.4", "8", header, body)

    def parse_validate_md():
        dd.validate(parse(MDX))

    return {"parse": lambda: parse(NOS), "parse+validate": parse_validate, "encode ER": encode_er,
            "parse+validate MD": parse_validate_md}


def quickfix_ops() -> dict[str, Callable[[], object]] | str:
    try:
        import quickfix as fix
    except ImportError:
        return "quickfix not installed"
    dd = fix.DataDictionary(str(FIX44_XML))

    def parse_validate():
        msg = fix.Message(NOS_TEXT, dd, False)
        dd.validate(msg)

    def encode_er():
        msg = fix.Message()
        header = msg.getHeader()
        header.setField(fix.BeginString("FIX.4.4"))
        header.setField(fix.MsgType("8"))
        header.setField(fix.SenderCompID("GATEWAY"))
        header.setField(fix.TargetCompID("CLIENT"))
        header.setField(fix.MsgSeqNum(12345))
        header.setField(52, "20240102-03:04:05.678")
        for tag, value in ER_FIELDS:
            msg.setField(tag, value if isinstance(value, str) else fix_number(value))
        return msg.toString()

    ops = {"parse": lambda: fix.Message(NOS_TEXT, dd, False), "encode ER": encode_er}
    if hasattr(dd, "validate"):
        ops["parse+validate"] = parse_validate
    return ops


def simplefix_ops() -> dict[str, Callable[[], object]] | str:
    try:
        import simplefix
    except ImportError:
        return "simplefix not installed"

    def parse_only():
        parser = simplefix.FixParser()
        parser.append_buffer(NOS)
        return parser.get_message()

    def encode_er():
        msg = simplefix.FixMessage()
        msg.append_pair(8, "FIX.4.4")
        msg.append_pair(35, "8")
        msg.append_pair(49, "GATEWAY")
        msg.append_pair(56, "CLIENT")
        msg.append_pair(34, 12345)
        msg.append_pair(52, "20240102-03:04:05.678")
        for tag, value in ER_FIELDS:
            msg.append_pair(tag, value if isinstance(value, str) else fix_number(value))
        return msg.encode()

    return {"parse": parse_only, "encode ER": encode_er}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--iters", type=int, default=20000)
    args = ap.parse_args()
    mode, why = accel.mode()
    engines: dict[str, dict[str, Callable[[], object]] | str] = {}
    if mode == "compiled":
        pure = accel.load_pure(["gateway.fix.codec", "gateway.fix.dictionary"])
        engines["ours-mypyc"] = ours()
        engines["ours-pure"] = ours(pure["codec"], pure["dictionary"])
    else:
        engines["ours"] = ours()
    engines["quickfix"] = quickfix_ops()
    engines["simplefix"] = simplefix_ops()
    print(f"NewOrderSingle {len(NOS)} bytes, {NOS.count(1)} fields; MD: MarketDataIncrementalRefresh "
          f"{len(MDX)} bytes, 10 entries; "
          f"{args.runs} runs x {args.iters} ops; us per op, median over runs")
    print(f"gateway.fix codec/dictionary: {mode} ({why})")
    print(f"{'engine':<11} {'operation':<18} {'p50':>8} {'p99':>8}")
    p50_of: dict[tuple[str, str], float] = {}
    for name, ops in engines.items():
        if isinstance(ops, str):
            print(f"{name:<11} {ops}")
            continue
        for op_name, op in ops.items():
            measure(op, 1000)   # warm up
            p50s, p99s = [], []
            for _ in range(args.runs):
                times = sorted(measure(op, args.iters))
                p50s.append(pct(times, 0.50))
                p99s.append(pct(times, 0.99))
            p50_of[name, op_name] = statistics.median(p50s)
            print(f"{name:<11} {op_name:<18} {statistics.median(p50s):8.2f} "
                  f"{statistics.median(p99s):8.2f}")
    for op_name in ("parse", "parse+validate", "encode ER", "parse+validate MD"):
        if ("ours-mypyc", op_name) in p50_of:
            ratio = p50_of["ours-pure", op_name] / p50_of["ours-mypyc", op_name]
            print(f"pure / mypyc p50, {op_name}: {ratio:.2f}")


if __name__ == "__main__":
    main()
