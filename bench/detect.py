"""Benchmark: `logwarden detect` throughput against the msgspec floor and the SQLite approach.

    python bench/detect.py [--events N] [--runs R] [--keep] [--only falco|all]

Generates N audit events (default 1,000,000) with the shared workload generator
(../shared/bench/gen_audit.py, deterministic) and times, in the same run, interleaved, each
R times (medians reported), every command in a fresh single process, start-up included:

falco (issue 2)
  * detect:  `logwarden detect --rules falco --match first --format jsonl FILE > /dev/null`;
  * floor, typed:   read the file line by line and decode each line with msgspec into
                    logwarden's partial AuditEvent struct;
  * floor, generic: the same with msgspec's untyped decoder.
  Target: >= 150,000 events/s and >= 30% of the typed floor.

all (issue 3)
  * detect with everything loaded: Falco's current rules, SigmaHQ's 16 Kubernetes audit
    rules and logwarden's K05 pack with its correlations (peak RSS measured too);
  * detect with the Sigma rules only (SigmaHQ's audit rules and the K05 pack);
  * the SQLite approach (bench/sigma_sqlite_peer.py, how Zircolite works) with the same
    Sigma rules on the same events.
  Targets: >= 150,000 events/s with everything loaded, >= 10x the SQLite approach, peak
  RSS under 300 MB.
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

from workload import workload

ROOT = Path(__file__).resolve().parent.parent
RULES = ROOT / "src" / "logwarden" / "rules"
SIGMAHQ_AUDIT = RULES / "sigma" / "rules" / "application" / "kubernetes" / "audit"
K05 = RULES / "builtin"

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


def timed(cmd: list[str]) -> tuple[float, int]:
    """Wall seconds and peak RSS (KiB) of one command, its output discarded; a command that
    fails ends the benchmark with its error output (a failed peer is no result)."""
    with tempfile.TemporaryFile() as errors:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=errors)
        _pid, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
        if os.waitstatus_to_exitcode(status) != 0:
            errors.seek(0)
            said = errors.read()[-2000:].decode(errors="replace")
            sys.exit(f"failed: {' '.join(cmd)}\n{said}")
    return seconds, usage.ru_maxrss


def detect(path: Path, *rules: Path | str) -> list[str]:
    cmd = [sys.executable, "-m", "logwarden", "detect", "--match", "first", "--format", "jsonl"]
    for rule in rules:
        cmd += ["--rules", str(rule)]
    return [*cmd, str(path)]


def run(commands: dict[str, list[str]], runs: int) -> dict[str, list[tuple[float, int]]]:
    results: dict[str, list[tuple[float, int]]] = {k: [] for k in commands}
    for _ in range(runs):  # interleaved, so machine noise hits every command alike
        for key, cmd in commands.items():
            results[key].append(timed(cmd))
    return results


def report(
    n: int, results: dict[str, list[tuple[float, int]]], labels: dict[str, str]
) -> dict[str, float]:
    rate = {k: n / statistics.median(t for t, _ in v) for k, v in results.items()}
    for key, label in labels.items():
        runs = ", ".join(f"{t:.2f}" for t, _ in results[key])
        rss = max(m for _, m in results[key]) / 1024
        print(
            f"  {label:<44} {rate[key]:>10,.0f} events/s  peak RSS {rss:5.0f} MB  (runs: {runs} s)"
        )
    return rate


def bench_falco(path: Path, n: int, runs: int) -> None:
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as fh:
        fh.write(_FLOOR)
        floor = fh.name
    try:
        results = run(
            {
                "detect": detect(path, "falco"),
                "floor_typed": [sys.executable, floor, str(path), "typed"],
                "floor_generic": [sys.executable, floor, str(path), "generic"],
            },
            runs,
        )
    finally:
        os.unlink(floor)
    print(f"falco (issue 2): {n:,} events from gen_audit.py, {runs} runs each, medians")
    rate = report(
        n,
        results,
        {
            "detect": "logwarden detect (falco rules, first)",
            "floor_typed": "floor: read + msgspec typed decode",
            "floor_generic": "floor: read + msgspec generic decode",
        },
    )
    print(f"  detect / typed floor:   {rate['detect'] / rate['floor_typed']:.0%}")
    print(f"  detect / generic floor: {rate['detect'] / rate['floor_generic']:.0%}")
    ok = rate["detect"] >= 150_000 and rate["detect"] / rate["floor_typed"] >= 0.30
    print(
        f"  target (>= 150,000 events/s, >= 30% of the typed floor): {'met' if ok else 'NOT met'}"
    )


def bench_all(path: Path, n: int, runs: int) -> None:
    peer = [sys.executable, str(ROOT / "bench" / "sigma_sqlite_peer.py"), str(path)]
    results = run(
        {
            "all": detect(path, "falco", SIGMAHQ_AUDIT, K05),
            "sigma": detect(path, SIGMAHQ_AUDIT, K05),
            "sqlite": [*peer, str(SIGMAHQ_AUDIT), str(K05)],
        },
        runs,
    )
    print(f"all (issue 3): {n:,} events from gen_audit.py, {runs} runs each, medians")
    rate = report(
        n,
        results,
        {
            "all": "detect: falco + sigmahq audit + k05 pack",
            "sigma": "detect: sigmahq audit + k05 pack",
            "sqlite": "sqlite approach: sigmahq audit + k05 pack",
        },
    )
    rss = max(m for _, m in results["all"]) / 1024
    ratio = rate["sigma"] / rate["sqlite"]
    print(f"  detect (sigma rules) / sqlite approach: {ratio:.1f}x")
    ok = rate["all"] >= 150_000 and ratio >= 10 and rss < 300
    print(
        "  target (>= 150,000 events/s all loaded, >= 10x sqlite, peak RSS < 300 MB): "
        + ("met" if ok else "NOT met")
    )


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--keep", action="store_true", help="keep the workload in bench/.data")
    ap.add_argument("--only", choices=("falco", "all"), help="run one of the two benchmarks")
    args = ap.parse_args()
    path = workload(args.events)
    try:
        if args.only in (None, "falco"):
            bench_falco(path, args.events, args.runs)
        if args.only in (None, "all"):
            bench_all(path, args.events, args.runs)
    finally:
        if not args.keep:
            path.unlink()


if __name__ == "__main__":
    main()
