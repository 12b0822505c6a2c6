"""`fixgw trade --tactic NAME`: one tactic live over FIX, against its simulator scenario by default.

- ``simproc``: the simulator process with the tactic's scenario plugged in as a flow source,
- ``runner``: configs, children (simulator + gateway, or an already running gateway), the
  client (``gateway.apps.client.runtime``), the live view, collection and shutdown,
- ``report``: the run's round trips, hit rate, PnL, legging incidents and order accounting,
- ``cli``: the command line.
"""
