"""The chaos tests import their helpers as ``tests.chaos.*`` (the repository root is on sys.path)."""
from __future__ import annotations

import sys
from pathlib import Path

ROOT = str(Path(__file__).resolve().parents[2])
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)
