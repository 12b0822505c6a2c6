"""The backtester (issue 15): replay recorded market data through the live strategy, risk and router.

- ``engine.Replay`` / ``run_backtest``: the event-driven replay (latency and queue models),
- ``exchange``: the venue side (books rebuilt from the data, our orders, the take rule),
- ``ledger``: fills, fees, PnL, round trips, equity; ``report``: Markdown + JSON + charts,
- ``sweep``: parameter x data grids on Dask; ``synth``: synthetic data; ``cli``: ``fixgw backtest``.
Recordings and their schema: ``gateway.core.recording``.
"""
