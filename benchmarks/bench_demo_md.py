"""Market data into L2 books, per message: what the demo's client and the gateway do on every W/X
(prints, asserts nothing).

    .venv/bin/python benchmarks/bench_demo_md.py [--messages 20000] [--rounds 5]
    FIXGW_PURE=1 .venv/bin/python benchmarks/bench_demo_md.py             # the .py files
    cp benchmarks/bench_demo_md.py /tmp && PYTHONPATH=/path/base .venv/bin/python /tmp/bench_demo_md.py
    valgrind --tool=callgrind .venv/bin/python benchmarks/bench_demo_md.py --callgrind

A stream of incrementals (X) shaped like the simulator's (one level changed; a level deleted
and one added; a trade and the touch it shrank; a requote of two levels a side) over three
symbols, after a snapshot (W) of five levels a side, as (tag, value) pairs with the header
and trailer (what ``Message.pairs`` holds). Timed: ``mdfeed.VenueBooks.on_incremental`` (the
client's ``MarketFeed``), ``market.MarketState.on_venue_app`` (the gateway) and the client's
whole path after the parse (``MarketFeed.on_message``: books, the driver, the demo's scalper
trading on fake sessions, every venue sending the stream), CPU time
per message; ``entry``: per entry, the lead's move that fires the scalper -> the NewOrderSingle
handed to the session (timed), then the IOC's cancel report (``--callgrind`` counts both) (``time.thread_time``), the median of ``--rounds`` rounds, in a hot loop (the
demo runs them cold, several times slower). ``--callgrind``: one untimed pass of each; two
runs under valgrind with different ``--messages`` give instructions per message from the
difference of their totals (start-up cancels out).
"""
from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(1, str(ROOT))       # after PYTHONPATH: a copy in /tmp measures the tree on PYTHONPATH

import gateway  # noqa: E402,F401  (accel decides compiled or pure first)
from gateway.common import accel  # noqa: E402
from gateway.common.clock import MONOTONIC  # noqa: E402
from gateway.core.book import L2Book  # noqa: E402
from gateway.core.mdfeed import VenueBooks  # noqa: E402

SYMBOLS = (("EURUSD", 1.1, 0.00001), ("BTCUSD", 60000.0, 0.5), ("AAPL", 190.0, 0.01))
HEADER = ((8, "FIX.4.4"), (9, "180"), (35, "X"), (34, "1"), (49, "ALPHA"), (52, "20261202-05:00:00.000000"),
          (56, "CLIENT"))


def _px(x: float) -> str:
    return f"{x:.6f}".rstrip("0").rstrip(".")


def snapshot(symbol: str, mid: float, tick: float) -> list[tuple[int, str]]:
    pairs = list(HEADER[:2]) + [(35, "W")] + list(HEADER[3:]) + [(262, "REQ-1"), (55, symbol), (268, "10")]
    for k in range(5):
        pairs += [(269, "0"), (270, _px(mid - (k + 1) * tick)), (271, "300")]
        pairs += [(269, "1"), (270, _px(mid + (k + 1) * tick)), (271, "300")]
    return pairs + [(10, "000")]


