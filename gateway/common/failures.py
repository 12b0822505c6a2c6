"""Clean start-up failures: one line naming the problem, exit status 2, no traceback.

The server checks what it can before opening anything (``check_port_free``,
``check_store_dir``, ``check_certificate``) and wraps its start in ``run_cleanly``, which
also turns the usual exceptions of a bad start (address in use, a store locked by another
process, a certificate that does not load, a missing or read-only directory) into that one
line. Anything else is a bug and keeps its traceback.

    from gateway.common.failures import StartupError, check_port_free, run_cleanly
    def main(argv):
        return run_cleanly(lambda: _main(argv), prog="fixgw run")
"""
from __future__ import annotations

import errno
import os
import socket
import ssl
import sys
from pathlib import Path
from typing import Callable, TextIO

EXIT_STARTUP = 2


class StartupError(Exception):
    """A start-up problem the operator can fix; ``str()`` is the one line to print."""


def check_port_free(host: str, port: int, what: str = "port") -> None:
    """Raise ``StartupError`` if ``host:port`` cannot be bound (in use, or not ours to bind).
    Port 0 (any) is always free."""
    if not port:
        return
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)   # as asyncio's listener does
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise StartupError(_bind_text(what, host, port, exc)) from None


def _bind_text(what: str, host: str, port: int, exc: OSError) -> str:
    if exc.errno == errno.EADDRINUSE:
        return f"{what} {host}:{port} is already in use (another gateway running? change the port or stop it)"
    if exc.errno in (errno.EACCES, errno.EPERM):
        return f"{what} {host}:{port}: permission denied (ports below 1024 need privileges)"
    if exc.errno == errno.EADDRNOTAVAIL:
        return f"{what} {host}:{port}: no such local address"
    return f"{what} {host}:{port}: cannot listen: {exc.strerror or exc}"


def check_store_dir(path: str | Path, *, create: bool = True, what: str = "store directory") -> Path:
    """The directory exists (made when ``create``) and is writable; else ``StartupError``."""
    p = Path(path)
    if not p.exists():
        if not create:
            raise StartupError(f"{what} {p} does not exist (create it, or set store_dir in the config)")
        try:
            p.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StartupError(f"{what} {p} does not exist and cannot be created: {exc.strerror or exc}") from None
    if not p.is_dir():
        raise StartupError(f"{what} {p} is not a directory")
    if not os.access(p, os.W_OK | os.X_OK):
        raise StartupError(f"{what} {p} is not writable by this user")
    return p


def check_certificate(cert_file: str | None, key_file: str | None = None, ca_file: str | None = None,
                      what: str = "TLS") -> None:
    """The certificate, key and CA files exist and load; else ``StartupError`` naming the file."""
    for name, f in (("certificate", cert_file), ("key", key_file), ("CA file", ca_file)):
        if f and not Path(f).is_file():
            raise StartupError(f"{what}: {name} {f} not found")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if cert_file:
        try:
            ctx.load_cert_chain(cert_file, key_file)
        except (ssl.SSLError, OSError, ValueError) as exc:
            raise StartupError(f"{what}: bad certificate {cert_file}"
                               f"{f' / key {key_file}' if key_file else ''}: {_ssl_text(exc)}") from None
    if ca_file:
        try:
            ctx.load_verify_locations(ca_file)
        except (ssl.SSLError, OSError, ValueError) as exc:
            raise StartupError(f"{what}: bad CA file {ca_file}: {_ssl_text(exc)}") from None


def _ssl_text(exc: BaseException) -> str:
    reason = getattr(exc, "reason", None)
    return str(reason or getattr(exc, "strerror", None) or exc).replace("_", " ").lower()


def explain(exc: BaseException) -> str | None:
    """One line for an exception a bad start raises, or None (a bug: keep the traceback)."""
    if isinstance(exc, StartupError):
        return str(exc)
    name = type(exc).__name__
    if name == "StoreLocked":            # gateway.fix.store (not imported: common stays below fix)
        return f"session store in use: {exc} (another gateway running with the same store_dir?)"
    if isinstance(exc, ssl.SSLError):
        return f"TLS: {_ssl_text(exc)}"
    if isinstance(exc, OSError):
        if exc.errno == errno.EADDRINUSE:
            return f"address already in use: {exc.strerror or exc} (another gateway running? change the port)"
        if isinstance(exc, FileNotFoundError) and exc.filename:
            return f"not found: {exc.filename}"
        if isinstance(exc, PermissionError) and exc.filename:
            return f"permission denied: {exc.filename}"
    return None


def run_cleanly(main: Callable[[], int | None], prog: str = "fixgw", stream: TextIO | None = None) -> int:
    """``main()``'s exit status; a start-up failure prints ``<prog>: <one line>`` and returns 2."""
    try:
        return int(main() or 0)
    except Exception as exc:   # noqa: BLE001 - anything explain() does not know is re-raised
        line = explain(exc)
        if line is None:
            raise
        print(f"{prog}: {line}", file=stream or sys.stderr)
        return EXIT_STARTUP
