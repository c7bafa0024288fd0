"""Benchmark: `logwarden detect` throughput against the msgspec decode floor.

    python bench/detect.py [--events N] [--runs R] [--keep]

Generates N audit events (default 1,000,000) with the shared workload generator
(../shared/bench/gen_audit.py, deterministic), then times, in the same run and each R
times (median reported):

* detect:  `logwarden detect --rules falco --match first --format jsonl FILE > /dev/null`,
           the whole command in a fresh single process (start-up included);
* floor, typed:   a fresh process that reads the file line by line and decodes each line
                  with msgspec into logwarden's own partial AuditEvent struct;
* floor, generic: the same with msgspec's untyped decoder (plain dicts and lists).

It prints events/s for each and detect's throughput as a fraction of each floor. The
targets of issue 2 are >= 150,000 events/s and >= 30% of the floor.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GEN = ROOT.parent / "shared" / "bench" / "gen_audit.py"
CACHE = ROOT / "bench" / ".data"

_FLOOR = """
import sys, msgspec
from logwarden.normalize.k8s_audit import AuditEvent
typed = sys.argv[2] == "typed"
decode = (msgspec.json.Decoder(AuditEvent) if typed else msgspec.json.Decoder()).decode
n = 0
with open(sys.argv[1], "rb") as fh:
    for line in fh:
        decode(line)
        n += 1
print(n)
"""


def workload(n: int) -> Path:
    CACHE.mkdir(exist_ok=True)
    path = CACHE / f"audit-{n}.jsonl"
    if not path.exists():
        if not GEN.exists():
            sys.exit(f"workload generator not found: {GEN}")
        tmp = path.with_suffix(".tmp")
        subprocess.run([sys.executable, str(GEN), str(n), str(tmp)], check=True)
        tmp.rename(path)
    return path


def timed(cmd: list[str], stdout: int | None = subprocess.DEVNULL) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=stdout, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument(
        "--keep", action="store_true", help="keep the generated workload in bench/.data"
    )
    args = ap.parse_args()

    path = workload(args.events)
    py = sys.executable
    detect = [
        py,
        "-m",
        "logwarden",
        "detect",
        "--rules",
        "falco",
        "--match",
        "first",
        "--format",
        "jsonl",
        str(path),
    ]
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as fh:
        fh.write(_FLOOR)
        floor_script = fh.name
    results: dict[str, list[float]] = {"detect": [], "floor_typed": [], "floor_generic": []}
    try:
        for _ in range(args.runs):  # interleaved, so machine noise hits all three alike
            results["detect"].append(timed(detect))
            results["floor_typed"].append(timed([py, floor_script, str(path), "typed"]))
            results["floor_generic"].append(timed([py, floor_script, str(path), "generic"]))
    finally:
        os.unlink(floor_script)
        if not args.keep:
            path.unlink()

    rate = {k: args.events / statistics.median(v) for k, v in results.items()}
    print(f"workload: {args.events:,} events from gen_audit.py, {args.runs} runs each, medians")
    for key, label in (
        ("detect", "logwarden detect (falco rules, first)"),
        ("floor_typed", "floor: read + msgspec typed decode"),
        ("floor_generic", "floor: read + msgspec generic decode"),
    ):
        runs = ", ".join(f"{t:.2f}" for t in results[key])
        print(f"  {label:<40} {rate[key]:>10,.0f} events/s   (runs: {runs} s)")
    print(f"  detect / typed floor:   {rate['detect'] / rate['floor_typed']:.0%}")
    print(f"  detect / generic floor: {rate['detect'] / rate['floor_generic']:.0%}")
    ok = rate["detect"] >= 150_000 and rate["detect"] / rate["floor_typed"] >= 0.30
    verdict = "met" if ok else "NOT met"
    print(f"  target (>= 150,000 events/s and >= 30% of the typed floor): {verdict}")


if __name__ == "__main__":
    main()
