"""The optional mypyc build (gateway/common/accel.py): a stale compiled file never shadows newer
source, FIXGW_PURE forces the .py files, and the tests of the compiled modules pass in BOTH
implementations (this process runs one, a subprocess the other, when a build is present:
.ci/run builds one)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.common.paths import REPO_ROOT
from gateway.common import accel
from gateway.fix.codec import parse
from gateway.fix.dictionary import Dictionary

# The tests of every compiled module, run again in the other implementation.
BOTH_WAYS_TESTS = ["tests/fix/test_codec.py", "tests/fix/test_codec_fuzz.py", "tests/fix/test_dictionary.py"]
BOTH_WAYS_TESTS += [   # the order core (orders, hub, risk, router, market): a few seconds each way
    "tests/core/test_orders_state.py", "tests/core/test_hub.py", "tests/core/test_day_end.py",
    "tests/core/test_recon.py", "tests/core/test_risk_and_routing_edges.py", "tests/gateway/test_orders.py",
    "tests/risk/test_risk_checks.py", "tests/risk/test_risk_killswitch.py", "tests/router/test_router_policies.py",
    "tests/router/test_router_latency.py", "tests/router/test_router_market.py"]
BOTH_WAYS_TESTS += ["tests/sim/test_engine.py", "tests/sim/test_fixtext.py", "tests/sim/test_fixmsgs.py"]   # the simulator
BOTH_WAYS_TESTS += ["tests/fix/test_session.py", "tests/fix/test_store.py"]   # session and store
BOTH_WAYS_TESTS += ["tests/gateway/test_edges.py"]   # the gateway's edges
BOTH_WAYS_TESTS += ["tests/core/test_journal.py"]   # the journal
BOTH_WAYS_TESTS += ["tests/fix/test_transport.py", "tests/fix/test_transport_schedule.py",   # the drive
                    "tests/fix/test_transport_warm.py"]
BOTH_WAYS_TESTS += ["tests/fix/test_send_batch.py"]   # the drive's send batch + the journal's group commit
BOTH_WAYS_TESTS += ["tests/sim/test_stores.py"]   # the venue's stores
BOTH_WAYS_TESTS += ["tests/sim/test_publish_writes.py"]   # the venue's order path (publish, venuecore)
BOTH_WAYS_TESTS += ["tests/router/test_router_book.py", "tests/client/test_mdfeed.py"]   # books and W/X (book, mdfeed)
BOTH_WAYS_TESTS += ["tests/gateway/test_oms_exec_text.py"]   # round 6 (core): the OMS ExecutionReport templates
BOTH_WAYS_TESTS += ["tests/strategies/test_scalper.py", "tests/strategies/test_configs.py",   # round 8: the tactics
                    "tests/strategies/test_scenarios.py", "tests/strategies/test_momentum_spread.py",
                    "tests/strategies/test_liquidity_fade.py"]
FRAME = b"8=FIX.4.4\x019=41\x0135=0\x0149=A\x0156=B\x0134=1\x0152=20240102-03:04:05\x0110=125\x01"


MODULES = ("gateway.fix.codec", "gateway.fix.dictionary", "gateway.core.orders")


def _fake_build(root: Path) -> dict:
    """A source tree with sources, 'compiled' files and a manifest that matches them."""
    suffix = accel._ext_suffix()
    for name in MODULES:
        src = accel.source(name, root)
        src.parent.mkdir(parents=True, exist_ok=True)
        src.write_text(f"NAME = {name!r}\n")
        src.with_name(src.stem + suffix).write_bytes(b"\x7fELF " + name.encode())
    (root / "gateway" / f"_accel__mypyc{suffix}").write_bytes(b"\x7fELF shared")
    manifest = {
        "suffix": suffix, "mypy": "test", "built": "now",
        "sources": {n: accel._sha256(accel.source(n, root)) for n in MODULES},
        "files": {accel._key(f, root): accel._stamp(f) for f in accel.compiled_files(root, MODULES)},
    }
    (root / accel.MANIFEST).write_text(json.dumps(manifest))
    return manifest


def test_clean_removes_what_the_last_build_compiled_even_if_no_longer_listed(tmp_path):
    from gateway.common import accel_build
    _fake_build(tmp_path)
    dropped = accel._compiled(MODULES[2], tmp_path)
    assert dropped.exists()
    removed = accel_build.clean(tmp_path, MODULES[:2])           # MODULES[2] left the list since
    assert dropped in removed and not dropped.exists()
    assert not accel.compiled_files(tmp_path, MODULES) and not (tmp_path / accel.MANIFEST).exists()
    assert accel.source(MODULES[2], tmp_path).exists()          # sources are never touched


def test_check_accepts_only_a_build_that_matches_its_sources(tmp_path):
    assert accel.check(tmp_path, MODULES)[0] == "pure"                 # nothing built
    _fake_build(tmp_path)
    assert accel.check(tmp_path, MODULES)[0] == "compiled"
    with open(tmp_path / "gateway/core/orders.py", "a") as f:          # source edited after the build
        f.write("# edited\n")
    state, reason = accel.check(tmp_path, MODULES)
    assert state == "stale" and "gateway/core/orders.py changed" in reason


def test_check_rejects_a_manifest_for_other_modules(tmp_path):
    _fake_build(tmp_path)
    state, reason = accel.check(tmp_path, MODULES[:2])
    assert state == "stale"


def test_check_rejects_a_foreign_compiled_file_or_a_missing_manifest(tmp_path):
    _fake_build(tmp_path)
    foreign = f"gateway/fix/dictionary{accel._ext_suffix()}"
    (tmp_path / foreign).write_bytes(b"\x7fELF another build")
    assert accel.check(tmp_path, MODULES) == ("stale", f"{foreign} is not the file that was built")
    _fake_build(tmp_path)
    (tmp_path / accel.MANIFEST).unlink()
    assert accel.check(tmp_path, MODULES)[0] == "stale"


def _modules_in_subprocess(env_extra: dict[str, str]) -> list[str]:
    code = ("import importlib, gateway.common.accel as a; "
            "print(a.mode()[0], *(importlib.import_module(m).__file__.endswith('.py') for m in a.MODULES))")
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), **env_extra}
    proc = subprocess.run([sys.executable, "-c", code], env=env, cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=60, check=True)
    return proc.stdout.split()


def test_fixgw_pure_loads_the_py_files():
    assert _modules_in_subprocess({accel.PURE_ENV: "1"}) == ["pure", *["True"] * len(accel.MODULES)]


def test_this_process_runs_what_check_says():
    state = accel.check()[0]
    mode = accel.mode()[0]
    if os.environ.get(accel.PURE_ENV, "") in ("", "0"):
        assert mode == ("compiled" if state == "compiled" else "pure")
    expected = "compiled" if state == "compiled" else "pure"
    got = _modules_in_subprocess({accel.PURE_ENV: ""})
    assert got == [expected, *[str(expected == "pure")] * len(accel.MODULES)]


def test_pure_copies_agree_with_the_imported_modules():
    pure = accel.load_pure(["gateway.fix.codec", "gateway.fix.dictionary"])
    assert pure["codec"].__file__.endswith("codec.py")
    assert pure["codec"].parse(FRAME).pairs == parse(FRAME).pairs
    pure["dictionary"].Dictionary.load().validate(pure["codec"].parse(FRAME))
    Dictionary.load().validate(parse(FRAME))


@pytest.mark.skipif(accel.check()[0] != "compiled", reason="no mypyc build (python -m gateway.common.accel_build build)")
def test_compiled_modules_tests_pass_in_the_other_implementation():
    """The main run imports one implementation; run the compiled modules' tests once more with
    the other."""
    other = "" if accel.mode()[0] == "pure" else "1"
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), accel.PURE_ENV: other}
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider",
                           *BOTH_WAYS_TESTS], env=env, cwd=REPO_ROOT, capture_output=True, text=True,
                          timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert " passed" in proc.stdout
