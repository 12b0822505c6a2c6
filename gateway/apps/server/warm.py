"""Hot-path warming: while no orders come, the order path runs on twins (``warm_every_ms``).

Why. On a machine shared with other work (a VM, other processes on the same cores) a
process that sleeps a few milliseconds wakes to caches that other work has filled: the
first order after a pause runs its code and data from memory, many times slower than
back to back. Measured on the 2-core test VM, an order every ~20 ms
(``fixgw bench gateway --gap-ms 20``): the gateway added ~+480 us p50 to the round trip,
against ~+100 us back to back; a TestRequest's encode in a sans-IO session 1.9 us hot,
~90 us after 10 ms asleep. A scalper's orders come sporadically: that cold figure is
the one it lives with.

What. Every ``warm_every_ms``, unless the order journal wrote a record since the last
tick (an order moved: its code is warm already, and a busy loop gets no extra work), one
synthetic order runs through twins of what a real order touches:
- the OMS and venue sessions: sans-IO ``Session`` twins of a real OMS session and a real
  venue session (``NativeSession.make_twin``: same settings and dictionary, a MemoryStore
  that keeps nothing, no socket), fed the NewOrderSingle and the fill as frames, and
  encoding the child order and the fill's ExecutionReport (sequenced, written nowhere);
- the edges and the core: a twin ``Gateway`` built once from the real configuration (its
  own core, risk, orders, metrics and journal), routing DMA to the first venue. Its journal
  is written for real, in ``<store_dir>/warm/`` (the kernel's write path warms with it).
  Every ``TRIM_EVERY`` orders the twin forgets its (finished) orders and its journal file is
  emptied: bounded memory and disk. Buys and sells alternate at one price: the twin's
  position stays flat. Its risk checks are the real ones but for the order rate limit and
  ``reject_without_reference`` (the twin has no marks), which would refuse every warm-up.
Nothing real is touched: not the real sessions, their stores and sockets, the journal,
risk, orders or metrics. Not warmed: the socket writes and reads, the real objects' own
data, the routing policy's ranking (the twin routes DMA).

Cost: CPU while idle (measured on the VM: ~11-15% of a core at 1 ms); an order that
arrives during a warm-up waits for it (~0.1-0.2 ms). Off by default; meant for a gateway
with a core of its own, beside ``busy_poll_us``. Any failure turns it off (logged once).
"""
from __future__ import annotations

import logging
import os
import shutil
import time
from pathlib import Path
from typing import Any, Callable

from gateway.fix.codec import Message, utc_timestamp
from gateway.fix.engine import body_text

log = logging.getLogger("gateway.warm")

TRIM_EVERY = 1_000        # synthetic orders between two trims of the twin (its orders forgotten, journal emptied)
WARM_DIR = "warm"         # under the real store_dir


class TwinHandle:
    """A logged-on session handle over a sans-IO twin ``Session`` (``native.make_twin()``, of
    a real ``NativeSession``): what the edges send is encoded and sequenced by the twin, then
    dropped; ``deliver`` feeds it a message as its peer would send it and returns the
    application message the twin accepted."""

    def __init__(self, native: Any) -> None:
        self.native = native
        self.session = session = native.make_twin()
        self.key = native.key
        s = session.settings
        self.sender_comp_id, self.target_comp_id = s.sender_comp_id, s.target_comp_id
        self.logged_on = True
        self.sent: list[tuple[str, str]] = []

    @property
    def next_sender_seq(self) -> int:
        return self.session.next_sender_seq

    @property
    def next_target_seq(self) -> int:
        return self.session.next_target_seq

    def send(self, msg_type: str, body: Any, *, extra_header: str = "") -> bool:
        text = body if isinstance(body, str) else body_text(body)
        self.session.send(msg_type, text, extra_header=extra_header)
        self.session.data_to_send()
        self.sent.append((msg_type, text))
        return True

    def send_test_request(self, test_req_id: str) -> bool:
        return True

    def deliver(self, msg_type: str, body: str) -> Message | None:
        return self.native.feed_twin(self.session, msg_type, body)


class Twin:
    """The twin Gateway with its two twin handles (``OrderPathWarmer`` builds it at start)."""

    def __init__(self, gateway: Any, oms: TwinHandle, venue: TwinHandle) -> None:
        self.gateway, self.oms, self.venue = gateway, oms, venue


