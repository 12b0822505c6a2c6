"""The chaos recovery run shared by tests/chaos/test_recovery.py (bounded) and
benchmarks/chaos_recovery.py (the full run): simulator venues and a gateway from TOML
(tests/stack.py), one or two ``ChaosOms`` sessions sending a seeded mix of IOC, Day,
cancels and replaces, SIGKILL of the gateway at seeded random points, a restart each
time, and at the end the invariants:

- every OMS order has exactly one terminal report (counted per order chain on the OMS
  side across reconnects; session repeats — PossDup of a MsgSeqNum already processed —
  and PossResend(97) reports whose ExecID the OMS already has are not new events);
- every OMS cancel and replace has exactly one answer: its OrderCancelReject, or the report
  that carries its ClOrdID as Canceled or Replaced (a repeat of the same ExecID is one);
- no venue order was sent twice (fresh NewOrderSingles per ClOrdID at the venues);
- the gateway's positions equal the venues' fills to the gateway, and the OMS's fills;
- the gateway restarted every time.

Talks only TOML + FIX sockets + the admin HTTP port: engine-agnostic.
"""
from __future__ import annotations

import json
import random
import time
from dataclasses import dataclass, field
from pathlib import Path

from gateway.common import procs
from tests.chaos.oms import ChaosOms
from tests.stack import Stack

TERMINAL = {b"2", b"4", b"8", b"C"}
PASSWORDS = {"OMS1": "chaos-pw-1", "OMS2": "chaos-pw-2"}


class ChaosStack(Stack):
    """Stack whose simulator prints its statistics (``--stats``) when stopped."""

    sim_args = ("--stats",)

    def stop_sim_stats(self, name: str) -> dict:
        """SIGTERM the sim and read the JSON statistics it prints on its way out."""
        proc = self.sims[name]
        procs.stop(proc, timeout=15)
        text = Path(proc._fixgw_log).read_text(errors="replace")        # type: ignore[attr-defined]
        start, end = text.find("\n{") + 1, text.rfind("}")
        try:
            return json.loads(text[start:end + 1])
        except ValueError:
            return {"_unreadable": text[-2000:]}


@dataclass
class Order:
    root: str
    session: str
    venue: str
    side: str
    tif: str
    qty: int
    price: str
    current: str = ""
    state: str = "sent"              # sent | live | done
    amend: str | None = None         # ClOrdID of a cancel/replace in flight
    terminal: list = field(default_factory=list)
    reports: list = field(default_factory=list)
    exec_ids: set = field(default_factory=set)
    filled: float = 0.0


class Tracker:
    """The OMS's book of orders, fed by every report of every session."""

    def __init__(self) -> None:
        self.orders: dict[str, Order] = {}
        self.chain: dict[bytes, Order] = {}
        self.unknown: list[dict] = []
        # each cancel/replace ClOrdID -> its answers: the ExecIDs of its reports (a PossResend
        # repeat has the same), b"9" for its OrderCancelReject(s)
        self.amend_answers: dict[bytes, set] = {}
        self.counts = {"repeats_dropped": 0, "dup_exec_id_without_flag": 0, "status_reports": 0,
                       "cancel_rejects": 0, "possresend_new": 0}

    def add(self, o: Order) -> None:
        o.current = o.root
        self.orders[o.root] = o
        self.chain[o.root.encode("latin-1")] = o

    def alias(self, o: Order, cl_ord_id: str) -> None:
        self.chain[cl_ord_id.encode("latin-1")] = o

    def amend_sent(self, o: Order, cl_ord_id: str) -> None:
        o.amend = cl_ord_id
        self.alias(o, cl_ord_id)
        self.amend_answers[cl_ord_id.encode("latin-1")] = set()

    def on_report(self, rep: dict) -> None:
        o = self.chain.get(rep[11]) or (self.chain.get(rep[41]) if rep[41] else None)
        if o is None:
            self.unknown.append(rep)
            return
        o.reports.append(rep)
        answers = self.amend_answers.get(rep[11])
        if answers is not None:
            if rep[35] == b"9":         # re-sent after a restart it is the same answer (no ExecID)
                answers.add(b"9")
            elif rep[35] == b"8" and rep[150] in (b"4", b"5"):
                answers.add(rep[17])
        if rep[35] == b"9":
            self.counts["cancel_rejects"] += 1
            if o.amend is not None and rep[11] == o.amend.encode("latin-1"):
                o.amend = None
            return
        if rep[35] != b"8":
            return
        et, exec_id = rep[150], rep[17]
        if et == b"I":
            self.counts["status_reports"] += 1
            return
        if exec_id in o.exec_ids:
            if rep[97] == b"Y" or rep[43] == b"Y":
                self.counts["repeats_dropped"] += 1
                return
            self.counts["dup_exec_id_without_flag"] += 1
        elif rep[97] == b"Y":
            self.counts["possresend_new"] += 1
        o.exec_ids.add(exec_id)
        if et == b"F" and rep[32]:
            q = float(rep[32])
            o.filled += q if o.side == "1" else -q
        if et == b"5":
            o.current = rep[11].decode("latin-1")
            o.qty, o.price = int(float(rep[38])), (rep[44] or b"").decode()
            o.amend = None
        if rep[39] in TERMINAL:
            o.terminal.append(rep)
            o.state = "done"
            o.amend = None
        elif o.state == "sent":
            o.state = "live"


