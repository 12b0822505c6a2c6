"""Starting and stopping our own child processes (simulator, gateway) by their id.

Used by the demo, the benchmarks and the socket tests. Every wait is bounded in time;
only processes started here are ever signalled.
"""
from __future__ import annotations

import gc
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Sequence


def free_port() -> int:
    """A currently free TCP port on 127.0.0.1 (the OS picks it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_ports(n: int) -> list[int]:
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False


def wait_for_ports(ports: Sequence[int], timeout: float = 20.0, proc: subprocess.Popen | None = None) -> None:
    """Wait until every port accepts connections; raise with the child's output if it died."""
    deadline = time.monotonic() + timeout
    pending = list(ports)
    while pending and time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process {proc.args!r} exited with {proc.returncode} before listening: "
                               f"{_tail_output(proc)}")
        pending = [p for p in pending if not port_open(p)]
        if pending:
            time.sleep(0.05)
    if pending:
        raise TimeoutError(f"ports {pending} not listening after {timeout:.0f}s")


def fixgw_command(*args: str) -> list[str]:
    """`fixgw ARGS` run with this interpreter (works without the console script on PATH)."""
    return [sys.executable, "-m", "gateway", *args]


def start(cmd: Sequence[str], log_path: Path | str | None = None, cwd: Path | str | None = None,
          env: dict[str, str] | None = None) -> subprocess.Popen:
    """Start a child in its own process group; output goes to ``log_path`` (or is discarded)."""
    out = open(log_path, "ab") if log_path else subprocess.DEVNULL  # noqa: SIM115 - owned by the child
    full_env = dict(os.environ)
    full_env.update(env or {})
    proc = subprocess.Popen(list(cmd), stdout=out, stderr=subprocess.STDOUT, cwd=cwd, env=full_env,
                            start_new_session=True)
    proc._fixgw_log = log_path  # type: ignore[attr-defined]
    return proc


def stop(proc: subprocess.Popen | None, timeout: float = 10.0, sig: int = signal.SIGTERM) -> int | None:
    """Stop a child we started: ``sig`` first, SIGKILL if it does not exit within ``timeout``."""
    if proc is None or proc.poll() is not None:
        return None if proc is None else proc.returncode
    try:
        proc.send_signal(sig)
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait(5)


def kill_hard(proc: subprocess.Popen) -> None:
    """SIGKILL, as a crash would: no cleanup runs in the child."""
    if proc.poll() is None:
        proc.kill()
        proc.wait(5)


def _tail_output(proc: subprocess.Popen, lines: int = 20) -> str:
    path = getattr(proc, "_fixgw_log", None)
    if not path or not Path(path).exists():
        return "(no log)"
    return "\n".join(Path(path).read_text(errors="replace").splitlines()[-lines:])


def freeze_startup_heap() -> None:
    """What start-up built (config, FIX dictionaries, books, stores) lives as long as the
    process: move it out of the collector's reach, so the order path's collections scan only
    young objects (no full pass over the start-up heap, a pause on the order path). What the
    orders make afterwards is swept and frozen by the loop (``gateway.common.collector``)."""
    gc.collect()
    gc.freeze()


def check_cpu(v: int | None) -> int | None:
    """A config's ``cpu``: None (not pinned), -1 (the last CPU this process may use) or one of
    those CPUs; anything else is a ValueError naming what is allowed."""
    allowed = sorted(os.sched_getaffinity(0))
    if v is not None and v != -1 and v not in allowed:
        raise ValueError(f"CPU {v} is not available to this process (allowed: {allowed}, or -1 for the last)")
    return v


def pin_cpu(cpu: int | None) -> int | None:
    """Pin the calling thread (threads started later inherit it) to ``cpu`` (-1: the last
    allowed); None leaves it alone. Returns the CPU pinned to."""
    if cpu is None:
        return None
    if cpu == -1:
        cpu = sorted(os.sched_getaffinity(0))[-1]
    os.sched_setaffinity(0, {cpu})
    return cpu
