"""Certification reports: a live line per scenario, a summary table, JUnit XML and JSON."""
from __future__ import annotations

import datetime as _dt
import json
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from gateway.apps.certify.runner import ERROR, FAIL, PASS, Outcome, Target

MARK = {PASS: "PASS", FAIL: "FAIL", ERROR: "ERROR"}


@dataclass
class Run:
    target: Target
    mode: str
    outcomes: list[Outcome] = field(default_factory=list)
    wall_seconds: float = 0.0
    started: str = field(default_factory=lambda: _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"))
    preflight: str | None = None  # why the sequence reset check failed, if it did
    warnings: list[str] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(1 for o in self.outcomes if o.status == status)

    @property
    def ok(self) -> bool:
        return self.preflight is None and bool(self.outcomes) and all(o.status == PASS for o in self.outcomes)

    def summary_line(self) -> str:
        total = len(self.outcomes)
        return (f"{total} scenario(s): {self.count(PASS)} passed, {self.count(FAIL)} failed, "
                f"{self.count(ERROR)} error(s) in {self.wall_seconds:.1f}s against {self.target.describe()}")


class LivePrinter:
    """One line per scenario as it runs; details of a failure right under it."""

    def __init__(self, out: TextIO, verbose: bool = True) -> None:
        self.out, self.verbose = out, verbose
        self.width = 44

    def start(self, index: int, total: int, name: str) -> None:
        self.out.write(f"[{index:>{len(str(total))}}/{total}] {name:<{self.width}} ")
        self.out.flush()

    def done(self, index: int, total: int, outcome: Outcome) -> None:
        self.out.write(f"{MARK[outcome.status]:<5} {outcome.seconds:6.2f}s\n")
        if outcome.status != PASS and self.verbose:
            self.out.write(f"      at {outcome.step}: {outcome.reason}\n")
            if outcome.expected:
                self.out.write(f"      expected: {outcome.expected}\n")
            if outcome.received:
                self.out.write(f"      received: {outcome.received}\n")
        self.out.flush()


def summary_table(run: Run, reason_width: int = 90) -> str:
    """suite | scenario | result | time | reason, one row per case, then the totals."""
    rows = [("suite", "scenario", "result", "time", "reason")]
    for o in run.outcomes:
        reason = o.reason if len(o.reason) <= reason_width else o.reason[:reason_width - 3] + "..."
        rows.append((o.suite, o.name, MARK[o.status], f"{o.seconds:.2f}s", reason))
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    lines = []
    for i, r in enumerate(rows):
        lines.append(f"{r[0]:<{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]:<{widths[2]}}  {r[3]:>{widths[3]}}  "
                     f"{r[4]}".rstrip())
        if i == 0:
            lines.append("-" * (sum(widths) + 8))
    if run.preflight:
        lines.append(f"preflight (sequence reset on logon): FAIL  {run.preflight}")
    lines.append(run.summary_line())
    return "\n".join(lines)


def to_json(run: Run) -> dict:
    return {
        "counterparty": {"host": run.target.host, "port": run.target.port, "sender": run.target.sender,
                         "target": run.target.target, "label": run.target.label},
        "mode": run.mode,
        "started": run.started,
        "wall_seconds": round(run.wall_seconds, 3),
        "preflight": {"status": PASS if run.preflight is None else FAIL, "reason": run.preflight or ""},
        "warnings": run.warnings,
        "summary": {"total": len(run.outcomes), "passed": run.count(PASS), "failed": run.count(FAIL),
                    "errors": run.count(ERROR), "ok": run.ok},
        "suites": suite_counts(run),
        "scenarios": [o.to_dict() for o in run.outcomes],
    }


def suite_counts(run: Run) -> dict[str, dict[str, int]]:
    """{suite: {total, passed, failed, errors}} in the order the suites ran."""
    out: dict[str, dict[str, int]] = {}
    for o in run.outcomes:
        c = out.setdefault(o.suite, {"total": 0, "passed": 0, "failed": 0, "errors": 0})
        c["total"] += 1
        c[{PASS: "passed", FAIL: "failed", ERROR: "errors"}[o.status]] += 1
    return out


def write_json(run: Run, path: str | Path) -> None:
    Path(path).write_text(json.dumps(to_json(run), indent=2) + "\n")


def to_junit(run: Run) -> list[ET.Element]:
    """One <testsuite> per certification suite (session acceptor / session initiator /
    application); classname certify.<suite>.<counterparty>."""
    names = list(dict.fromkeys(o.suite for o in run.outcomes)) or ["session acceptor"]
    return [_junit_suite(run, name, [o for o in run.outcomes if o.suite == name], first=(i == 0))
            for i, name in enumerate(names)]


def _junit_suite(run: Run, suite_name: str, outcomes: list[Outcome], first: bool) -> ET.Element:
    label = run.target.label or f"{run.target.host}:{run.target.port}"
    preflight = bool(run.preflight) and first
    failed = sum(1 for o in outcomes if o.status == FAIL)
    suite = ET.Element("testsuite", {
        "name": f"fixgw certify {suite_name}: {label} ({run.target.sender}->{run.target.target})",
        "tests": str(len(outcomes) + (1 if preflight else 0)),
        "failures": str(failed + (1 if preflight else 0)),
        "errors": str(sum(1 for o in outcomes if o.status == ERROR)),
        "time": f"{sum(o.seconds for o in outcomes) if outcomes else run.wall_seconds:.3f}",
        "timestamp": run.started,
    })
    classname = f"certify.{_slug(suite_name)}.{_slug(label)}"
    if preflight:
        case = ET.SubElement(suite, "testcase", {"classname": classname, "name": "preflight_sequence_reset",
                                                 "time": "0"})
        ET.SubElement(case, "failure", {"message": _xml_safe(run.preflight)}).text = _xml_safe(run.preflight)
    for o in outcomes:
        case = ET.SubElement(suite, "testcase", {"classname": classname, "name": o.name,
                                                 "file": o.file, "time": f"{o.seconds:.3f}"})
        if o.status == PASS:
            continue
        detail = "\n".join(x for x in (f"at {o.step}", o.reason,
                                       f"expected: {o.expected}" if o.expected else "",
                                       f"received: {o.received}" if o.received else "") if x)
        tag = "failure" if o.status == FAIL else "error"
        ET.SubElement(case, tag, {"message": _xml_safe(o.reason)}).text = _xml_safe(detail)
    return suite


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in text)


def write_junit(run: Run, path: str | Path) -> None:
    tree = ET.ElementTree(ET.Element("testsuites"))
    tree.getroot().extend(to_junit(run))
    ET.indent(tree)
    tree.write(path, encoding="utf-8", xml_declaration=True)


def _xml_safe(text: str) -> str:
    """XML 1.0 cannot hold most control characters (a garbled message may carry some)."""
    return "".join(c if c in "\n\t" or ord(c) >= 0x20 else f"\\x{ord(c):02x}" for c in text)
