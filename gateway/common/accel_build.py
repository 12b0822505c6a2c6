"""Build, inspect or remove the mypyc-compiled modules (see accel.py).

    python -m gateway.common.accel_build build [PYTHON]   # PYTHON: an interpreter with mypy (default: this one)
    python -m gateway.common.accel_build status
    python -m gateway.common.accel_build clean
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from gateway.common.accel import (
    GROUP,
    MANIFEST,
    MODULES,
    PURE_ENV,
    ROOT,
    _ext_suffix,
    _key,
    _sha256,
    _stamp,
    check,
    compiled_files,
    source,
)

# --------------------------------------------------------------------------------------------
# build


_SETUP = """
import sys
from setuptools import setup
from mypyc.build import mypycify
paths, group, target, temp = sys.argv[1].split(","), sys.argv[2], sys.argv[3], sys.argv[4]
# only the compiled modules must type-check: what they import is read, never judged
options = ["--follow-imports=silent", "--ignore-missing-imports"]
setup(name="fixgw-accel", ext_modules=mypycify([*options, *paths], group_name=group, target_dir=target),
      script_args=["build_ext", "--inplace", "--build-temp", temp])
"""


def build(python: str = sys.executable, quiet: bool = True) -> float:
    """Compile ``MODULES`` in place with mypyc and write the manifest; returns seconds taken.
    Raises SystemExit with the compiler's output when the build fails (the .py files keep
    working either way)."""
    clean()
    sources = {name: _sha256(source(name)) for name in MODULES}
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="fixgw-accel-") as tmp:
        env = {**os.environ, "MYPY_CACHE_DIR": os.path.join(tmp, "mypy_cache"), PURE_ENV: "1"}
        paths = ",".join(_key(source(name), ROOT) for name in MODULES)
        proc = subprocess.run(
            [python, "-c", _SETUP, paths, GROUP, os.path.join(tmp, "c"), os.path.join(tmp, "obj")],
            cwd=ROOT, env=env, capture_output=quiet, text=True, timeout=900, check=False)
    if proc.returncode != 0:
        clean()
        out = (proc.stdout or "")[-4000:] + (proc.stderr or "")[-4000:] if quiet else ""
        raise SystemExit(f"mypyc build failed (the pure-Python modules stay in use):\n{out}")
    if {name: _sha256(source(name)) for name in MODULES} != sources:
        clean()
        raise SystemExit("sources changed during the build; run it again")
    manifest = {
        "suffix": _ext_suffix(),
        "mypy": _mypy_version(python),
        "built": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "sources": sources,
        "files": {_key(f, ROOT): _stamp(f) for f in compiled_files()},
    }
    (ROOT / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
    return time.monotonic() - started


def _mypy_version(python: str) -> str:
    proc = subprocess.run([python, "-c", "import mypy.version; print(mypy.version.__version__)"],
                          capture_output=True, text=True, timeout=60, check=False)
    return proc.stdout.strip() or "?"


def clean(root: Path = ROOT, modules: Sequence[str] = MODULES) -> list[Path]:
    """Remove the compiled files and the manifest; returns what was removed. The files the
    manifest lists go too: a module dropped from ``MODULES`` since the last build must not leave
    its compiled file beside its source (Python's import would still take it)."""
    removed = compiled_files(root, modules)
    manifest = root / MANIFEST
    if manifest.exists():
        try:
            listed = json.loads(manifest.read_text()).get("files", {})
        except (OSError, ValueError, AttributeError):
            listed = {}
        removed += [p for p in (root / key for key in listed) if p.exists() and p not in removed]
        removed.append(manifest)
    for f in removed:
        f.unlink()
    return removed


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    command = args[0] if args else "status"
    if command == "build":
        python = args[1] if len(args) > 1 else sys.executable
        seconds = build(python, quiet=True)
        print(f"compiled {len(MODULES)} modules ({', '.join(MODULES)}) in {seconds:.1f} s: {check()[1]}")
    elif command == "clean":
        print("removed:", ", ".join(f.name for f in clean()) or "nothing")
    elif command == "status":
        state, reason = check()
        env = " (but FIXGW_PURE is set: pure)" if os.environ.get(PURE_ENV, "") not in ("", "0") else ""
        print(f"{state}: {reason}{env}")
    else:
        print(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