@dataclass
class RunConfig:
    orders: int = 600
    kills: int = 5
    seed: int = 7
    sessions: int = 2
    venues: int = 2
    flow: bool = False
    window: int = 40                  # OMS orders without a first answer before we wait
    ioc_share: float = 0.5
    cancel_share: float = 0.15
    replace_share: float = 0.15
    final_timeout_s: float = 30.0
    restart_timeout_s: float = 30.0
    sim_engine: str = "native"
    retire_after_s: float | None = None   # the gateway's (None: its default, 60 s)


@dataclass
class RunResult:
    cfg: RunConfig
    sent: int = 0
    cancels: int = 0
    replaces: int = 0
    kills: int = 0
    restarts: int = 0
    restart_failures: list = field(default_factory=list)
    restart_s: list = field(default_factory=list)
    elapsed_s: float = 0.0
    no_terminal: list = field(default_factory=list)
    multi_terminal: list = field(default_factory=list)
    amends_unanswered: list = field(default_factory=list)     # cancel/replace ClOrdIDs without an answer
    amends_answered_twice: list = field(default_factory=list)
    venue_dupes: dict = field(default_factory=dict)
    venue_new_orders: int = 0
    venue_possdup_orders: int = 0
    venue_status_requests: int = 0
    positions_gateway: dict = field(default_factory=dict)
    positions_venues: dict = field(default_factory=dict)
    positions_oms: dict = field(default_factory=dict)
    oms_errors: list = field(default_factory=list)
    oms_counts: dict = field(default_factory=dict)
    tracker_counts: dict = field(default_factory=dict)
    unknown_reports: int = 0
    terminal_by_status: dict = field(default_factory=dict)
    gateway_counts: dict = field(default_factory=dict)

    @property
    def positions_ok(self) -> bool:
        syms = set(self.positions_gateway) | set(self.positions_venues) | set(self.positions_oms)
        return all(abs(self.positions_gateway.get(s, 0) - self.positions_venues.get(s, 0)) < 1e-9
                   and abs(self.positions_oms.get(s, 0) - self.positions_venues.get(s, 0)) < 1e-9 for s in syms)

    @property
    def ok(self) -> bool:
        return (not self.no_terminal and not self.multi_terminal and not self.venue_dupes and self.positions_ok
                and not self.amends_unanswered and not self.amends_answered_twice
                and not self.restart_failures and self.restarts == self.kills)

    def failures(self) -> list[str]:
        out = []
        if self.no_terminal:
            out.append(f"{len(self.no_terminal)} order(s) without a terminal report")
        if self.multi_terminal:
            out.append(f"{len(self.multi_terminal)} order(s) with more than one terminal report")
        if self.venue_dupes:
            out.append(f"{len(self.venue_dupes)} venue ClOrdID(s) sent more than once: {self.venue_dupes}")
        if self.amends_unanswered or self.amends_answered_twice:
            out.append(f"cancels/replaces: {len(self.amends_unanswered)} unanswered "
                       f"{self.amends_unanswered[:10]}, {len(self.amends_answered_twice)} answered twice "
                       f"{self.amends_answered_twice[:10]}")
        if not self.positions_ok:
            out.append(f"positions differ: gateway {self.positions_gateway} venues {self.positions_venues} "
                       f"oms {self.positions_oms}")
        if self.restart_failures or self.restarts != self.kills:
            out.append(f"restarts {self.restarts}/{self.kills}: {self.restart_failures}")
        return out


