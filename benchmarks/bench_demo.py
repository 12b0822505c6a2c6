"""The demo's signal-to-execution, run after run, alternated between source trees (prints, asserts nothing).

    .venv/bin/python benchmarks/bench_demo.py --variant base=../other-checkout --variant new=. --runs 3
    .venv/bin/python benchmarks/bench_demo.py --variant new=. --wire --sched       # root: hop by hop
    .venv/bin/python benchmarks/bench_demo.py --variant nopin=.::--gateway-config /tmp/gw.toml

Each run is ``fixgw demo --policy scalp --no-control --duration D --zero-latency --no-record``
of one variant (``label=tree``, optionally ``::extra demo args``), started in that tree with
that tree first on PYTHONPATH; variants take turns run after run (A B A B ...) so a change in
the machine's load falls on all of them alike. Per run it prints, from the run's report.json,
signal-to-execution p50 (``s2e``, round trips), signal-to-report p50 over every entry
(``s2r``), and the client's entry hops (md read -> signal, -> wire, outside the client,
report in); then the median of each figure per variant.

``--wire`` (root or CAP_NET_RAW) records the loopback segments during the run
(``gateway.apps.demo.hops``) and adds each hop's p50 on the wire, filled entries and
exits: the client (``md->c_out``), the gateway in (``c_out->g_out``), the venue
(``g_out->v_out``) and the gateway out (``v_fill->g_fill``). ``--sched`` (with ``--wire``;
``perf`` and root) records the kernel's context switches and splits each hop into the time
the acting thread ran, waited for a CPU and slept (``gateway.apps.demo.sched``). Both
recorders cost CPU on the shared cores while they run.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gateway.apps.demo import hops as hops_mod  # noqa: E402
from gateway.apps.demo import sched as sched_mod  # noqa: E402

FIXGW = Path(sys.executable).with_name("fixgw")
HOP_KEYS = ("md->c_out", "c_out->g_out", "g_out->v_out", "v_fill->g_fill")


def parse_variant(text: str) -> tuple[str, Path, list[str]]:
    label, _, rest = text.partition("=")
    tree, _, extra = rest.partition("::")
    if not label or not tree:
        raise SystemExit(f"--variant {text!r}: expected label=tree[::extra demo args]")
    return label, Path(tree).resolve(), extra.split()


def run_once(label: str, tree: Path, extra: list[str], out: Path, duration: float, wire: bool,
             sched: bool) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONPATH": str(tree)}
    recorders: list[subprocess.Popen] = []
    record_s = duration + 14
    if wire:
        recorders.append(subprocess.Popen([sys.executable, "-m", "gateway.apps.demo.hops", "record", "--out",
                                           str(out / "h.bin"), "--duration", str(record_s)],
                                          cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    if wire and sched:
        recorders.append(subprocess.Popen(["perf", "record", "-q", "-k", "CLOCK_MONOTONIC", "-e",
                                           "sched:sched_switch,sched:sched_wakeup", "-a", "-o", str(out / "s.data"),
                                           "--", "sleep", str(record_s)],
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    if recorders:
        time.sleep(1.0)
    cmd = [str(FIXGW), "demo", "--policy", "scalp", "--no-control", "--duration", str(duration), "--zero-latency",
           "--plain", "--no-record", "--run-dir", str(out / "run"), "--out", str(out / "rep"), *extra]
    with open(out / "demo.log", "w") as log:
        demo = subprocess.Popen(cmd, cwd=tree, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            rc = demo.wait(timeout=duration + 120)
        except subprocess.TimeoutExpired:
            demo.terminate()
            rc = demo.wait(timeout=30)
    for r in recorders:
        try:
            r.wait(timeout=record_s + 30)
        except subprocess.TimeoutExpired:
            r.terminate()
            r.wait(timeout=10)
    row: dict = {"label": label, "rc": rc}
    try:
        rep = json.loads((out / "rep" / "report.json").read_text())
    except (OSError, ValueError):
        return row
    p = rep["policies"]["scalp"]
    row.update(s2e=p.get("signal_to_exec_p50_us"), s2r=p.get("signal_to_report_p50_us"), trips=p.get("round_trips"),
               missed=p.get("missed"))
    for k, v in (p.get("entry_hops") or {}).items():
        row[k] = v.get("p50_us") if isinstance(v, dict) else v
    if wire and (out / "h.bin").exists():
        rows = hops_mod.follow_entries(hops_mod.read_messages(out / "h.bin"))
        filled = hops_mod.summarize(rows, "fill")
        for k in HOP_KEYS:
            row[k] = filled[k]["p50_us"]
        if sched and (out / "s.data").exists():
            row.update(_sched(out, rows, demo.pid))
    return row


def _sched(out: Path, rows: list[dict], demo_pid: int) -> dict:
    text = subprocess.run(["perf", "script", "-i", str(out / "s.data"), "--ns", "-F",
                           "comm,pid,tid,cpu,time,event,trace"], capture_output=True, text=True).stdout
    (out / "s.data").unlink(missing_ok=True)          # large; the text below is what is kept
    process_of: dict[int, int] = {}
    timelines = sched_mod.parse_perf(text.splitlines(), process_of)
    pids_file = next((out / "run").glob("*/pids.json"))
    pids = json.loads(pids_file.read_text())
    client_file = pids_file.with_name("client.json")             # this round's demo writes it
    client = json.loads(client_file.read_text()) if client_file.exists() else {}
    tids = {"sim": sched_mod.busiest_thread(pids["sim"], timelines, process_of),
            "gateway": sched_mod.busiest_thread(pids["gateway"], timelines, process_of),
            "client": client.get("thread") or sched_mod.busiest_thread(demo_pid, timelines, process_of)}
    offset = json.loads((out / "h.bin.clock.json").read_text())["realtime_minus_monotonic"]
    summary = sched_mod.analyse(rows, timelines, tids, offset, "fill")
    (out / "sched.json").write_text(json.dumps(summary, indent=1))
    return {f"{k} ran": summary[k]["ran_p50_us"] for k in HOP_KEYS} | {
        f"{k} waited": summary[k]["waited_p50_us"] for k in HOP_KEYS}


COLUMNS = ("s2e", "s2r", "md_to_signal", "signal_to_wire", "outside_client", "report_in", *HOP_KEYS,
           *(f"{k} ran" for k in HOP_KEYS), *(f"{k} waited" for k in HOP_KEYS))


def _cols(rows: list[dict]) -> list[str]:
    return [c for c in COLUMNS if any(r.get(c) is not None for r in rows)]


def render(rows: list[dict]) -> str:
    cols = _cols(rows)
    lines = ["  ".join(["variant  ", "run"] + [f"{c:>12}" for c in cols])]
    for i, r in enumerate(rows):
        lines.append("  ".join([f"{r['label']:<9}", f"{i + 1:>3}"] + [_f(r.get(c)) for c in cols]))
    return "\n".join(lines)


def medians(rows: list[dict]) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for label in dict.fromkeys(r["label"] for r in rows):
        mine = [r for r in rows if r["label"] == label]
        out[label] = {c: round(statistics.median(xs), 1) for c in _cols(mine)
                      if (xs := [r[c] for r in mine if r.get(c) is not None])}
    return out


def _f(x) -> str:
    return f"{'-':>12}" if x is None else f"{x:>12,.0f}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--variant", action="append", required=True, help="label=tree[::extra demo args]; repeatable")
    ap.add_argument("--runs", type=int, default=3, help="runs per variant (alternated)")
    ap.add_argument("--duration", type=float, default=20.0)
    ap.add_argument("--wire", action="store_true", help="hop times on the loopback wire (root)")
    ap.add_argument("--sched", action="store_true", help="with --wire: ran / waited per hop (perf, root)")
    ap.add_argument("--keep", help="keep each run's files under this directory")
    ap.add_argument("--json", action="store_true", help="the rows and medians as JSON on the last line")
    args = ap.parse_args(argv)
    if args.sched and not shutil.which("perf"):
        print("bench_demo: --sched needs perf", file=sys.stderr)
        return 2
    variants = [parse_variant(v) for v in args.variant]
    base = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="bench_demo-"))
    rows: list[dict] = []
    try:
        for k in range(args.runs):
            for label, tree, extra in variants:
                row = run_once(label, tree, extra, base / f"{label}-{k + 1}", args.duration, args.wire, args.sched)
                rows.append(row)
                print(f"[{label} {k + 1}/{args.runs}] " + ", ".join(
                    f"{c} {row[c]:,.0f}" for c in _cols([row])) + ("" if row.get("rc") == 0 else f" (exit {row.get('rc')})"),
                    flush=True)
    finally:
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)
    print("\n" + render(rows))
    med = medians(rows)
    print("\nmedians per variant (us)")
    for label, m in med.items():
        print(f"  {label:<9} " + ", ".join(f"{c} {v:,.0f}" for c, v in m.items()))
    if args.json:
        print(json.dumps({"rows": rows, "medians": med}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
