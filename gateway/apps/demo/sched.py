"""Where each hop of signal-to-execution waits: the scheduler's view beside the wire's.

    python -m gateway.apps.demo.hops record --out /tmp/h.bin --duration 45 &        # root
    perf record -k CLOCK_MONOTONIC -e sched:sched_switch,sched:sched_wakeup -a \\
        -o /tmp/s.data -- sleep 45 &
    fixgw demo --policy scalp --no-control --duration 20 --zero-latency --run-dir /tmp/run
    perf script -i /tmp/s.data --ns -F comm,pid,tid,cpu,time,event,trace > /tmp/s.txt
    python -m gateway.apps.demo.sched /tmp/h.bin /tmp/s.txt --pids /tmp/run/scalp-1/pids.json

Each hop of ``hops.py`` (bytes of one process on the wire -> the next process's bytes on the
wire) is a window in the life of the process that must act: the gateway for ``c_out ->
g_out`` and ``v_fill -> g_fill``, the simulator for ``g_out -> v_out``, the client's loop
thread for ``md -> c_out``. From the kernel's context switches and wake-ups (``perf``, every
CPU) each window is split into the time that thread

    ran        on a CPU (its own work: this message and whatever it handled before it)
    waited     runnable but not on a CPU (woken or preempted, a CPU busy with something else)
    slept      blocked (in epoll: nothing to read yet, e.g. the bytes were not complete)

and the state it was in when the bytes arrived (``busy``: running or runnable). The three
add up to the hop. Times are microseconds, the medians over the followed orders; ``mean``
rows add up exactly.
"""
from __future__ import annotations

import argparse
import bisect
import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

from gateway.apps.demo.hops import follow_entries, pct, read_messages

RUNNING, RUNNABLE, SLEEPING = 0, 1, 2
_SWITCH = re.compile(r"^\s*(?P<comm>.+?)\s+(?:(?P<pid>\d+)/)?(?P<tid>\d+)\s+\[(?P<cpu>\d+)\]\s+(?P<t>\d+\.\d+):\s+sched:sched_switch:"
                     r".*?prev_pid=(?P<prev>\d+) .*?prev_state=(?P<state>\S+) ==> .*?next_pid=(?P<next>\d+)")
_WAKE = re.compile(r"^\s*(?P<comm>.+?)\s+(?:\d+/)?(?P<tid>\d+)\s+\[(?P<cpu>\d+)\]\s+(?P<t>\d+\.\d+):\s+"
                   r"sched:sched_wakeup:.*? pid=(?P<woken>\d+) ")


@dataclass(slots=True)
class Timeline:
    """One thread's states over time: ``starts[i]`` begins state ``states[i]``."""
    starts: list[float] = field(default_factory=list)
    states: list[int] = field(default_factory=list)

    def add(self, t: float, state: int) -> None:
        if self.states and self.states[-1] == state:
            return
        self.starts.append(t)
        self.states.append(state)

    def state_at(self, t: float) -> int | None:
        i = bisect.bisect_right(self.starts, t) - 1
        return None if i < 0 else self.states[i]

    def split(self, a: float, b: float) -> tuple[float, float, float]:
        """Seconds running, runnable and sleeping in [a, b] (time before the first event: sleeping)."""
        out = [0.0, 0.0, 0.0]
        i = bisect.bisect_right(self.starts, a) - 1
        t = a
        state = SLEEPING if i < 0 else self.states[i]
        i += 1
        while t < b:
            nxt = self.starts[i] if i < len(self.starts) else b
            end = min(nxt, b)
            out[state] += max(0.0, end - t)
            t = end
            if i < len(self.starts):
                state = self.states[i]
            i += 1
        return out[0], out[1], out[2]


def parse_perf(lines, process_of: dict[int, int] | None = None) -> dict[int, Timeline]:
    """Per thread id: its timeline from ``perf script --ns`` of sched_switch and sched_wakeup
    (``-F comm,pid,tid,cpu,time,event,trace``: ``process_of`` is filled with thread -> process)."""
    tl: dict[int, Timeline] = {}
    for line in lines:
        if "sched_switch" in line:
            m = _SWITCH.match(line)
            if m is None:
                continue
            t = float(m["t"])
            prev, nxt = int(m["prev"]), int(m["next"])
            if process_of is not None and m["pid"] is not None:
                process_of[int(m["tid"])] = int(m["pid"])
            state = m["state"]
            tl.setdefault(prev, Timeline()).add(t, RUNNABLE if state.startswith("R") else SLEEPING)
            tl.setdefault(nxt, Timeline()).add(t, RUNNING)
        elif "sched_wakeup" in line:
            m = _WAKE.match(line)
            if m is None:
                continue
            tid = int(m["woken"])
            timeline = tl.setdefault(tid, Timeline())
            if timeline.states and timeline.states[-1] == RUNNING:
                continue
            timeline.add(float(m["t"]), RUNNABLE)
    return tl


# hop -> (from, to, whose thread acts)
HOPS = (("md", "c_out", "client"), ("c_out", "g_out", "gateway"), ("g_out", "v_out", "sim"),
        ("v_fill", "g_fill", "gateway"))


