"""Journal micro-benchmark: CPU time per record of the order journal's writer, per record kind.

The two records every order writes (``accepted`` for the NewOrderSingle, ``venue_report`` for
the venue's ExecutionReport), with the values the gateway writes for them (as
``fixgw bench profile --stub``), plus a ``cancel`` as a record of the generic path: the line
alone (``line``, the text built) and the whole ``write`` (the line and its ``os.write`` to a
file). CPU time of this thread (``time.thread_time``) per record, median over runs. When the
mypyc build is in use (gateway/common/accel.py) it runs twice: compiled, and the pure-Python
module loaded beside it, with the ratio pure / compiled. ``accepted grouped N``: the group
commit of a received chunk (``Journal.group_with``): N records held, then one ``os.write``
(``flush``), per record. Prints a table (and the kind word each record is written as: since
issue 12 round 8 the two per-order records are the compact ``accepted2`` / ``venue_report2``);
asserts nothing.

    PYTHONPATH=. python benchmarks/bench_journal.py [--runs 7] [--iters 20000]
"""
from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from types import ModuleType

import gateway.core.journal as journal_module
from gateway.common import accel
from gateway.core.model import ChildOrder, OrderIntent
from gateway.core.orders import VenueExecutionReport

SESSION = "FIX.4.4:FIXGW->OMS1"


def records(J: ModuleType, i: int, now: float) -> dict[str, object]:
    """One order's records as the gateway writes them (ids change per order; times are clock
    readings, whole nanoseconds, as the gateway's are)."""
    intent = OrderIntent(SESSION, f"c{i}", "AAPL", "1", 100.0, "2", 190.01, "3", None, now)
    return {
        "accepted": J.Accepted(intent=intent, order_id=f"Omx54w5kh.{2 * i + 1}",
                               children=[ChildOrder("FAKE", 100.0, 190.01, "2", "3")],
                               venue_ids=[f"Gmx54w5kh.{2 * i + 2}"], policy="dma",
                               reason="dma: FAKE from default_venue", at=time.perf_counter()),
        "venue_report": J.VenueReport(report=VenueExecutionReport(
            venue="FAKE", cl_ord_id=f"Gmx54w5kh.{2 * i + 2}", orig_cl_ord_id=None, exec_id=f"X{i}",
            exec_type="F", ord_status="2", cum_qty=100.0, leaves_qty=0.0, avg_px=190.01, last_qty=100.0,
            last_px=190.01, venue_order_id=f"V{i}", text=None), at=time.perf_counter()),
        "cancel": J.Cancel(session=SESSION, cl_ord_id=f"x{i}", orig_cl_ord_id=f"c{i}",
                           venue_ids=[f"Gmx54w5kh.{2 * i + 3}"], at=time.perf_counter()),
    }


def run(J: ModuleType, iters: int, runs: int, where: Path) -> dict[str, list[float]]:
    """us of CPU per record: {"<kind> line": [...], "<kind> write": [...]}, one figure per run."""
    out: dict[str, list[float]] = {}
    recs = [records(J, i, time.perf_counter()) for i in range(iters)]
    probe = J.Journal(where / f"{J.__name__}.kinds")
    KINDS_WRITTEN.update({kind: json.loads(probe._line(rec, 1))[0] for kind, rec in recs[0].items()})
    probe.close()
    for r in range(runs):
        j = J.Journal(where / f"{J.__name__}.{r}")
        for kind in recs[0]:
            batch = [rec[kind] for rec in recs]
            line, write = j._line, j.write
            t0 = time.thread_time()
            for n, rec in enumerate(batch, 1):
                line(rec, n)
            t1 = time.thread_time()
            for rec in batch:
                write(rec)
            t2 = time.thread_time()
            out.setdefault(f"{kind} line", []).append((t1 - t0) / iters * 1e6)
            out.setdefault(f"{kind} write", []).append((t2 - t1) / iters * 1e6)
        # group commit (the native engine's dispatch of a chunk): records held, one os.write per group
        for size in GROUPS:
            group = _Group()
            j.group_with(group)
            batch = [rec["accepted"] for rec in recs]
            write, flush = j.write, j.flush
            t0 = time.thread_time()
            for k in range(0, iters, size):
                group.depth = 1
                for rec in batch[k:k + size]:
                    write(rec)
                group.depth = 0
                flush()
            out.setdefault(f"accepted grouped {size}", []).append((time.thread_time() - t0) / iters * 1e6)
            j.group_with(None)
        j.close()
    return out


GROUPS = (1, 4, 16)     # records per os.write (orders per received chunk)
KINDS_WRITTEN: dict[str, str] = {}     # record -> the kind word its line has


class _Group:
    """What ``Journal.group_with`` reads: the dispatch depth of the engine's SendBatch."""
    depth = 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--iters", type=int, default=20000)
    args = ap.parse_args()
    mode, why = accel.mode()
    impls = {mode: journal_module}
    if mode == "compiled":
        impls["pure"] = accel.load_pure(["gateway.core.journal"])["journal"]
    with tempfile.TemporaryDirectory(prefix="bench-journal-") as d:
        results = {name: run(J, args.iters, args.runs, Path(d)) for name, J in impls.items()}
    print(f"# journal writer, us of CPU per record (thread_time), median of {args.runs} runs of {args.iters}; "
          f"journal: {mode} ({why}); written as {', '.join(f'{k}: {v}' for k, v in KINDS_WRITTEN.items())}")
    names = list(results)
    print(f"{'':22}" + "".join(f"{n:>12}" for n in names) + ("   pure/compiled" if len(names) > 1 else ""))
    for key in results[names[0]]:
        meds = [statistics.median(results[n][key]) for n in names]
        ratio = f"   {meds[1] / meds[0]:.2f}x" if len(meds) > 1 else ""
        print(f"{key:22}" + "".join(f"{m:12.2f}" for m in meds) + ratio)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