def stream(n: int, seed: int = 7) -> list[list[tuple[int, str]]]:
    """``n`` incrementals in the simulator's shapes (fixtext.incremental: 279, 269, 55, 270, 271)."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        symbol, mid, tick = SYMBOLS[rng.randrange(3)]
        shape = rng.random()
        entries: list[tuple[str, str, float, str | None]] = []
        if shape < 0.4:
            side = rng.choice("01")
            k = rng.randint(1, 5)
            entries.append(("1", side, mid + (k if side == "1" else -k) * tick, str(rng.randint(100, 900))))
        elif shape < 0.7:
            side = rng.choice("01")
            k = rng.randint(1, 5)
            px = mid + (k if side == "1" else -k) * tick
            entries += [("2", side, px, None), ("0", side, px, str(rng.randint(100, 900)))]
        elif shape < 0.85:
            entries += [("0", "2", mid + tick, "100"), ("1", "1", mid + tick, "200")]
        else:
            for side in "01":
                for k in (1, 2):
                    entries.append(("1", side, mid + (k if side == "1" else -k) * tick, str(rng.randint(100, 900))))
        pairs = list(HEADER) + [(262, "REQ-1"), (268, str(len(entries)))]
        for action, kind, px, qty in entries:
            pairs += [(279, action), (269, kind), (55, symbol), (270, _px(px))]
            if qty is not None:
                pairs.append((271, qty))
        out.append(pairs + [(10, "000")])
    return out


def _feed() -> VenueBooks:
    vb = VenueBooks("ALPHA", lambda s: L2Book(s, MONOTONIC))
    for symbol, mid, tick in SYMBOLS:
        vb.on_snapshot(snapshot(symbol, mid, tick))
    return vb


def _market():
    from gateway.apps.server.config import RoutingConfig
    from gateway.core.market import MarketState
    state = MarketState(RoutingConfig(), MONOTONIC)
    state.register_venue("ALPHA")
    state.on_venue_up("ALPHA", "s", subscribe=False)
    for symbol, mid, tick in SYMBOLS:
        state.on_venue_app("ALPHA", _Msg(snapshot(symbol, mid, tick)), "W")
    return state


class _Msg:
    __slots__ = ("pairs",)

    def __init__(self, pairs: list[tuple[int, str]]) -> None:
        self.pairs = pairs


def time_feed(msgs: list, n: int | None = None) -> float:
    vb = _feed()
    t0 = time.thread_time()
    for pairs in msgs[:n]:
        vb.on_incremental(pairs)
    return (time.thread_time() - t0) / len(msgs) * 1e6


def time_market(msgs: list, n: int | None = None) -> float:
    state = _market()
    wrapped = [_Msg(p) for p in msgs]
    t0 = time.thread_time()
    for m in wrapped[:n]:
        state.on_venue_app("ALPHA", m, "X")
    return (time.thread_time() - t0) / len(msgs) * 1e6


class _Session:
    """What MarketFeed and StrategyDriver read of a session handle; sends are counted."""

    def __init__(self, target: str) -> None:
        self.target_comp_id = target
        self.received_at = 0.0
        self.sent = 0

    def send(self, msg_type: str, body: str) -> bool:
        self.sent += 1
        return True

    def flush(self) -> None:
        pass


def _client(clock=MONOTONIC):
    """The demo's client objects (feed, driver, scalper from configs/demo), trading, on fake sessions."""
    from gateway.apps.client.driver import StrategyDriver
    from gateway.apps.client.feed import MarketFeed, VenueAddress
    from gateway.apps.demo.config import load_demo_config
    from gateway.core.strategies.scalper import Scalper
    from gateway.fix.codec import parse, encode
    cfg = load_demo_config()
    strategy = Scalper(cfg.scalper())
    venues = [VenueAddress(name=v, host="127.0.0.1", port=1) for v in ("ALPHA", "BRAVO", "CHARLIE")]
    feed = MarketFeed(venues, [s for s, _, _ in SYMBOLS], {s: t for s, _, t in SYMBOLS}, probe_interval_s=0.0,
                      clock=clock)
    driver = StrategyDriver(strategy, feed, clock=clock)
    sessions = {v.name: _Session(v.name) for v in venues}
    oms = _Session("FIXGW")
    driver.on_logon(oms)
    feed.on_ready = None
    for v, sess in sessions.items():
        feed.sessions[v] = sess
        for symbol, mid, tick in SYMBOLS:
            body = "".join(f"{t}={x}\x01" for t, x in snapshot(symbol, mid, tick)[7:-1])
            feed.on_message(sess, parse(encode("FIX.4.4", "W", f"34=1\x0149={v}\x0152=20261202-05:00:00.000\x0156=CLIENT\x01", body)))
    driver.trading = True           # no timer: start_trading needs a running loop

    def message(pairs: list[tuple[int, str]], venue: str):
        body = "".join(f"{t}={x}\x01" for t, x in pairs[7:-1])
        return sessions[venue], parse(encode("FIX.4.4", "X", f"34=2\x0149={venue}\x0152=20261202-05:00:00.000\x0156=CLIENT\x01", body))
    return feed, message, oms