def busiest_thread(pid: int, timelines: dict[int, Timeline], process_of: dict[int, int]) -> int:
    """The thread of process ``pid`` that ran longest (a process's event loop thread)."""
    def ran(tid: int) -> float:
        tl = timelines[tid]
        return tl.split(tl.starts[0], tl.starts[-1])[0] if tl.starts else 0.0
    threads = [t for t, p in process_of.items() if p == pid and t in timelines] or [pid]
    return max(threads, key=lambda t: ran(t) if t in timelines else 0.0)


def analyse(rows: list[dict], timelines: dict[int, Timeline], tids: dict[str, int], offset: float,
            only: str | None = None) -> dict:
    """Per hop: medians of the hop and of its ran / waited / slept parts, their means, and how
    often the acting thread was busy (running or runnable) when the bytes arrived."""
    out = {}
    for a, b, who in HOPS:
        tl = timelines.get(tids.get(who, -1))
        parts: list[tuple[float, float, float, float, bool]] = []
        for r in rows:
            if r[a] is None or r[b] is None or (only is not None and r["outcome"] != only) or tl is None:
                continue
            ta, tb = r[a] - offset, r[b] - offset
            ran, waited, slept = tl.split(ta, tb)
            parts.append(((tb - ta) * 1e6, ran * 1e6, waited * 1e6, slept * 1e6, tl.state_at(ta) != SLEEPING))
        n = len(parts)
        cols = list(zip(*parts)) if parts else [[], [], [], [], []]
        out[f"{a}->{b}"] = {
            "who": who, "n": n,
            "p50_us": _r(pct(list(cols[0]), 50)), "ran_p50_us": _r(pct(list(cols[1]), 50)),
            "waited_p50_us": _r(pct(list(cols[2]), 50)), "slept_p50_us": _r(pct(list(cols[3]), 50)),
            "mean_us": _r(sum(cols[0]) / n if n else None), "ran_mean_us": _r(sum(cols[1]) / n if n else None),
            "waited_mean_us": _r(sum(cols[2]) / n if n else None),
            "slept_mean_us": _r(sum(cols[3]) / n if n else None),
            "busy_at_arrival": round(sum(cols[4]) / n, 2) if n else None}
    return out


def _r(x: float | None) -> float | None:
    return None if x is None else round(x, 1)


def render(summary: dict) -> str:
    head = (f"{'hop':<14} {'who':<8} {'n':>4} {'p50':>7} {'ran':>6} {'waited':>6} {'slept':>6} | "
            f"{'mean':>7} {'ran':>6} {'waited':>6} {'slept':>6} {'busy@in':>7}")
    lines = [head]
    for key, s in summary.items():
        lines.append(f"{key:<14} {s['who']:<8} {s['n']:>4} " + " ".join(
            _f(s[k], w) for k, w in (("p50_us", 7), ("ran_p50_us", 6), ("waited_p50_us", 6), ("slept_p50_us", 6)))
            + " | " + " ".join(_f(s[k], w) for k, w in (("mean_us", 7), ("ran_mean_us", 6), ("waited_mean_us", 6),
                                                          ("slept_mean_us", 6)))
            + f" {'-' if s['busy_at_arrival'] is None else format(s['busy_at_arrival'], '.0%'):>7}")
    return "\n".join(lines)


def _f(x: float | None, w: int) -> str:
    return f"{'-':>{w}}" if x is None else f"{x:>{w},.0f}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m gateway.apps.demo.sched", description=__doc__.split("\n\n")[0])
    ap.add_argument("hops", help="a hops.py recording (its .clock.json beside it)")
    ap.add_argument("perf_script", help="the text of `perf script --ns -F comm,pid,tid,cpu,time,event,trace` "
                                        "(sched_switch, sched_wakeup; recorded with -k CLOCK_MONOTONIC)")
    ap.add_argument("--pids", required=True, help="the run's pids.json (sim, gateway; client.json beside it)")
    ap.add_argument("--lead", default="BRAVO")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    clock = json.loads(Path(args.hops + ".clock.json").read_text())
    pids = json.loads(Path(args.pids).read_text())
    client_file = Path(args.pids).with_name("client.json")     # the demo writes it beside pids.json
    client = json.loads(client_file.read_text()) if client_file.exists() else {}
    process_of: dict[int, int] = {}
    with open(args.perf_script) as f:
        timelines = parse_perf(f, process_of)
    tids = {"sim": busiest_thread(pids["sim"], timelines, process_of),
            "gateway": busiest_thread(pids["gateway"], timelines, process_of),
            "client": client.get("thread") or busiest_thread(client.get("pid", -1), timelines, process_of)}
    rows = follow_entries(read_messages(Path(args.hops)), lead=args.lead)
    summary = {"all": analyse(rows, timelines, tids, clock["realtime_minus_monotonic"]),
               "filled": analyse(rows, timelines, tids, clock["realtime_minus_monotonic"], "fill")}
    if args.json:
        print(json.dumps({"orders": len(rows), **summary}))
    else:
        print(f"{len(rows)} client orders followed")
        for name, s in summary.items():
            print(f"\n-- {name} entries/exits (us)\n" + render(s))
    return 0


if __name__ == "__main__":
    sys.exit(main())
