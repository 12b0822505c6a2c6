"""Fixtures for the simulator's tests: in-process exchanges that are always stopped, free ports."""
from __future__ import annotations

import pytest

from gateway.common.procs import free_ports
from sim_exchange.exchange import SimExchange
from sim_helpers import make_config


@pytest.fixture(params=["quickfix", "native"])
def sim_engine(request) -> str:
    """Every socket test runs against both FIX engines of the venue."""
    return request.param


@pytest.fixture
def exchange_factory(tmp_path, sim_engine):
    """Start SimExchanges in-process; every one started is stopped at the end."""
    started: list[SimExchange] = []

    def start(venues: list[dict], symbols=None) -> SimExchange:
        ex = SimExchange(make_config(tmp_path, venues, symbols, engine=sim_engine)).start()
        started.append(ex)
        return ex

    yield start
    for ex in started:
        ex.stop()


@pytest.fixture
def ports():
    return free_ports(4)
