"""sched.py: a thread's timeline from perf's context switches, and a hop split into ran / waited / slept."""
from __future__ import annotations

from gateway.apps.demo.sched import RUNNABLE, RUNNING, SLEEPING, Timeline, analyse, busiest_thread, parse_perf

LINES = """\
         swapper     0/0     [001] 100.000100000: sched:sched_wakeup: comm=python3 pid=42 prio=120 target_cpu=001
         swapper     0/0     [001] 100.000150000: sched:sched_switch: prev_comm=swapper/1 prev_pid=0 prev_prio=120 prev_state=R ==> next_comm=python3 next_pid=42 next_prio=120
         python3    40/42    [001] 100.000250000: sched:sched_switch: prev_comm=python3 prev_pid=42 prev_prio=120 prev_state=R ==> next_comm=cc1 next_pid=7 next_prio=120
             cc1     7/7     [001] 100.000300000: sched:sched_switch: prev_comm=cc1 prev_pid=7 prev_prio=120 prev_state=R ==> next_comm=python3 next_pid=42 next_prio=120
         python3    40/42    [001] 100.000400000: sched:sched_switch: prev_comm=python3 prev_pid=42 prev_prio=120 prev_state=S ==> next_comm=swapper/1 next_pid=0 next_prio=120
         python3    40/41    [000] 100.000500000: sched:sched_switch: prev_comm=python3 prev_pid=41 prev_prio=120 prev_state=S ==> next_comm=swapper/0 next_pid=0 next_prio=120
"""


def test_parse_and_split():
    process_of: dict[int, int] = {}
    tl = parse_perf(LINES.splitlines(), process_of)
    t42 = tl[42]
    assert t42.states == [RUNNABLE, RUNNING, RUNNABLE, RUNNING, SLEEPING]
    assert process_of[42] == 40 and process_of[41] == 40
    ran, waited, slept = t42.split(100.0, 100.0005)
    assert round(ran * 1e6) == 200            # 150-250 and 300-400
    assert round(waited * 1e6) == 100         # woken at 100, on a CPU at 150; preempted 250-300
    assert round(slept * 1e6) == 200          # before the wake-up, and after 400
    assert t42.state_at(100.00012) == RUNNABLE and t42.state_at(100.0006) == SLEEPING
    assert busiest_thread(40, tl, process_of) == 42


def test_analyse_a_hop():
    tl = {5: Timeline([10.0, 10.0001, 10.0003], [RUNNABLE, RUNNING, SLEEPING])}
    rows = [{"md": None, "c_out": 10.0, "g_out": 10.0003, "g_fill": None, "v_out": None, "v_fill": None,
             "outcome": "fill"}]
    out = analyse(rows, tl, {"gateway": 5}, offset=0.0)
    hop = out["c_out->g_out"]
    assert hop["n"] == 1 and hop["p50_us"] == 300.0
    assert hop["ran_p50_us"] == 200.0 and hop["waited_p50_us"] == 100.0 and hop["slept_p50_us"] == 0.0
    assert hop["busy_at_arrival"] == 1.0
    assert out["md->c_out"]["n"] == 0         # no md time in the row
