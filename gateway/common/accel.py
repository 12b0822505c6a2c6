"""Optional mypyc build of the hot modules; the pure-Python modules stay the fallback.

    python -m gateway.common.accel_build build    # needs mypy (pip install -e '.[accel]'), a C compiler
    python -m gateway.common.accel_build status   # which implementation an import gets, and why
    python -m gateway.common.accel_build clean    # remove the compiled files

The ``.py`` files stay the source. ``build`` (accel_build.py) compiles ``MODULES`` with mypyc
as one group, in place: Python's import then finds ``codec.<abi>.so`` before ``codec.py``
beside it, and compiled modules call each other natively. ``build`` also writes
``gateway/accel.json``: the SHA-256 of each source as compiled, the size and mtime of each
compiled file.

A stale or foreign compiled file never shadows newer source: ``install()`` (run by
``gateway/__init__.py``, before any of these modules can load) checks every hash; on any
mismatch, a compiled file without a manifest, or ``FIXGW_PURE=1`` in the environment, it puts a
finder first on ``sys.meta_path`` that loads the ``.py`` files instead (with a warning unless
pure mode was asked for). All modules fall back together: compiled modules call each other
directly, so a fresh one must never run beside a stale one.

Compiled code enforces the annotations at its boundaries (``parse`` takes ``bytes``, not a
bytearray; a ``str`` parameter refuses None), and its classes are native: no new attributes,
no monkeypatching, no interpreted subclasses unless the class allows them
(``mypy_extensions.mypyc_attr(allow_interpreted_subclasses=True)``). The tests run both ways
(tests/foundation/test_accel.py).
"""
from __future__ import annotations

import hashlib
import importlib.abc
import importlib.machinery
import importlib.util
import json
import os
import sys
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

# What pays (measured: benchmarks/bench_codec.py, profile_gateway.py), by full module name.
MODULES = (
    "gateway.fix.codec",
    "gateway.fix.dictionary",
    "gateway.core.model",
    "gateway.core.orders",
    "gateway.core.hub",
    "gateway.core.market",
    "gateway.core.latency",
    "gateway.core.risk.engine",
    "gateway.core.risk.positions",
    "gateway.core.risk.killswitch",
    "gateway.core.router.policies",
    "gateway.core.router.decisions",
    "gateway.core.matching.events",
    "gateway.core.matching.engine",
    "gateway.core.matching.marketdata",
    "sim_exchange.fixtext",
    "sim_exchange.publish",          # round 4 (sim): the venue's order path, message in -> reports out,
    "sim_exchange.venuecore",        # without an interpreted frame (publish is venuecore's base class)
    "gateway.fix.session",
    "gateway.fix.store",
    "sim_exchange.stores",
    "gateway.apps.server.wire",
    "gateway.apps.server.oms",
    "gateway.apps.server.venues",
    "gateway.apps.server.dispatch",
    "gateway.apps.metrics",
    "gateway.core.journal",
    "gateway.common.clock",          # clock.now() is called ~6 times per order from compiled code
    "gateway.fix.drive",             # the native engine per chunk and per message (transport.py re-exports it)
    "gateway.core.book",             # round 5 (demo): every W/X of the gateway and the demo client, and the
    "gateway.core.mdfeed",           # router's depth reads (native attributes instead of interpreted ones)
    "gateway.core.strategies.touch",  # round 8 (demo): the client's entry, book move -> NewOrderSingle (the
                                         # tactics subclass tactic.RoundTripTactic: all compiled together;
                                         # base.py's events stay interpreted: the backtester fills their slots)
    "gateway.core.strategies.roundtrip",
    "gateway.core.strategies.tactic",
    "gateway.core.strategies.scalper",
    "gateway.core.strategies.momentum",
    "gateway.core.strategies.liquidity_fade",
    "gateway.core.strategies.spread_capture",
)
GROUP = "gateway._accel"              # mypyc's shared library: gateway/_accel__mypyc.<abi>.so
MANIFEST = "gateway/accel.json"
PURE_ENV = "FIXGW_PURE"
ROOT = Path(__file__).resolve().parents[2]    # the directory holding gateway/

_state: dict[str, str] = {"mode": "pure", "reason": "not checked yet"}


# --------------------------------------------------------------------------------------------
# import-time selection


class _PureFinder(importlib.abc.MetaPathFinder):
    """Loads the listed modules from their .py files, never from a compiled file beside them."""

    def __init__(self, root: Path, names: Sequence[str]):
        self.sources = {name: source(name, root) for name in names}

    def find_spec(self, fullname: str, path: object = None, target: object = None,
                  ) -> importlib.machinery.ModuleSpec | None:
        where = self.sources.get(fullname)
        if where is None:
            return None
        return importlib.util.spec_from_file_location(fullname, where)


