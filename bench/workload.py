"""The shared audit workload of the benchmarks: ../shared/bench/gen_audit.py, cached."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GEN = ROOT.parent / "shared" / "bench" / "gen_audit.py"
CACHE = ROOT / "bench" / ".data"


def workload(n: int) -> Path:
    """N generated audit events as JSON lines (deterministic), made once into bench/.data."""
    CACHE.mkdir(exist_ok=True)
    path = CACHE / f"audit-{n}.jsonl"
    if not path.exists():
        if not GEN.exists():
            sys.exit(f"workload generator not found: {GEN}")
        tmp = path.with_suffix(".tmp")
        subprocess.run([sys.executable, str(GEN), str(n), str(tmp)], check=True)
        tmp.rename(path)
    return path
