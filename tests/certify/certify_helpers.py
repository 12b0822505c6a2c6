"""Helpers for the certifier tests (a module of its own: test files must not import conftest,
which is not unique across the test tree)."""
from __future__ import annotations

import json
import time
from pathlib import Path

from gateway.apps.certify import cli
from gateway.apps.certify.script import builtin_suite, discover

SUITE = discover([builtin_suite()])
SUITE_NAMES = [p.stem for p in SUITE]


def run_certify(tmp_path: Path, *args: str) -> tuple[int, dict, float]:
    """`fixgw certify ARGS --json OUT`; returns (exit code, the JSON report, wall seconds)."""
    out = tmp_path / f"report-{time.monotonic_ns()}.json"
    started = time.monotonic()
    rc = cli.main([*args, "--json", str(out)])
    report = json.loads(out.read_text()) if out.exists() else {}
    return rc, report, time.monotonic() - started


def statuses(report: dict) -> dict[str, str]:
    return {s["name"]: s["status"] for s in report["scenarios"]}


def failures(report: dict) -> dict[str, str]:
    return {s["name"]: s["reason"] for s in report["scenarios"] if s["status"] != "pass"}
