"""`fixgw demo`: simulated venues + the gateway + a scalping OMS client, a live view and
an execution-quality report per routing policy.

- ``mdbook``: top-of-book per venue from the simulator's W/X market data (pure),
- ``signals``: the seeded scalping signal rule (pure, clock-injected),
- ``orders``: per-order records built from ExecutionReports (pure),
- ``client``: the quickfix OMS client (orders to the gateway, market data from the venues),
- ``view``: the live terminal view polling the gateway's admin /status,
- ``report``: the per-policy figures, Markdown/JSON and PNG charts,
- ``runner``: starting and stopping the processes of one run per policy.
"""
