"""Optional mypyc build of the hot protocol modules; the pure-Python modules stay the fallback.

    python -m gateway.fix.accel_build build    # needs mypy (pip install -e '.[accel]'), a C compiler
    python -m gateway.fix.accel_build status   # which implementation an import gets, and why
    python -m gateway.fix.accel_build clean    # remove the compiled files

The ``.py`` files stay the source. ``build`` (accel_build.py) compiles ``MODULES`` with mypyc, in place: Python's
import then finds ``codec.<abi>.so`` before ``codec.py`` beside it. ``build`` also writes
``accel.json``: the SHA-256 of each source as compiled, the size and mtime of each compiled file.

A stale or foreign compiled file never shadows newer source: ``install()`` (run by
``gateway/fix/__init__.py``, before any of these modules can load) checks every hash; on any
mismatch, a compiled file without a manifest, or ``FIXGW_PURE=1`` in the environment, it puts a
finder first on ``sys.meta_path`` that loads the ``.py`` files instead (with a warning unless
pure mode was asked for). All modules fall back together: compiled modules call each other
directly, so a fresh ``dictionary`` must not run beside a stale ``codec``.

Compiled code enforces the annotations at its boundaries: ``parse`` takes ``bytes`` (not a
bytearray), ``Message`` and ``Dictionary`` are native classes (no new attributes, no
interpreted subclasses, no ``Message.__new__`` without ``__init__``). The tests run both ways.
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

PACKAGE = "gateway.fix"
MODULES = ("codec", "dictionary")     # what pays (see benchmarks/bench_codec.py); one group
GROUP = "_accel"                      # mypyc's shared library: gateway/fix/_accel__mypyc.<abi>.so
MANIFEST = "accel.json"
PURE_ENV = "FIXGW_PURE"
HERE = Path(__file__).resolve().parent

_state: dict[str, str] = {"mode": "pure", "reason": "not checked yet"}


# --------------------------------------------------------------------------------------------
# import-time selection


class _PureFinder(importlib.abc.MetaPathFinder):
    """Loads the listed modules from their .py files, never from a compiled file beside them."""

    def __init__(self, directory: Path, names: Sequence[str]):
        self.directory = directory
        self.names = {f"{PACKAGE}.{name}": name for name in names}

    def find_spec(self, fullname: str, path: object = None, target: object = None,
                  ) -> importlib.machinery.ModuleSpec | None:
        name = self.names.get(fullname)
        if name is None:
            return None
        return importlib.util.spec_from_file_location(fullname, self.directory / f"{name}.py")


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _stamp(path: Path) -> str:
    """A compiled file's identity, cheap to check at every start: size and modification time
    (a copied-in or rebuilt file gets a new one); sources are hashed in full."""
    info = path.stat()
    return f"{info.st_size}:{info.st_mtime_ns}"


def _ext_suffix() -> str:
    return importlib.machinery.EXTENSION_SUFFIXES[0]


def compiled_files(directory: Path = HERE) -> list[Path]:
    """Compiled files of ``MODULES`` (and their shared library) for this interpreter."""
    suffix = _ext_suffix()
    names = [*MODULES, f"{GROUP}__mypyc"]
    return [directory / f"{name}{suffix}" for name in names if (directory / f"{name}{suffix}").exists()]


def check(directory: Path = HERE) -> tuple[str, str]:
    """('compiled' | 'pure' | 'stale', reason) for the modules in ``directory``."""
    files = compiled_files(directory)
    if not files:
        return "pure", "not built (python -m gateway.fix.accel_build build)"
    try:
        manifest = json.loads((directory / MANIFEST).read_text())
    except (OSError, ValueError):
        return "stale", f"{len(files)} compiled file(s) but no readable {MANIFEST}"
    if manifest.get("suffix") != _ext_suffix():
        return "stale", f"{MANIFEST} is for {manifest.get('suffix')!r}, not {_ext_suffix()!r}"
    expected = manifest.get("files", {})
    if sorted(expected) != sorted(f.name for f in files):
        return "stale", f"compiled files {sorted(f.name for f in files)} != {MANIFEST}'s"
    for f in files:
        if _stamp(f) != expected[f.name]:
            return "stale", f"{f.name} is not the file that was built"
    for name, digest in manifest.get("sources", {}).items():
        if _sha256(directory / f"{name}.py") != digest:
            return "stale", f"{name}.py changed since it was compiled (rebuild or clean)"
    if sorted(manifest.get("sources", {})) != sorted(MODULES):
        return "stale", f"{MANIFEST} lists other modules than {MODULES}"
    return "compiled", f"built {manifest.get('built', '?')} with mypy {manifest.get('mypy', '?')}"


def install(directory: Path = HERE) -> str:
    """Decide, once per process, whether ``MODULES`` import compiled or pure; returns the mode.
    Must run before any of them is imported (gateway/fix/__init__.py calls it)."""
    if any(f"{PACKAGE}.{name}" in sys.modules for name in MODULES) or any(
            isinstance(f, _PureFinder) for f in sys.meta_path):
        return _state["mode"]       # already decided (or too late to change)
    if os.environ.get(PURE_ENV, "") not in ("", "0"):
        mode, reason = "pure", f"{PURE_ENV} is set"
    else:
        mode, reason = check(directory)
    if mode == "stale":
        warnings.warn(f"gateway.fix: compiled modules not used: {reason}", RuntimeWarning,
                      stacklevel=2)
        mode = "pure"
    if mode == "pure" and compiled_files(directory):
        sys.meta_path.insert(0, _PureFinder(directory, MODULES))
    _state.update(mode=mode, reason=reason)
    return mode


def mode() -> tuple[str, str]:
    """('compiled' | 'pure', why) as decided by ``install`` for this process."""
    return _state["mode"], _state["reason"]


def load_pure(names: Sequence[str] = MODULES) -> dict[str, ModuleType]:
    """Fresh pure-Python copies of ``names`` (for A/B benchmarks in one process): executed from
    the .py files under their own names, then the previously imported modules are put back."""
    saved = {name: sys.modules.get(f"{PACKAGE}.{name}") for name in names}
    out: dict[str, ModuleType] = {}
    try:
        for name in names:        # dependency order: dictionary imports codec
            full = f"{PACKAGE}.{name}"
            spec = importlib.util.spec_from_file_location(full, HERE / f"{name}.py")
            assert spec is not None and spec.loader is not None
            fresh = importlib.util.module_from_spec(spec)
            sys.modules[full] = fresh
            spec.loader.exec_module(fresh)
            out[name] = fresh
    finally:
        for name, previous in saved.items():
            if previous is None:
                sys.modules.pop(f"{PACKAGE}.{name}", None)
            else:
                sys.modules[f"{PACKAGE}.{name}"] = previous
    return out
