"""SIGKILL the gateway at seeded random points under a mix of IOC, Day, cancels and
replaces from two OMS sessions to two simulated venues; restart it each time. At the
end every OMS order has exactly one terminal report, every cancel and replace exactly one
answer, no venue order was sent twice, positions equal the venues' fills, and every restart
succeeded. (The full run with
thousands of orders and many kills: benchmarks/chaos_recovery.py.)"""
from __future__ import annotations

from tests.chaos.harness import ChaosRun, RunConfig, report


def test_sigkill_recovery_bounded(tmp_path):
    run = ChaosRun(tmp_path, RunConfig(orders=500, kills=4, seed=13, final_timeout_s=20.0), log=lambda s: None)
    lines: list[str] = []
    try:
        run.start()
        res = run.run()
    finally:
        run.stop()
    report(res, log=lines.append)
    text = "\n".join(lines)
    assert res.kills == 4 and res.sent == 500, text
    assert res.ok, "\n".join(res.failures()) + "\n" + text
    assert res.elapsed_s < 60, text
