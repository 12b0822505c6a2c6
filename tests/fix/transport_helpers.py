"""Helpers for the transport, interop and hostile tests: a bounded loop runner, recording
applications, raw FIX frames (built here, independent of our codec) and a throwaway
TLS certificate."""
from __future__ import annotations

import asyncio
import datetime as _dt
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

from gateway.fix.engine import BaseApplication, Unsupported
from gateway.fix.settings import SessionSettings
from gateway.fix.transport import new_event_loop

SOH = "\x01"
NEW_ORDER = "11={id}\x0155=EURUSD\x0154=1\x0160=20240101-00:00:00.000\x0138=100\x0140=2\x0144=1.1\x01"
EXEC_REPORT = ("37=O-{id}\x0111={id}\x0117=E-{id}\x01150=0\x0139=0\x0155=EURUSD\x0154=1\x01"
               "151=100\x0114=0\x016=0\x01")


def run(coro, timeout: float = 10.0):
    """Run a coroutine on a fresh loop (uvloop when installed), bounded in time."""
    loop = new_event_loop()
    try:
        return loop.run_until_complete(asyncio.wait_for(coro, timeout))
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()


def settings(sender: str, target: str, role: str, **kw) -> SessionSettings:
    kw.setdefault("heartbeat_s", 30)
    return SessionSettings(sender_comp_id=sender, target_comp_id=target, role=role, **kw)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Recorder(BaseApplication):
    """Records every callback; ``wait`` polls a condition on the loop (bounded)."""

    def __init__(self, echo: bool = False) -> None:
        self.echo = echo
        self.logons: list[str] = []
        self.logouts: list[tuple[str, str]] = []
        self.messages: list = []
        self.admin: list = []
        self.raise_on: dict[str, Exception] = {}

    def on_logon(self, session) -> None:
        self.logons.append(session.key)

    def on_logout(self, session, reason) -> None:
        self.logouts.append((session.key, reason))

    def on_admin(self, session, msg) -> None:
        self.admin.append(msg)

    def on_message(self, session, msg) -> None:
        exc = self.raise_on.get(msg.msg_type)
        if exc is not None:
            raise exc
        self.messages.append(msg)
        if self.echo and msg.msg_type == "D":
            session.send("8", EXEC_REPORT.format(id=msg[11]))
        elif msg.msg_type not in ("D", "8", "j"):
            raise Unsupported(f"MsgType {msg.msg_type} not handled")

    async def wait(self, predicate, timeout: float = 5.0, what: str = "condition") -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}")
            await asyncio.sleep(0.01)


def frame(pairs: list[tuple[int, object]], begin: str = "FIX.4.4") -> bytes:
    """A FIX frame with BodyLength and CheckSum computed (no codec involved)."""
    body = "".join(f"{t}={v}{SOH}" for t, v in pairs).encode("latin-1")
    head = f"8={begin}{SOH}9={len(body)}{SOH}".encode()
    total = sum(head + body) % 256
    return head + body + f"10={total:03d}{SOH}".encode()


def utc_now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%d-%H:%M:%S.%f")[:-3]


def logon(sender: str, target: str, seq: int = 1, hb: int = 30, reset: bool = False) -> bytes:
    pairs = [(35, "A"), (49, sender), (56, target), (34, seq), (52, utc_now()), (98, 0), (108, hb)]
    if reset:
        pairs.append((141, "Y"))
    return frame(pairs)


async def read_until_closed(reader: asyncio.StreamReader, timeout: float) -> tuple[bytes, bool]:
    """Everything the peer sends until it closes (True) or the timeout passes (False)."""
    data = b""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        left = deadline - asyncio.get_running_loop().time()
        if left <= 0:
            return data, False
        try:
            chunk = await asyncio.wait_for(reader.read(65536), left)
        except asyncio.TimeoutError:
            return data, False
        except ConnectionError:
            return data, True
        if not chunk:
            return data, True
        data += chunk


def make_cert(directory: Path) -> tuple[str, str]:
    """A throwaway self-signed certificate for 127.0.0.1/localhost: (cert, key) PEM paths.
    ``cryptography`` when installed, else ``openssl req``, else the test is skipped."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    try:
        _cert_with_cryptography(cert, key)
    except ImportError:
        if shutil.which("openssl") is None:
            pytest.skip("TLS test skipped: neither the cryptography package nor openssl is available")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                        "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
                        "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True, timeout=60)
    return str(cert), str(key)


def _cert_with_cryptography(cert_path: Path, key_path: Path) -> None:
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = _dt.datetime.now(_dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - _dt.timedelta(minutes=5)).not_valid_after(now + _dt.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
