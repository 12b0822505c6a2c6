"""Fixtures for the certifier tests: a plain quickfix acceptor in this process (the
reference counterparty). Helpers live in certify_helpers.py."""
from __future__ import annotations

import pytest

from gateway.apps.certify.acceptor import ReferenceAcceptor
from gateway.common.procs import free_port, wait_for_ports


@pytest.fixture
def reference_acceptor(tmp_path):
    """A plain quickfix FIX 4.4 acceptor ISLD accepting CERT (ResetOnLogon, dictionary on)."""
    acc = ReferenceAcceptor(free_port(), "ISLD", ("CERT",), store_dir=tmp_path / "acceptor-store").start()
    wait_for_ports([acc.port], 10)
    try:
        yield acc
    finally:
        acc.stop()
