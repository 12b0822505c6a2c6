"""The simulated FIX 4.4 exchange: one or more venues in one process.

- ``native`` / ``fixtext``: a venue on our FIX engine (``engine = "native"``, the default);
  every native venue of a process runs on ONE asyncio loop,
- ``publish``: engine events -> reports and market data, shared by both venue engines,
- ``delayline``: injected latency on that loop (timerfd timer, one line per direction),
- ``market``: flow sources, fair-value price formation across venues, fast competitors,
- ``flow``: seeded background order flow (model; a thread drives it for quickfix venues),
- ``venue`` / ``fixmsgs`` / ``proxy``: the quickfix backend (acceptor, messages, TCP delay proxy),
- ``exchange``: ``SimExchange``, the programmatic API; ``cli``: ``fixgw sim``;
- ``config``: ``SimConfig`` (format documented in configs/sim.toml).

The matching engine, its events and market-data subscriptions are in ``gateway.core.matching``;
the latency models in ``gateway.core.models.latency``. Modules are imported explicitly
(``from sim_exchange.exchange import SimExchange``) so that native-only users never load quickfix.
"""
# gateway decides, before any compiled module of ours can load, whether they all load
# compiled or all pure (gateway/common/accel.py; sim_exchange.fixtext is one of them).
import gateway  # noqa: E402,F401
