"""The alert stage alone (issue 7): occurrences in, tracked alerts, groups and notifications
out, on the alerts `logwarden detect` raises over the shared workload with every rule set.

For each run, in one process:

- floor: writing the same alerts as JSON lines to a synced file, the way `detect --format
  jsonl` and a Falco file output do (no tracking, no grouping);
- stage: `AlertManager.receive` for every occurrence and `tick` after each batch of 1024
  (the stage's batch), `Dispatcher.submit` of the notifications to a file receiver,
  and saving the state once a second of work, as `logwarden run` does with its default
  route (each fingerprint its own group, notified at once).

Prints alerts/s for both and their ratio, how many distinct alerts the occurrences
made, and the memory the tracked state holds (RSS growth over the run, per tracked alert).
Medians of --runs.

    python bench/alerts.py --events 100000 --runs 3
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import msgspec

from logwarden.alerts.setup import alert_stage
from logwarden.alerts.state import AlertStore
from logwarden.config import load_text
from logwarden.records import Alert
from workload import CACHE, workload


def occurrences(n: int) -> list[Alert]:
    path = CACHE / f"alerts-{n}.jsonl"
    if not path.exists():
        with open(path, "wb") as out:
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "logwarden",
                    "detect",
                    str(workload(n)),
                    "--format",
                    "jsonl",
                    "--rules",
                    "builtin",
                    "--rules",
                    "falco",
                    "--rules",
                    "sigma",
                ],
                stdout=out,
                stderr=subprocess.DEVNULL,
                check=True,
            )
    decode = msgspec.json.Decoder(Alert).decode
    return [decode(line) for line in path.read_bytes().splitlines()]


def floor(alerts: list[Alert], root: Path) -> float:
    encode = msgspec.json.Encoder().encode
    t0 = time.perf_counter()
    fd = os.open(root / "floor.jsonl", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    for i in range(0, len(alerts), 1024):
        os.write(fd, b"".join(encode(a) + b"\n" for a in alerts[i : i + 1024]))
        os.fdatasync(fd)
    os.close(fd)
    return time.perf_counter() - t0


def stage(alerts: list[Alert], root: Path) -> tuple[float, int, float]:
    config = load_text(f"data_dir: {root}\nreceivers: {{file: {{type: file, path: {root}/a}}}}\n")
    store = AlertStore(root / "alerts.db")
    manager, dispatcher = alert_stage(config)._build(store, lambda *_: None)
    dispatcher.start()
    before = _rss_kib()
    t0 = time.perf_counter()
    saved = t0
    for i in range(0, len(alerts), 1024):
        now = time.time_ns()
        for alert in alerts[i : i + 1024]:
            manager.receive(alert, now)
        notifications = manager.tick(now)
        if notifications:
            dispatcher.submit(notifications, now)
        if time.perf_counter() - saved >= 1.0:
            manager.save()
            saved = time.perf_counter()
    manager.save()
    seconds = time.perf_counter() - t0
    grown = _rss_kib() - before
    tracked = len(manager.alerts)
    dispatcher.close()
    store.close()
    return seconds, tracked, grown * 1024 / max(tracked, 1)


def _rss_kib() -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--events", type=int, default=100_000)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    alerts = occurrences(args.events)
    floors, stages, tracked, per_alert = [], [], 0, []
    for run in range(args.runs):
        root = Path(tempfile.mkdtemp(prefix="lw-alerts-bench-"))
        try:
            floors.append(floor(alerts, root))
            seconds, tracked, grown = stage(alerts, root)
            stages.append(seconds)
            per_alert.append(grown)
        finally:
            shutil.rmtree(root, ignore_errors=True)
        print(
            f"  run {run + 1}: floor {len(alerts) / floors[-1]:,.0f} alerts/s, "
            f"stage {len(alerts) / stages[-1]:,.0f} alerts/s"
        )
    f, s = statistics.median(floors), statistics.median(stages)
    print(
        f"alert stage (issue 7): {len(alerts):,} occurrences from {args.events:,} events "
        f"(every rule set), {tracked:,} distinct alerts"
    )
    print(
        f"  median: floor (synced JSON lines) {len(alerts) / f:,.0f} alerts/s, stage "
        f"{len(alerts) / s:,.0f} alerts/s (the stage takes {s / f:.1f}x the floor's time), "
        f"{statistics.median(per_alert):,.0f} bytes of RSS per tracked alert"
    )


if __name__ == "__main__":
    main()
