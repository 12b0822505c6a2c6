"""Strategies and tactics: books and trades in, order commands out (sans-IO).

See ``base.py`` for the contract every strategy follows; it is what lets the same object
run live over FIX (``fixgw trade``, the demo client) and in the backtester.

What a driver does beyond ``base.py`` for the tactics here (``registry.TACTICS``:
scalper, liquidity_fade, momentum, spread_capture):
- Build: ``cls, cfg_cls = registry.lookup(name); s = cls(load_config(path, cfg_cls))``.
- Feed ``on_trade`` for every tape print of every venue (momentum and the fade's
  wall-vs-traded-away test depend on it) and ``on_book`` after each book change.
- Deliver every ExecutionReport of the strategy's orders, including rejects (ExecType 8)
  and the IOC's terminal cancel: a trip only moves on when each of its orders is done.
  ``cum_qty`` must be the order's CumQty (fills are taken from its increase).
- Optionally call ``s.trips.note_sent(cl_ord_id, at)`` when an order actually leaves;
  otherwise entry send time = signal time.
- To end a run: call ``s.stop(now, market)`` (no new entries; every position starts its
  exit), send what it returns, keep delivering reports and calling ``on_timer`` until
  ``s.is_flat()`` (or a deadline: then ``stats()['open']`` / ``['stuck']`` say what is
  left, for the report and the operator).
- Reports: ``s.stats()`` (JSON-safe aggregates + the last 10 trips) and
  ``s.trips.trip_dicts()`` (every round trip: signal time, entry send, signal-to-exec,
  venues, slippage ticks, PnL ticks/money, outcome, exit reason, legging).
- ``PlaceOrder.ord_type`` may be MARKET (price None) for the last rung of the exit ladder.
"""
