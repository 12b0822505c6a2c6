"""Fixtures for the certifier tests: a plain quickfix acceptor in this process (the
reference counterparty) and a helper that runs `fixgw certify` in-process."""
from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from gateway.certify import cli
from gateway.certify.acceptor import ReferenceAcceptor
from gateway.certify.script import builtin_suite, discover
from gateway.procs import free_port, wait_for_ports

SUITE = discover([builtin_suite()])
SUITE_NAMES = [p.stem for p in SUITE]


@pytest.fixture
def reference_acceptor(tmp_path):
    """A plain quickfix FIX 4.4 acceptor ISLD accepting CERT (ResetOnLogon, dictionary on)."""
    acc = ReferenceAcceptor(free_port(), "ISLD", ("CERT",), store_dir=tmp_path / "acceptor-store").start()
    wait_for_ports([acc.port], 10)
    try:
        yield acc
    finally:
        acc.stop()


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
