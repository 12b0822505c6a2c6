"""Prometheus metrics of the gateway: ``GatewayMetrics`` owns one ``CollectorRegistry``.

The server calls a few small methods on its order path and gives two read-only callbacks
for what it already counts (sessions), and the admin endpoint serves ``exposition()`` at
``GET /metrics`` (Prometheus text format, ``CONTENT_TYPE``). configs/grafana/fixgw.json
is a dashboard over exactly these names.

==============================================  =========  ==================================
metric                                          type       labels
==============================================  =========  ==================================
fixgw_session_up                                gauge      session, kind (oms | venue)
fixgw_messages_total                            counter    session, direction (in | out)
fixgw_orders_total                              counter    outcome (filled, canceled, expired,
                                                           rejected), policy
fixgw_rejects_total                             counter    reason (risk, no_route, duplicate,
                                                           invalid, venue_busy, journal, venue,
                                                           other)
fixgw_md_requests_rejected_total                counter    venue
fixgw_probe_rtt_seconds                         histogram  venue (sub-ms buckets)
fixgw_probe_primer_rtt_seconds                  histogram  venue (primed probes: the primer's cold round trip)
fixgw_order_ack_seconds                         histogram  venue (NewOrderSingle -> first report)
fixgw_venue_latency_seconds                     histogram  venue (probe RTT net of our floor: the router's input)
fixgw_probe_floor_seconds                       histogram  (our own send + receive path per probe)
fixgw_heartbeat_jitter_seconds                  gauge      venue (p90 - p10 of the venue's Heartbeat intervals)
fixgw_router_decision_seconds                   histogram  -
fixgw_risk_check_seconds                        histogram  -
fixgw_risk_state                                gauge      - (0 ACTIVE, 1 REDUCING, 2 HALTED)
fixgw_kill_switch_tripped                       gauge      - (1 while HALTED)
fixgw_journal_bytes                             gauge      -
==============================================  =========  ==================================

Cost on the order path: orders ended and rejects are plain ints in a dict (about 0.1 us, no
lock), folded into their prometheus counters when Prometheus scrapes (``exposition``). The
rarer counters go straight to prometheus-client (a cached label child: a dict lookup plus its
own lock and add, about 0.5 us). Sessions up and messages in/out are not counted per message
here at all: they are read from the engine's own counters when Prometheus scrapes
(``watch_sessions``).
"""
from __future__ import annotations

from typing import Any, Callable, Final, Iterable, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client import CONTENT_TYPE_LATEST as CONTENT_TYPE
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

__all__ = ["GatewayMetrics", "CONTENT_TYPE", "reject_reason", "OUTCOMES"]

# Network latency buckets: 10 us .. 1 s, dense below a millisecond.
LATENCY_BUCKETS = (10e-6, 20e-6, 50e-6, 100e-6, 200e-6, 300e-6, 500e-6, 750e-6, 1e-3, 2e-3, 5e-3, 10e-3,
                   25e-3, 50e-3, 100e-3, 250e-3, 1.0)
# In-process decision times: 1 us .. 5 ms.
CPU_BUCKETS = (1e-6, 2e-6, 5e-6, 10e-6, 20e-6, 50e-6, 100e-6, 200e-6, 500e-6, 1e-3, 5e-3)
RISK_STATE_CODES = {"ACTIVE": 0, "REDUCING": 1, "HALTED": 2}
OUTCOMES: Final = {"2": "filled", "4": "canceled", "C": "expired", "8": "rejected"}    # terminal OrdStatus

_REJECT_PREFIXES = (("risk:", "risk"), ("no route", "no_route"), ("duplicate", "duplicate"),
                    ("orderqty", "invalid"), ("limit price", "invalid"),
                    ("venue busy", "venue_busy"), ("gateway journal", "journal"),
                    ("rejected by venue", "venue"), ("gateway error", "other"))


def reject_reason(text: str | None) -> str:
    """A low-cardinality label for a reject text of the core (``GatewayCore._reject``)."""
    t = (text or "").strip().lower()
    for prefix, reason in _REJECT_PREFIXES:
        if t.startswith(prefix):
            return reason
    return "other"


class _SessionCollector:
    """Sessions up and messages in/out, read from the engine when scraped."""

    def __init__(self, source: Callable[[], Iterable[dict]]) -> None:
        self.source = source

    def collect(self) -> Iterator[Any]:
        up = GaugeMetricFamily("fixgw_session_up", "1 while the FIX session is logged on",
                               labels=["session", "kind"])
        msgs = CounterMetricFamily("fixgw_messages", "FIX messages received and sent per session",
                                   labels=["session", "direction"])
        try:
            rows = list(self.source())
        except Exception:  # noqa: BLE001 - a scrape must never take the gateway down
            rows = []
        for row in rows:
            name = str(row.get("name") or row.get("key"))
            up.add_metric([name, str(row.get("kind", ""))], 1.0 if row.get("logged_on") else 0.0)
            msgs.add_metric([name, "in"], float(row.get("messages_in", 0) or 0))
            msgs.add_metric([name, "out"], float(row.get("messages_out", 0) or 0))
        yield up
        yield msgs


