"""The order path between the FIX edges and the core: ``Dispatcher.submit(event)``.

One event from FIX message in to FIX messages out: ``core.handle(event)``, then every
command it returns, in order, before the next event (the core has journaled each decision
before returning it, so a record reaches the OS before the message it explains reaches the
wire): reports and cancel rejects to the OMS edge (oms.py), venue orders to the venue edge
(venues.py); a venue that would not take one is told to the core (``VenueSendFailed``), whose
answer is carried out in turn. The OMS and venue Applications hand their decoded events
straight to ``submit``; the ``Gateway`` (app.py) does too, for timers and operators.

Kept apart from app.py (asyncio, admin, command line) so that it compiles with mypyc: typed
attributes, direct calls to the compiled edges, and a type switch over the commands.
"""
from __future__ import annotations

import logging
from typing import Callable, Final

from gateway.apps.metrics import OUTCOMES, GatewayMetrics, reject_reason
from gateway.apps.server.oms import OmsApplication
from gateway.apps.server.venues import VenueApplication
from gateway.apps.server.wire import EventSink
from gateway.core.hub import BroadcastNews, GatewayCore, VenueSendFailed
from gateway.core.orders import QueryOrderStatus, RejectOmsCancel, ReportToOms, SendCancel, SendNewOrder, SendReplace

log = logging.getLogger("gateway")
MAX_FOLLOW_UPS: Final = 10_000   # bound on send-failure answers chained from one event
_ENDED: Final = frozenset(OUTCOMES)   # terminal OrdStatus: filled, canceled, expired, rejected


class Dispatcher(EventSink):
    """Carries out the core's commands through the two edges. ``oms`` and ``venues`` are set
    once both Applications exist (they take ``submit`` as their sink); ``event(kind, name,
    text)`` is the gateway's event log (for News)."""

    oms: OmsApplication
    venues: VenueApplication

    def __init__(self, core: GatewayCore, metrics: GatewayMetrics,
                 event: Callable[[str, str, str], None]) -> None:
        self.core = core
        self.metrics = metrics
        self.event = event

    def submit(self, event: object) -> None:
        """One decoded event: the core decides, the edges carry out its commands, in order."""
        commands = self.core.handle(event)
        if commands:
            self.execute(commands)

    def execute(self, commands: list[object]) -> None:
        oms, venues = self.oms, self.venues
        budget = MAX_FOLLOW_UPS
        i = 0
        while i < len(commands):
            cmd = commands[i]
            i += 1
            if type(cmd) is ReportToOms:
                # the core's ExecID: stable across replay
                oms.send_exec(cmd, cmd.exec_id or self.core.ids.exec())
                if cmd.ord_status in _ENDED and cmd.exec_type != "I" and not cmd.poss_resend:
                    self._order_ended(cmd)
            elif (type(cmd) is SendNewOrder or type(cmd) is SendCancel or type(cmd) is SendReplace
                  or type(cmd) is QueryOrderStatus):
                if not venues.send(cmd) and budget > 0:
                    budget -= 1
                    text = f"venue {cmd.child.venue} session is not logged on"
                    commands[i:i] = self.core.handle(VenueSendFailed(command=cmd, text=text))
            elif type(cmd) is RejectOmsCancel:
                oms.send_cancel_reject(cmd)
            elif type(cmd) is BroadcastNews:
                self.event("risk", "news", cmd.headline)
                oms.broadcast(cmd.headline, cmd.text, cmd.session)
            else:
                log.error("unknown command from the core: %r", cmd)

    def _order_ended(self, cmd: ReportToOms) -> None:
        """Metrics of an OMS order's one terminal report (cached counters: no allocation)."""
        self.metrics.on_order_done(OUTCOMES[cmd.ord_status], cmd.order.policy)
        if cmd.exec_type == "8":
            self.metrics.on_reject(reject_reason(cmd.text))

