"""`fixgw demo`: simulator + gateway + the round-trip scalper over FIX, live view, report.

- ``config``: demo.toml (run, scalper config path, kill switch, the market written into the sim),
- ``runner``: one run per policy: configs, children, the client (``gateway.apps.client.runtime``),
  trading, collection, shutdown,
- ``view``: the 80-column live view (gateway /status + the client's trips),
- ``report``: round trips per policy in the published example's shape, Markdown and JSON,
- ``cli``: the command line (all three policies by default, repeats, the control).
"""