class OrderPathWarmer:
    """Runs ``warm`` on a loop timer (``start``/``stop``); ``make_gateway(cfg)`` builds the twin
    Gateway (app.Gateway: passed in, so this module does not import the process that uses it)."""

    def __init__(self, cfg: Any, make_gateway: Callable[[Any], Any], oms_session: Any, venue_session: Any,
                 journal: Any, every_s: float, wall: Callable[[], float] = time.time) -> None:
        self.cfg = cfg
        self.make_gateway = make_gateway
        self.oms_session, self.venue_session = oms_session, venue_session
        self.journal = journal                 # the real one: its record count says "orders moved"
        self.every_s = every_s
        self.wall = wall
        self.dir = Path(cfg.store_dir) / WARM_DIR
        # a symbol the twin's risk lets through: the allow-list's first, else the market data's
        symbols = cfg.risk.symbols or cfg.routing.md_symbols or ["WARM"]
        self.symbol = symbols[0]
        self.twin: Twin | None = None
        self.warmed = self.skipped = self.trims = 0
        self.routed = 0                        # synthetic orders that reached the twin venue
        self.failed: str | None = None
        self._seen = -1
        self._timer: Any = None
        self._loop: Any = None

    # -- the timer
    def start(self, loop: Any) -> None:
        """Builds the twin (~1.5 ms, before any order), then the timer."""
        self._loop = loop
        if self._guarded(self._build):
            self._timer = loop.call_later(self.every_s, self._tick)
            log.info("order-path warming on: a synthetic order every %.3g ms while idle, twin in %s",
                     self.every_s * 1e3, self.dir)

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._drop()

    def _tick(self) -> None:
        self._timer = None
        seen = self.journal.records_written
        if seen != self._seen:                 # orders moved since the last tick: warm already
            self._seen = seen
            self.skipped += 1
        elif not self._guarded(self.warm):
            return
        self._timer = self._loop.call_later(self.every_s, self._tick)

    def _guarded(self, step: Callable[[], object]) -> bool:
        try:
            step()
            return True
        except Exception as exc:  # noqa: BLE001 - warming must never stop the gateway or touch its flow
            self.failed = f"{type(exc).__name__}: {exc}"
            log.warning("order-path warming failed; off: %s", self.failed, exc_info=True)
            self._drop()
            return False

    def view(self) -> dict:
        return {"every_ms": round(self.every_s * 1e3, 3), "warmed": self.warmed, "skipped_busy": self.skipped,
                "routed": self.routed, "trims": self.trims, "failed": self.failed}

    # -- one synthetic order
    def warm(self) -> None:
        twin = self.twin or self._build()
        n = self.warmed                        # the synthetic order's number (its ClOrdID)
        if n and n % TRIM_EVERY == 0:
            self._trim(twin)
        self.warmed += 1
        gw, oms, venue = twin.gateway, twin.oms, twin.venue
        side = "1" if n & 1 == 0 else "2"      # buy, sell, buy...: flat at one price
        stamp = utc_timestamp(self.wall())
        nos = oms.deliver("D", f"11=WARM-{n}\x0155={self.symbol}\x0154={side}\x0138=1\x0140=2\x0144=1\x01"
                               f"59=3\x0160={stamp}\x01")
        if nos is None:
            raise RuntimeError("the OMS twin session did not accept the warm-up order")
        venue.sent.clear()
        gw.oms.on_message(oms, nos)
        child = next((body for mt, body in venue.sent if mt == "D"), None)
        if child is None:                      # the twin's risk or router refused it: that path ran
            return
        self.routed += 1
        cid = _field(child, "11")
        er = venue.deliver("8", f"37=WV-{n}\x0111={cid}\x0117=WX-{n}\x01150=F\x0139=2\x0155={self.symbol}\x01"
                                f"54={side}\x0138=1\x0132=1\x0131=1\x01151=0\x0114=1\x016=1\x0160={stamp}\x01")
        if er is None:
            raise RuntimeError("the venue twin session did not accept the warm-up fill")
        gw.venues.on_message(venue, er)
        oms.sent.clear()
        venue.sent.clear()

    def _trim(self, twin: Twin) -> None:
        """The twin's finished orders forgotten, its journal file emptied (it appends: the
        next record starts the file again). An order left open (a fill the twin did not
        apply) would keep them all: warming stops rather than grow."""
        if twin.gateway.orders.open:
            raise RuntimeError(f"{len(twin.gateway.orders.open)} warm-up orders left open on the twin")
        twin.gateway.orders.forget_finished()
        os.truncate(twin.gateway.core.journal.path, 0)
        self.trims += 1

    def _build(self) -> Twin:
        self._drop()
        shutil.rmtree(self.dir, ignore_errors=True)
        self.dir.mkdir(parents=True, exist_ok=True)
        real = self.cfg
        first = real.venues[0]
        cfg = real.model_copy(update={
            "store_dir": str(self.dir), "log_dir": "", "venues": [first], "day_end": None, "cpu": None,
            "busy_poll_us": 0, "warm_every_ms": 0.0, "warm_probes": False,
            "admin": real.admin.model_copy(update={"port": 0}),
            "routing": real.routing.model_copy(update={"policy": "dma", "default_venue": first.name}),
            "risk": real.risk.model_copy(update={"max_orders_per_second": None, "reject_without_reference": False})})
        gw = self.make_gateway(cfg)
        gw.log_events = False                  # its "logon" is not a real session's
        oms, venue = TwinHandle(self.oms_session), TwinHandle(self.venue_session)
        gw.oms.handles = {oms.key: oms}
        gw.venues.attach({venue.key: venue})
        gw.oms.on_logon(oms)
        gw.market.on_venue_up(first.name, venue)
        state = gw.venues.venues[first.name]
        state.logged_on, state.state = True, "logged_on"
        self.twin = Twin(gw, oms, venue)
        return self.twin

    def _drop(self) -> None:
        if self.twin is not None:
            twin, self.twin = self.twin, None
            twin.gateway.core.close()


def _field(body: str, tag: str) -> str:
    """The value of ``tag`` in a body text (the child order's ClOrdID)."""
    key = f"\x01{tag}="
    text = "\x01" + body
    at = text.index(key) + len(key)
    return text[at:text.index("\x01", at)]
