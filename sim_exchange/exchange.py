"""SimExchange: every configured venue in one process (the programmatic API).

    ex = SimExchange(SimConfig.load("configs/sim.toml")); ex.start()
    ex.venue("ALPHA").port / .engine / .set_latency(base_us, jitter_us) / .snapshot_stats()
    ex.stop()
"""
from __future__ import annotations

import logging
import time

from gateway.common.clock import MONOTONIC, Clock
from sim_exchange.config import SimConfig
from sim_exchange.venue import Venue

log = logging.getLogger("sim")


class SimExchange:
    def __init__(self, config: SimConfig, clock: Clock = MONOTONIC) -> None:
        self.config = config
        self.venues = {v.name: Venue(v, config, clock) for v in config.venues}
        self._started: list[Venue] = []

    def venue(self, name: str) -> Venue:
        try:
            return self.venues[name]
        except KeyError:
            raise KeyError(f"no venue {name!r} (have {sorted(self.venues)})") from None

    def start(self) -> "SimExchange":
        try:
            for v in self.venues.values():
                v.start()
                self._started.append(v)
        except Exception:
            self.stop()
            raise
        return self

    def stop(self, logout_timeout: float = 2.0) -> None:
        """Log out every counterparty of every venue at once, then stop them (reverse start order)."""
        venues, self._started = list(reversed(self._started)), []
        for v in venues:
            self._guard(v.begin_stop, v)
        deadline = time.monotonic() + logout_timeout
        for v in venues:
            self._guard(lambda: v.finish_stop(max(0.0, deadline - time.monotonic())), v)

    @staticmethod
    def _guard(fn, venue) -> None:
        try:
            fn()
        except Exception:  # noqa: BLE001 - keep stopping the others
            log.exception("stopping venue %s", venue.name)

    def stats(self) -> dict[str, dict]:
        return {name: v.snapshot_stats() for name, v in self.venues.items()}

    def __enter__(self) -> "SimExchange":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
