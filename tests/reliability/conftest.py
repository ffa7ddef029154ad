"""The reliability tests share the process tests' helpers (a load, log waits, metrics)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "process"))