def _order_text(o: Order) -> str:
    reps = "; ".join(f"35={r[35].decode()} 11={r[11]!r} 150={(r[150] or b'').decode()} "
                     f"39={(r[39] or b'').decode()} 17={(r[17] or b'').decode()} 97={(r[97] or b'').decode()} 43={(r[43] or b'').decode()} "
                     f"seq={r[34]} 58={(r[58] or b'')[:60]!r}" for r in o.reports)
    return (f"{o.session} {o.root} {o.tif} {o.side} {o.qty}@{o.price} venue={o.venue} current={o.current} "
            f"state={o.state} reports=[{reps}]")


class ChaosRun:
    def __init__(self, tmp: Path, cfg: RunConfig, log=print) -> None:
        self.tmp, self.cfg, self.log = tmp, cfg, log
        self.rng = random.Random(cfg.seed)
        self.stack = ChaosStack(tmp)
        self.tracker = Tracker()
        self.result = RunResult(cfg)
        self.clients: dict[str, ChaosOms] = {}
        self.venues: list[str] = []
        self.next_id = 0

    # ------------------------------------------------------------ set-up
    def start(self) -> None:
        c = self.cfg
        self.venues = [f"CV{i}" for i in range(c.venues)]
        flow = {"enabled": c.flow, "initial_levels": 5, "level_qty": 2000, "spread_ticks": 1}
        if c.flow:
            flow["rate_per_s"] = 50
        self.stack.start_sim("a", [{"name": v, "seed": c.seed + i, "flow": flow, "engine": c.sim_engine}
                                   for i, v in enumerate(self.venues)])
        names = list(PASSWORDS)[:c.sessions]
        extra = {} if c.retire_after_s is None else {"retire_after_s": c.retire_after_s}
        self.stack.start_gateway(clients=[{"comp_id": n, "password": PASSWORDS[n]} for n in names],
                                 routing={"md_symbols": ["AAPL"]}, extra=extra)
        for n in names:
            oms = ChaosOms(self.stack.oms_port, n, PASSWORDS[n], on_report=self.tracker.on_report)
            assert oms.connect(reset=True), f"{n} could not log on: {oms.errors}"
            self.clients[n] = oms

    def stop(self) -> None:
        for oms in self.clients.values():
            oms.close()
        self.stack.stop()

    # ------------------------------------------------------------ actions
    def _new_id(self, session: str) -> str:
        self.next_id += 1
        return f"{session}-{self.cfg.seed}-{self.next_id}"

    def _new_order(self, session: str) -> None:
        rng, c = self.rng, self.cfg
        side = rng.choice("12")
        ioc = rng.random() < c.ioc_share
        qty = rng.randint(1, 20)
        if ioc:     # mostly marketable, some misses
            off = rng.choice([5, 5, 5, -20])
            price = 190.00 + off * 0.01 if side == "1" else 189.99 - off * 0.01
        else:       # passive: rests on the book
            off = rng.randint(10, 60)
            price = 189.99 - off * 0.01 if side == "1" else 190.00 + off * 0.01
        o = Order(root=self._new_id(session), session=session, venue=rng.choice(self.venues), side=side,
                  tif="3" if ioc else "0", qty=qty, price=f"{price:.2f}")
        self.tracker.add(o)
        self.clients[session].send("D", [(11, o.root), (55, "AAPL"), (54, side), (38, qty), (40, "2"),
                                         (44, o.price), (59, o.tif), (100, o.venue), (60, _now())])
        self.result.sent += 1

    def _live_day(self, session: str) -> list[Order]:
        return [o for o in self.tracker.orders.values()
                if o.session == session and o.tif == "0" and o.state == "live" and o.amend is None]

    def _cancel(self, o: Order) -> None:
        cid = self._new_id(o.session) + "c"
        self.tracker.amend_sent(o, cid)
        self.clients[o.session].send("F", [(11, cid), (41, o.current), (55, "AAPL"), (54, o.side), (38, o.qty),
                                           (60, _now())])
        self.result.cancels += 1

    def _replace(self, o: Order) -> None:
        cid = self._new_id(o.session) + "r"
        self.tracker.amend_sent(o, cid)
        qty = max(1, o.qty + self.rng.choice([-2, -1, 1, 3]))
        step = self.rng.choice([-2, -1, 1, 2]) * 0.01
        px = float(o.price) + step
        px = min(px, 189.90) if o.side == "1" else max(px, 190.10)     # stays passive
        self.clients[o.session].send("G", [(11, cid), (41, o.current), (55, "AAPL"), (54, o.side), (38, qty),
                                           (40, "2"), (44, f"{px:.2f}"), (59, "0"), (100, o.venue),
                                           (60, _now())])
        self.result.replaces += 1

    def _unanswered(self, session: str) -> int:
        return sum(1 for o in self.tracker.orders.values() if o.session == session and o.state == "sent")

    def pump_all(self, timeout: float = 0.0) -> None:
        for oms in self.clients.values():
            oms.pump(timeout / max(len(self.clients), 1))

    # ------------------------------------------------------------ kills
    def kill_and_restart(self) -> None:
        gw = self.stack.gateway
        procs.kill_hard(gw)
        self.result.kills += 1
        for oms in self.clients.values():
            oms.pump(0)
            oms.close()
        t0 = time.monotonic()
        try:
            self.stack.start_gateway()
        except Exception as exc:  # noqa: BLE001 - a finding, reported with the log tail
            tail = "\n".join(Path(self.tmp / "gateway.log").read_text(errors="replace").splitlines()[-15:])
            self.result.restart_failures.append(f"kill {self.result.kills}: {type(exc).__name__}: {exc}\n{tail}")
            raise
        self.result.restarts += 1
        deadline = time.monotonic() + self.cfg.restart_timeout_s
        for name, oms in self.clients.items():
            while not oms.connect(timeout=5.0):
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{name} could not log on again after restart: {oms.errors[-3:]}")
                time.sleep(0.2)
        self.result.restart_s.append(time.monotonic() - t0)

    # ------------------------------------------------------------ the run
    def run(self) -> RunResult:
        c, rng = self.cfg, self.rng
        t0 = time.monotonic()
        kill_at = sorted(rng.sample(range(c.orders // 20, c.orders), c.kills)) if c.kills else []
        sessions = list(self.clients)
        actions = 0
        last_progress = time.monotonic()
        while self.result.sent < c.orders:
            if kill_at and self.result.sent >= kill_at[0]:
                kill_at.pop(0)
                self.kill_and_restart()
                last_progress = time.monotonic()
                continue
            session = sessions[actions % len(sessions)]
            actions += 1
            if self._unanswered(session) >= c.window:
                self.pump_all(0.01)
                if time.monotonic() - last_progress > 20:
                    raise TimeoutError(f"{session}: {c.window} orders unanswered for 20 s")
                continue
            last_progress = time.monotonic()
            r = rng.random()
            live = self._live_day(session)
            if live and r < c.cancel_share:
                self._cancel(rng.choice(live))
            elif live and r < c.cancel_share + c.replace_share:
                self._replace(rng.choice(live))
            else:
                self._new_order(session)
            self.pump_all(0)
            if actions % 200 == 0:
                self.log(f"  sent {self.result.sent}/{c.orders}, kills {self.result.kills}")
        self.finish()
        self.result.elapsed_s = time.monotonic() - t0
        return self.result

    def finish(self) -> None:
        """Cancel what rests, wait (bounded) for every order to end, then read every side."""
        deadline = time.monotonic() + self.cfg.final_timeout_s
        next_round = 0.0
        while time.monotonic() < deadline:
            open_ = [o for o in self.tracker.orders.values() if o.state != "done"]
            if not open_:
                break
            if time.monotonic() >= next_round:
                for o in open_:
                    if o.state == "live" and o.amend is None:
                        self._cancel(o)
                next_round = time.monotonic() + 5.0
            self.pump_all(0.05)
        for _ in range(10):       # late repeats (PossResend) still count against "exactly one"
            self.pump_all(0.05)
        self.collect()

    def collect(self) -> None:
        res = self.result
        for o in self.tracker.orders.values():
            if not o.terminal:
                res.no_terminal.append(_order_text(o))
            elif len(o.terminal) > 1:
                res.multi_terminal.append(_order_text(o))
            else:
                st = o.terminal[0][39].decode()
                res.terminal_by_status[st] = res.terminal_by_status.get(st, 0) + 1
            res.positions_oms["AAPL"] = res.positions_oms.get("AAPL", 0.0) + o.filled
        for cid, answers in self.tracker.amend_answers.items():
            if len(answers) != 1:
                o = self.tracker.chain[cid]
                (res.amends_unanswered if not answers else res.amends_answered_twice).append(
                    f"{cid.decode('latin-1')}: {_order_text(o)}")
        res.unknown_reports = len(self.tracker.unknown)
        res.tracker_counts = dict(self.tracker.counts)
        res.oms_counts = {n: dict(oms.counts, logons=oms.logons) for n, oms in self.clients.items()}
        res.oms_errors = [f"{n}: {e}" for n, oms in self.clients.items() for e in oms.errors[-10:]]
        try:
            st = self.stack.status()
            res.positions_gateway = {s: p.get("qty", 0.0) for s, p in st.get("risk", {}).get("positions", {}).items()}
            res.gateway_counts = {k: v for k, v in st.items() if isinstance(v, (int, float))}
            res.gateway_counts.update(st.get("counts", {}) if isinstance(st.get("counts"), dict) else {})
        except OSError as exc:
            res.oms_errors.append(f"status: {exc}")
        stats = self.stack.stop_sim_stats("a")
        for v in self.venues:
            vs = stats.get(v, {})
            res.venue_new_orders += vs.get("new_orders_fresh", 0)
            res.venue_possdup_orders += vs.get("new_orders_possdup", 0)
            res.venue_status_requests += vs.get("status_requests", 0)
            res.venue_dupes.update({f"{v}/{k}": n for k, n in vs.get("new_order_dupes", {}).items()})
            for sym, q in vs.get("client_fills", {}).get("FIXGW", {}).items():
                res.positions_venues[sym] = res.positions_venues.get(sym, 0.0) + q
        for sym in list(res.positions_gateway):
            if not res.positions_gateway[sym] and sym not in res.positions_venues:
                del res.positions_gateway[sym]
        res.positions_oms = {s: q for s, q in res.positions_oms.items() if q or s in res.positions_venues}


def _now() -> bytes:
    from gateway.fix.raw import utc_now
    return utc_now()


def report(res: RunResult, log=print, max_listed: int = 20) -> None:
    c = res.cfg
    rs = sorted(res.restart_s)
    log(f"chaos recovery: seed {c.seed}, {c.sessions} OMS session(s), {c.venues} venue(s) "
        f"({c.sim_engine} sim, flow {'on' if c.flow else 'off'})")
    log(f"  orders {res.sent} (IOC share {c.ioc_share:.0%}), cancels {res.cancels}, replaces {res.replaces}, "
        f"elapsed {res.elapsed_s:.1f} s")
    log(f"  SIGKILLs {res.kills}, restarts {res.restarts}"
        + (f", restart+relogon p50 {rs[len(rs) // 2]:.2f} s max {rs[-1]:.2f} s" if rs else ""))
    log(f"  terminal reports by OrdStatus: {res.terminal_by_status}")
    log(f"  OMS: {res.oms_counts}")
    log(f"  OMS report counting: {res.tracker_counts}, unknown reports {res.unknown_reports}")
    log(f"  venues: fresh NewOrderSingles {res.venue_new_orders}, PossDup NewOrderSingles "
        f"{res.venue_possdup_orders}, status requests {res.venue_status_requests}")
    log(f"  positions: gateway {res.positions_gateway} venues {res.positions_venues} oms {res.positions_oms}")
    inv = [("every OMS order has exactly one terminal report", not res.no_terminal and not res.multi_terminal),
           ("no venue order sent twice", not res.venue_dupes),
           ("every OMS cancel and replace answered exactly once",
            not res.amends_unanswered and not res.amends_answered_twice),
           ("positions equal the venues' fills (gateway and OMS)", res.positions_ok),
           ("gateway restarted every time", not res.restart_failures and res.restarts == res.kills)]
    for name, ok in inv:
        log(f"  [{'held' if ok else 'FAILED'}] {name}")
    for title, rows in (("orders without a terminal report", res.no_terminal),
                        ("orders with more than one terminal report", res.multi_terminal),
                        ("cancels/replaces without an answer", res.amends_unanswered),
                        ("cancels/replaces answered more than once", res.amends_answered_twice)):
        if rows:
            log(f"  {title} ({len(rows)}):")
            for row in rows[:max_listed]:
                log(f"    {row}")
    if res.venue_dupes:
        log(f"  venue ClOrdIDs sent more than once: {dict(list(res.venue_dupes.items())[:max_listed])}")
    if res.restart_failures:
        log("  restart failures:\n" + "\n".join(res.restart_failures))
    if res.oms_errors:
        log("  OMS errors (last): " + " | ".join(res.oms_errors[:max_listed]))