class GatewayMetrics:
    """Every gateway metric in one registry (its own: tests and two gateways in one process
    do not collide)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        r = self.registry = registry or CollectorRegistry()
        self.orders = Counter("fixgw_orders", "OMS orders ended, by outcome and routing policy",
                              ["outcome", "policy"], registry=r)
        self.rejects = Counter("fixgw_rejects", "OMS orders rejected by the gateway, by reason", ["reason"],
                               registry=r)
        self.md_rejects = Counter("fixgw_md_requests_rejected",
                                  "MarketDataRequests the venue rejected (35=Y or 35=j)", ["venue"], registry=r)
        self.probe_rtt = Histogram("fixgw_probe_rtt_seconds", "TestRequest -> Heartbeat round trip per venue",
                                   ["venue"], buckets=LATENCY_BUCKETS, registry=r)
        self.primer_rtt = Histogram("fixgw_probe_primer_rtt_seconds",
                                    "a primed probe's primer: TestRequest -> Heartbeat, both ends cold, per venue",
                                    ["venue"], buckets=LATENCY_BUCKETS, registry=r)
        self.ack_latency = Histogram("fixgw_order_ack_seconds", "NewOrderSingle -> first ExecutionReport per venue",
                                     ["venue"], buckets=LATENCY_BUCKETS, registry=r)
        # --- probe floor split (issue 12) ---
        self.venue_latency = Histogram("fixgw_venue_latency_seconds",
                                       "probe RTT net of our own floor (socket write -> answer read) per venue",
                                       ["venue"], buckets=LATENCY_BUCKETS, registry=r)
        self.probe_floor = Histogram("fixgw_probe_floor_seconds",
                                     "our own part of a probe RTT: send path + receive path",
                                     buckets=LATENCY_BUCKETS, registry=r)
        self.hb_jitter = Gauge("fixgw_heartbeat_jitter_seconds",
                               "p90 - p10 of the venue's Heartbeat arrival intervals", ["venue"], registry=r)
        self.router_time = Histogram("fixgw_router_decision_seconds", "time to route one order",
                                     buckets=CPU_BUCKETS, registry=r)
        self.risk_time = Histogram("fixgw_risk_check_seconds", "time of one pre-trade risk check",
                                   buckets=CPU_BUCKETS, registry=r)
        self.risk_state = Gauge("fixgw_risk_state", "trading state: 0 ACTIVE, 1 REDUCING, 2 HALTED", registry=r)
        self.kill_switch = Gauge("fixgw_kill_switch_tripped", "1 while the kill switch has trading HALTED",
                                 registry=r)
        self.journal_bytes = Gauge("fixgw_journal_bytes", "size of the order journal file", registry=r)
        self._children: dict[tuple, Any] = {}
        self._sessions: _SessionCollector | None = None
        # order-path counts not yet in the counters above: policy -> outcome -> n / reason -> n
        # (nested by plain strings: a (outcome, policy) tuple key was built, hashed and compared
        # element by element on every ended order)
        self._orders_done: dict[str, dict[str, int]] = {}
        self._rejected: dict[str, int] = {}

    # -- the server's calls (cheap: cached label children, no allocation once warm)
    def _child(self, metric: Any, *labels: str) -> Any:
        key = (id(metric), *labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    def on_order_done(self, outcome: str, policy: str) -> None:
        """An OMS order ended: outcome filled | canceled | expired | rejected (see ``OUTCOMES``)."""
        by_outcome = self._orders_done.get(policy)
        if by_outcome is None:
            by_outcome = self._orders_done[policy] = {}
        by_outcome[outcome] = by_outcome.get(outcome, 0) + 1

    def on_reject(self, reason: str) -> None:
        """A gateway reject of a new order (``reject_reason(text)`` gives the label)."""
        self._rejected[reason] = self._rejected.get(reason, 0) + 1

    def _fold_counts(self) -> None:
        """The order path's plain counts into their prometheus counters (on scrape)."""
        done, self._orders_done = self._orders_done, {}
        for policy, by_outcome in done.items():
            for outcome, n in by_outcome.items():
                self._child(self.orders, outcome, policy or "none").inc(n)
        rejected, self._rejected = self._rejected, {}
        for reason, n in rejected.items():
            self._child(self.rejects, reason).inc(n)

    def on_md_reject(self, venue: str) -> None:
        self._child(self.md_rejects, venue).inc()

    def observe_probe(self, venue: str, seconds: float) -> None:
        self._child(self.probe_rtt, venue).observe(seconds)

    def observe_primer(self, venue: str, seconds: float) -> None:
        self._child(self.primer_rtt, venue).observe(seconds)

    def observe_ack(self, venue: str, seconds: float) -> None:
        self._child(self.ack_latency, venue).observe(seconds)

    def observe_venue_latency(self, venue: str, seconds: float) -> None:
        self._child(self.venue_latency, venue).observe(seconds)

    def observe_probe_floor(self, seconds: float) -> None:
        self.probe_floor.observe(seconds)

    def set_heartbeat_jitter(self, venue: str, jitter_us: float | None) -> None:
        if jitter_us is not None:
            self._child(self.hb_jitter, venue).set(jitter_us / 1e6)

    def observe_router(self, seconds: float) -> None:
        self.router_time.observe(seconds)

    def observe_risk(self, seconds: float) -> None:
        self.risk_time.observe(seconds)

    def set_risk_state(self, state: str) -> None:
        self.risk_state.set(RISK_STATE_CODES.get(state, -1))
        self.kill_switch.set(1 if state == "HALTED" else 0)

    def set_journal_bytes(self, n: int) -> None:
        self.journal_bytes.set(n)

    def watch_sessions(self, source: Callable[[], Iterable[dict]]) -> None:
        """``source()`` -> one dict per session: name (or key), kind, logged_on, messages_in,
        messages_out; read at scrape time. Call once."""
        if self._sessions is not None:
            self.registry.unregister(self._sessions)
        self._sessions = _SessionCollector(source)
        self.registry.register(self._sessions)

    # -- the scrape
    def exposition(self) -> bytes:
        """The Prometheus text format of every metric (serve with ``CONTENT_TYPE``)."""
        self._fold_counts()
        return generate_latest(self.registry)