def source(name: str, root: Path = ROOT) -> Path:
    """``gateway.fix.codec`` -> <root>/gateway/fix/codec.py"""
    return root.joinpath(*name.split(".")).with_suffix(".py")


def _compiled(name: str, root: Path) -> Path:
    return root.joinpath(*name.split(".")).with_name(name.rsplit(".", 1)[-1] + _ext_suffix())


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _stamp(path: Path) -> str:
    """A compiled file's identity, cheap to check at every start: size and modification time
    (a copied-in or rebuilt file gets a new one); sources are hashed in full."""
    info = path.stat()
    return f"{info.st_size}:{info.st_mtime_ns}"


def _ext_suffix() -> str:
    return importlib.machinery.EXTENSION_SUFFIXES[0]


def compiled_files(root: Path = ROOT, modules: Sequence[str] = MODULES) -> list[Path]:
    """Compiled files of ``modules`` (and the group's shared library) for this interpreter."""
    paths = [_compiled(name, root) for name in (*modules, f"{GROUP}__mypyc")]
    return [p for p in paths if p.exists()]


def _key(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix()


def check(root: Path = ROOT, modules: Sequence[str] = MODULES) -> tuple[str, str]:
    """('compiled' | 'pure' | 'stale', reason) for ``modules`` under ``root``."""
    files = compiled_files(root, modules)
    if not files:
        return "pure", "not built (python -m gateway.common.accel_build build)"
    try:
        manifest = json.loads((root / MANIFEST).read_text())
    except (OSError, ValueError):
        return "stale", f"{len(files)} compiled file(s) but no readable {MANIFEST}"
    if manifest.get("suffix") != _ext_suffix():
        return "stale", f"{MANIFEST} is for {manifest.get('suffix')!r}, not {_ext_suffix()!r}"
    expected = manifest.get("files", {})
    found = sorted(_key(f, root) for f in files)
    if sorted(expected) != found:
        return "stale", f"compiled files {found} != {MANIFEST}'s"
    for f in files:
        if _stamp(f) != expected[_key(f, root)]:
            return "stale", f"{_key(f, root)} is not the file that was built"
    if sorted(manifest.get("sources", {})) != sorted(modules):
        return "stale", f"{MANIFEST} lists other modules than these: {', '.join(modules)}"
    for name, digest in manifest.get("sources", {}).items():
        if _sha256(source(name, root)) != digest:
            return "stale", f"{_key(source(name, root), root)} changed since it was compiled (rebuild or clean)"
    return "compiled", f"built {manifest.get('built', '?')} with mypy {manifest.get('mypy', '?')}"


def install(root: Path = ROOT) -> str:
    """Decide, once per process, whether ``MODULES`` import compiled or pure; returns the mode.
    Must run before any of them is imported (gateway/__init__.py calls it)."""
    if any(name in sys.modules for name in MODULES) or any(
            isinstance(f, _PureFinder) for f in sys.meta_path):
        return _state["mode"]       # already decided (or too late to change)
    if os.environ.get(PURE_ENV, "") not in ("", "0"):
        mode, reason = "pure", f"{PURE_ENV} is set"
    else:
        mode, reason = check(root)
    if mode == "stale":
        warnings.warn(f"gateway: compiled modules not used, the .py files run instead ({reason}); "
                      "rebuild: python -m gateway.common.accel_build build", RuntimeWarning, stacklevel=2)
        mode = "pure"
    if mode == "pure" and compiled_files(root):
        sys.meta_path.insert(0, _PureFinder(root, MODULES))
    _state.update(mode=mode, reason=reason)
    return mode


def mode() -> tuple[str, str]:
    """('compiled' | 'pure', why) as decided by ``install`` for this process."""
    return _state["mode"], _state["reason"]


def load_pure(names: Sequence[str]) -> dict[str, ModuleType]:
    """Fresh pure-Python copies of ``names`` (full names, in dependency order; for A/B
    benchmarks in one process), keyed by last name part: executed from the .py files under
    their own names, then the previously imported modules are put back."""
    saved = {name: sys.modules.get(name) for name in names}
    out: dict[str, ModuleType] = {}
    try:
        for name in names:
            spec = importlib.util.spec_from_file_location(name, source(name))
            assert spec is not None and spec.loader is not None
            fresh = importlib.util.module_from_spec(spec)
            sys.modules[name] = fresh
            spec.loader.exec_module(fresh)
            out[name.rsplit(".", 1)[-1]] = fresh
    finally:
        for name, previous in saved.items():
            if previous is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = previous
    return out
