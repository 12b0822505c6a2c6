"""The layers contract (pyproject.toml [tool.importlinter]) holds: an upward import fails CI."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from gateway.common.paths import REPO_ROOT


def test_import_contracts_are_kept():
    lint = Path(sys.executable).parent / "lint-imports"
    proc = subprocess.run([str(lint), "--config", str(REPO_ROOT / "pyproject.toml")], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "3 kept, 0 broken" in proc.stdout
