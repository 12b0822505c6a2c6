"""Where the repository's shipped files are (configs, the FIX dictionary, benchmarks)."""
from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
FIX44_XML = REPO_ROOT / "fix_specs" / "FIX44.xml"
