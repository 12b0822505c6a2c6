"""Shared fixtures. This file's folder is on sys.path (pytest's prepend import mode), so
socket tests can ``from stack import Stack``."""
from __future__ import annotations

import pytest

from stack import Stack


@pytest.fixture
def stack(tmp_path):
    """A loopback stack (simulator + gateway processes + raw clients), torn down after the test."""
    s = Stack(tmp_path)
    try:
        yield s
    finally:
        s.stop()
