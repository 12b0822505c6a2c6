"""A bounded socket-level fuzz of a native acceptor process (the full run is
benchmarks/fuzz_acceptor.py): garbled, truncated and random messages on one session
must leave the process alive and a well-behaved session answered every time."""
from __future__ import annotations

import sys
from pathlib import Path

from gateway.common.paths import REPO_ROOT

sys.path.insert(0, str(REPO_ROOT / "benchmarks"))
import fuzz_acceptor  # noqa: E402


def test_acceptor_survives_fuzz_and_serves_a_well_behaved_session():
    stats = fuzz_acceptor.run(messages=1500, seed=11, time_limit_s=60, quiet=True)
    assert stats["alive"]
    assert stats["sent"] >= 1400                      # a send into a connection the acceptor just closed is lost
    assert stats["probes"] >= 2 and stats["probes_answered"] == stats["probes"]
    assert stats["answers"].get("3", 0) > 0          # malformed messages were rejected, not ignored wholesale
    assert stats["peak_rss_kb"] < 300 * 1024
