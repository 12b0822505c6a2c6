"""The simulated FIX 4.4 exchange: one or more venues in one process.

- ``engine``: price-time matching engine (sans-IO, injected clock) and ``events`` it emits,
- ``flow``: seeded background order flow (model + the thread that drives it),
- ``marketdata``: subscriptions, snapshots and per-step incremental diffs,
- ``proxy``: latency model and the per-venue TCP delay proxy,
- ``fixmsgs`` / ``venue``: the quickfix edge (acceptor, handlers, message builders),
- ``exchange``: ``SimExchange``, the programmatic API; ``cli``: ``fixgw sim``;
- ``config``: ``SimConfig`` (format documented in configs/sim.toml).

Modules are imported explicitly (``from sim_exchange.exchange import SimExchange``) so that
engine-only users do not load quickfix.
"""