def _entries(n: int):
    """What one entry costs the client: BRAVO's (the lead's) EURUSD quote moves a tick up, then
    down, ... (the X of a requote: both touches replaced); each move fires the scalper's entry,
    and the IOC's cancel (a missed entry) closes the trip before the next move. A fake clock
    steps 0.1 s per move (past the cooldown). Returns the calls, in order, and the driver."""
    from gateway.common.clock import FakeClock
    from gateway.fix.codec import encode, parse
    clock = FakeClock(1000.0)
    feed, message, oms = _client(clock)
    driver = feed.listeners[0].__self__
    mid, tick = 1.1, 0.00001
    head = list(HEADER) + [(262, "REQ-1"), (268, "4")]

    def move(up: bool) -> list[tuple[int, str]]:
        old_bid, new_bid = (mid - tick, mid) if up else (mid, mid - tick)
        old_ask, new_ask = (mid + tick, mid + 2 * tick) if up else (mid + 2 * tick, mid + tick)
        pairs = list(head)
        for action, kind, px, qty in (("2", "0", old_bid, None), ("0", "0", new_bid, "300"),
                                      ("2", "1", old_ask, None), ("0", "1", new_ask, "300")):
            pairs += [(279, action), (269, kind), (55, "EURUSD"), (270, _px(px))]
            if qty is not None:
                pairs.append((271, qty))
        return pairs + [(10, "000")]

    def cancel(cl: str):
        body = (f"37=O1\x0111={cl}\x0117=E1\x01150=4\x0139=4\x0155=EURUSD\x0154=1\x0138=100\x0114=0\x01"
                "151=0\x016=0\x0131=0\x0132=0\x01")
        return parse(encode("FIX.4.4", "8", "34=2\x0149=FIXGW\x0152=20261202-05:00:00.000\x0156=DEMO\x01", body))

    up, down = message(move(True), "BRAVO"), message(move(False), "BRAVO")
    feed.on_message(*down)                    # the lead's first mid: no signal yet
    prefix = driver.strategy.cfg.id_prefix
    reports = [cancel(f"{prefix}-{k + 1}") for k in range(max(n, 4000))]   # the same set-up for any n
    return clock, feed, driver, oms, [up, down], reports


def time_entry(msgs: list, n: int | None = None) -> float:
    """CPU per entry: the lead's move -> the NewOrderSingle handed to the (fake) session; the
    IOC's cancel report, which closes the trip, is handled apart (untimed)."""
    count = min(len(msgs), 4000) if n is None else n
    clock, feed, driver, oms, moves, reports = _entries(count)
    orders = driver.log.orders
    spent = 0.0
    for k in range(count):
        clock.advance(0.1)
        sess, msg = moves[k % 2]
        t0 = time.thread_time()
        feed.on_message(sess, msg)
        spent += time.thread_time() - t0
        if len(orders) != k + 1:
            raise RuntimeError(f"move {k}: no entry")
        driver.on_message(oms, reports[k])
    return spent / count * 1e6


def time_client(msgs: list, n: int | None = None) -> float:
    feed, message, oms = _client()
    venues = ("ALPHA", "BRAVO", "CHARLIE")
    framed = [message(p, venues[i % 3]) for i, p in enumerate(msgs)]
    t0 = time.thread_time()
    for sess, msg in framed[:n]:
        feed.on_message(sess, msg)
    return (time.thread_time() - t0) / len(msgs) * 1e6


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--messages", type=int, default=20000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--callgrind", action="store_true",
                    help="one untimed pass over the first --messages of a fixed stream of 4,000 (under valgrind: "
                         "run twice with different --messages and divide the difference of the totals by the "
                         "difference of the counts)")
    ap.add_argument("--only", choices=("feed", "market", "client", "entry"), help="only this part")
    args = ap.parse_args(argv)
    msgs = stream(max(args.messages, 4000) if args.callgrind else args.messages)
    mode = accel.mode() if hasattr(accel, "mode") else "?"
    print(f"tree {Path(gateway.__file__).parents[1]}, accel {mode}, {args.messages} X messages "
          f"({statistics.mean(sum(1 for t, _ in p if t == 270) for p in msgs):.1f} entries/message)")
    parts = {"feed": ("client feed  VenueBooks.on_incremental", time_feed),
             "market": ("gateway      MarketState.on_venue_app  ", time_market),
             "client": ("client whole MarketFeed.on_message     ", time_client),
             "entry": ("client entry lead move -> NOS (+ cancel)", time_entry)}
    chosen = [parts[args.only]] if args.only else list(parts.values())
    if args.callgrind:
        for _, fn in chosen:
            fn(msgs, args.messages)
        return 0
    for name, fn in chosen:
        xs = [fn(msgs) for _ in range(args.rounds)]
        print(f"  {name}  {statistics.median(xs):6.2f} us/message (min {min(xs):.2f}, max {max(xs):.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
