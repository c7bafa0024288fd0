"""Benchmark: each input format's parser on its real samples, next to the raw line-read floor.

    python bench/sources.py [--bytes N] [--runs R] [--only FORMAT] [--cpu C]

For each format, the samples in tests/fixtures are cut into units (one event each: the
sample lines, or what the module's splitter makes of a pretty-printed or batched sample,
written compactly on one line), and the units are written over and over into one file of
at most N bytes (default 1 GiB; suffixes K, M, G are powers of 1024), kept in
bench/.data/sources/ for the next run. A unit the format itself rejects is left out and
named. Then each run is a fresh process, pinned to one CPU, that times on the same file:

  * the floor: the file read line by line, as sources/files.py reads it (`open(path, "rb")`,
    `readlines()` in batches of 1 MiB), and nothing else;
  * the parser: the same reading, and for each line what a source does with it: `decode`,
    `time_ns` and `document` of the format's `FORMAT` (and `derived` for the cloud
    formats); for container logs, each line goes through a `Reassembler` first and each
    entry it completes through `envelope`, then `decode`, `time_ns` and `document`.

Figures are medians of R runs (default 3), from wall-clock time; MB is 10^6 bytes; records
are events out (a container log entry may span several lines), lines are lines in. Peak
RSS is the largest of the runs' processes. Each run's seconds are printed too, with the
parser's CPU seconds: well below the wall-clock time, the CPU was shared with others.

Targets of issue 8: CRI reassembly and ingress-nginx at least 200,000 lines/s on one core;
no parser below 50,000 records/s.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec

from logwarden.normalize import (
    cloud_aks,
    cloud_eks,
    cloud_gke,
    container_log,
    hubble,
    journald,
    k8s_audit,
    k8s_event,
    web_access,
)
from logwarden.normalize.base import Format, MalformedInput

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
CACHE = ROOT / "bench" / ".data" / "sources"

#: How sources/files.py reads a file: `readlines()` batches of this many bytes.
BATCH_BYTES = 1 << 20

#: The kubelet paths the container log records are said to come from (`envelope` puts the
#: pod, namespace and container of the path in every record, as in production).
CRI_PATH = (
    "/var/log/pods/kube-system_kube-scheduler-kind-control-plane_"
    "0b8d3f1c2a7e4d5f9e6a1b2c3d4e5f60/kube-scheduler/0.log"
)
DOCKER_PATH = (
    "/var/log/containers/session-db-fdd649d68-cq5sp_socks_session-db-"
    "4f1c8e2a9b7d6c5e3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e.log"
)

Splitter = Callable[[bytes], list[bytes | MalformedInput]]


def _lines(data: bytes) -> list[bytes | MalformedInput]:
    """A sample that is one unit a line."""
    return [line for line in data.split(b"\n") if line.strip()]


def _document(data: bytes) -> list[bytes | MalformedInput]:
    """A sample that is one (pretty-printed) document."""
    return [data]


@dataclass(frozen=True)
class Source:
    """One benchmarked format: its samples (fixture path and how it splits into units),
    how its lines are parsed and its target."""

    name: str
    fmt: Format
    samples: tuple[tuple[str, Splitter], ...]
    kind: str = "units"  # or "cri" / "docker": lines through a Reassembler
    derived: bool = False
    lines_target: int | None = None  # lines/s, besides RECORDS_TARGET


RECORDS_TARGET = 50_000

_HUBBLE = sorted((FIXTURES / "network" / "hubble").glob("*.json*"))

SOURCES: dict[str, Source] = {
    s.name: s
    for s in (
        Source(
            "k8s_audit",
            k8s_audit.FORMAT,
            (("audit/demo-full-v1beta1-2017.log", _lines), ("audit/demo.log", _lines)),
        ),
        Source(
            "k8s_event",
            k8s_event.FORMAT,
            (
                ("k8s_events/knative-docs-corev1-events-gke-2018.jsonl", _lines),
                ("k8s_events/k8s-openapi-test-eventsv1-event-kind-2023.json", _document),
            ),
        ),
        Source(
            "container_log_cri",
            container_log.FORMAT,
            (
                ("container_logs/kubelet-cri-design-doc-example.log", _lines),
                ("container_logs/kueue-issue-4140-kind-ci-cri.log", _lines),
                ("container_logs/vector-cri-partial-invalid-utf8.bin.log", _lines),
            ),
            kind="cri",
            lines_target=200_000,
        ),
        Source(
            "container_log_docker",
            container_log.FORMAT,
            tuple(
                (str(p.relative_to(FIXTURES)), _lines)
                for p in sorted((FIXTURES / "container_logs").glob("fluentbit-dockerjson-*.log"))
            ),
            kind="docker",
        ),
        Source(
            "journald",
            journald.FORMAT,
            tuple(
                (f"journald/{name}", journald.entries_of_json_file)
                for name in (
                    "beats-journalctl-sample-journal-event.json",
                    "beats-journalctl-corner-cases.EXCERPT.json",
                    "systemd-docs-JOURNAL_JSON-example.json",
                )
            ),
        ),
        Source(
            "aks_audit",
            cloud_aks.FORMAT,
            tuple(
                (f"cloud/aks/sysdiglabs-aks-audit-log-{name}", cloud_aks.records_of)
                for name in (
                    "event.json",
                    "sample_EventHubs_event.json",
                    "sample_KubeAuditLog_event.json",
                )
            ),
            derived=True,
        ),
        Source(
            "eks_audit",
            cloud_eks.FORMAT,
            (
                (
                    "cloud/eks/SYNTHETIC-cloudwatch-subscription-envelope.json",
                    cloud_eks.events_of_subscription,
                ),
                (
                    "cloud/eks/SYNTHETIC-filterlogevents-response.json",
                    lambda data: cloud_eks.events_of_filter_log_events(
                        data, "/aws/eks/example-cluster/cluster"
                    ),
                ),
            ),
            derived=True,
        ),
        Source(
            "gke_audit",
            cloud_gke.FORMAT,
            (
                ("cloud/gke/SYNTHETIC-gke-cloudaudit-entries.jsonl", cloud_gke.entries_of),
                ("cloud/gke/SYNTHETIC-gke-gcloud-logging-read.json", cloud_gke.entries_of),
            ),
            derived=True,
        ),
        Source(
            "ingress_nginx",
            web_access.INGRESS_NGINX,
            (("network/ingress_nginx/beats-nginx-ingress_controller-test.log", _lines),),
            lines_target=200_000,
        ),
        Source(
            "nginx_access",
            web_access.NGINX,
            (
                ("network/nginx/beats-nginx-access-access.log", _lines),
                ("network/nginx/beats-nginx-access-test.log", _lines),
            ),
        ),
        Source(
            "envoy_access",
            web_access.ENVOY,
            (("network/envoy/envoy-docs-default-format-example.log", _lines),),
        ),
        Source(
            "hubble_flow",
            hubble.FORMAT,
            tuple((str(p.relative_to(FIXTURES)), _lines) for p in _HUBBLE),
        ),
    )
}


# --- the input files ---------------------------------------------------------------------


def _compact(unit: bytes) -> bytes:
    """A unit on one line: as it is when it is one already, else re-encoded compactly
    (as `jq -c` would write it; member order is kept)."""
    if b"\n" not in unit and b"\r" not in unit:
        return unit
    return msgspec.json.encode(msgspec.json.decode(unit))


def _rejected(source: Source, unit: bytes) -> str | None:
    """Why the format rejects a unit, or None."""
    fmt = source.fmt
    try:
        view = fmt.decode(unit)
        items = view if view.__class__ is list else [(unit, view)]
        for raw, item in items:
            if isinstance(item, MalformedInput):
                return str(item)
            fmt.time_ns(item)
            fmt.document(raw, item)
            fmt.derived(raw, item)
    except MalformedInput as exc:
        return str(exc)
    return None


def _line_errors(source: Source, lines: list[bytes]) -> dict[int, str]:
    """The lines a Reassembler rejects (by index), for the container log samples."""
    reassembler = container_log.Reassembler("cri" if source.kind == "cri" else "docker")
    errors = {}
    for i, line in enumerate(lines):
        item = reassembler.feed(line)
        if isinstance(item, container_log.LineError):
            errors[i] = item.reason
    return errors


def sample_units(source: Source) -> list[bytes]:
    """The source's sample units, one line each, those its format accepts; the others are
    named on stderr."""
    units: list[bytes] = []
    where: list[str] = []
    for rel, split in source.samples:
        for i, unit in enumerate(split((FIXTURES / rel).read_bytes())):
            if isinstance(unit, MalformedInput):
                print(f"  {source.name}: {rel} unit {i + 1} left out: {unit}", file=sys.stderr)
                continue
            units.append(_compact(unit))
            where.append(f"{rel} unit {i + 1}")
    if source.kind == "units":
        reasons = {i: r for i, u in enumerate(units) if (r := _rejected(source, u)) is not None}
    else:
        reasons = _line_errors(source, units)
    for i, reason in reasons.items():
        print(f"  {source.name}: {where[i]} left out: {reason}", file=sys.stderr)
    return [u for i, u in enumerate(units) if i not in reasons]


def input_file(source: Source, size: int) -> Path:
    """The source's input file of at most `size` bytes (at least one unit), made once."""
    units = sample_units(source)
    if not units:
        sys.exit(f"{source.name}: no sample unit is accepted")
    block = b"".join(u + b"\n" for u in units)
    digest = hashlib.sha256(block).hexdigest()[:12]
    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / f"{source.name}-{size}-{digest}.log"
    if path.exists():
        return path
    for stale in CACHE.glob(f"{source.name}-{size}-*.log"):
        stale.unlink()  # made from other samples
    print(f"  writing {path.relative_to(ROOT)} ...", file=sys.stderr, flush=True)
    tmp = path.with_suffix(".tmp")
    written = 0
    with open(tmp, "wb") as out:
        while written + len(block) <= size:
            out.write(block)
            written += len(block)
        for unit in units:
            if written + len(unit) + 1 > size and written > 0:
                break
            out.write(unit + b"\n")
            written += len(unit) + 1
        out.flush()
        os.fsync(out.fileno())  # written back now, not during the first run
    tmp.rename(path)
    return path


# --- one run (a child process) -----------------------------------------------------------


def floor(path: Path) -> int:
    """Read the file line by line and nothing else; the number of lines."""
    lines = 0
    with open(path, "rb") as fh:
        readlines = fh.readlines
        while batch := readlines(BATCH_BYTES):
            for _line in batch:
                lines += 1
    return lines


def parse_units(source: Source, path: Path) -> tuple[int, int]:
    """Each line through the format, as a source hands it over; (records, rejects)."""
    fmt = source.fmt
    decode, time_ns, document = fmt.decode, fmt.time_ns, fmt.document
    derived = fmt.derived if source.derived else None
    records = rejects = 0
    with open(path, "rb") as fh:
        readlines = fh.readlines
        while batch := readlines(BATCH_BYTES):
            for line in batch:
                raw = line[:-1]
                try:
                    view = decode(raw)
                    if view.__class__ is list:  # an EventList: never in these samples
                        for item_raw, item in view:
                            if isinstance(item, MalformedInput):
                                rejects += 1
                                continue
                            time_ns(item)
                            document(item_raw, item)
                            records += 1
                        continue
                    time_ns(view)
                    document(raw, view)
                    if derived is not None:
                        derived(raw, view)
                except MalformedInput:
                    rejects += 1
                    continue
                records += 1
    return records, rejects


def parse_container(source: Source, path: Path) -> tuple[int, int]:
    """Each line through a Reassembler, each entry made a record and parsed; (records,
    rejects)."""
    cri = source.kind == "cri"
    name = CRI_PATH if cri else DOCKER_PATH
    podref = container_log.parse_path(name)
    fmt = source.fmt
    decode, time_ns, document = fmt.decode, fmt.time_ns, fmt.document
    envelope = container_log.envelope
    line_error = container_log.LineError
    feed = container_log.Reassembler("cri" if cri else "docker").feed
    records = rejects = 0
    with open(path, "rb") as fh:
        readlines = fh.readlines
        while batch := readlines(BATCH_BYTES):
            for line in batch:
                entry = feed(line[:-1])
                if entry is None:
                    continue
                if isinstance(entry, line_error):
                    rejects += 1
                    continue
                raw = envelope(entry, podref, name)
                try:
                    view = decode(raw)
                    time_ns(view)
                    document(raw, view)
                except MalformedInput:
                    rejects += 1
                    continue
                records += 1
    return records, rejects


def child(name: str, path: Path, cpu: int | None) -> None:
    """One run: the floor, then the parser, on `path`; JSON figures on stdout."""
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})
    source = SOURCES[name]
    start = time.perf_counter()
    lines = floor(path)
    floor_s = time.perf_counter() - start
    parse = parse_units if source.kind == "units" else parse_container
    start, cpu_start = time.perf_counter(), time.process_time()
    records, rejects = parse(source, path)
    parse_s = time.perf_counter() - start
    parse_cpu_s = time.process_time() - cpu_start
    result = {"lines": lines, "records": records, "rejects": rejects, "floor_s": floor_s}
    print(json.dumps({**result, "parse_s": parse_s, "parse_cpu_s": parse_cpu_s}))


# --- the benchmark -----------------------------------------------------------------------


def run_once(name: str, path: Path, cpu: int | None) -> dict[str, Any]:
    """One run in a fresh process: its figures and its peak RSS (KiB)."""
    cmd = [sys.executable, __file__, "--child", name, str(path)]
    if cpu is not None:
        cmd += ["--cpu", str(cpu)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE)
    assert proc.stdout is not None
    out = proc.stdout.read()
    proc.stdout.close()
    _pid, status, usage = os.wait4(proc.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"{name}: the run failed")
    result: dict[str, Any] = json.loads(out)
    result["rss_kib"] = usage.ru_maxrss
    return result


@dataclass
class Figures:
    name: str
    size: int
    lines: int
    records: int
    rejects: int
    floor_s: float
    parse_s: float
    rss_mb: float
    runs: list[tuple[float, float, float]]  # parser wall and CPU seconds, floor seconds

    def row(self) -> list[str]:
        source = SOURCES[self.name]
        rec_s = self.records / self.parse_s
        lines_s = self.lines / self.parse_s
        ok = rec_s >= RECORDS_TARGET
        target = f">= {RECORDS_TARGET:,} rec/s"
        if source.lines_target is not None:
            ok = ok and lines_s >= source.lines_target
            target = f">= {source.lines_target:,} lines/s, " + target
        return [
            self.name,
            f"{rec_s:,.0f}",
            f"{self.size / 1e6 / self.parse_s:,.1f}",
            f"{lines_s:,.0f}",
            f"{self.lines / self.floor_s:,.0f}",
            f"{self.size / 1e6 / self.floor_s:,.0f}",
            f"{self.floor_s / self.parse_s:.1%}",
            f"{self.rss_mb:.0f} MB",
            target,
            "PASS" if ok else "FAIL",
        ]


HEADER = [
    "format",
    "records/s",
    "MB/s",
    "lines/s",
    "floor lines/s",
    "floor MB/s",
    "parser/floor",
    "peak RSS",
    "target",
    "result",
]


def bench(name: str, size: int, runs: int, cpu: int | None) -> Figures:
    source = SOURCES[name]
    path = input_file(source, size)
    results = [run_once(name, path, cpu) for _ in range(runs)]
    first = results[0]
    for r in results[1:]:
        if (r["lines"], r["records"], r["rejects"]) != (
            first["lines"],
            first["records"],
            first["rejects"],
        ):
            sys.exit(f"{name}: runs disagree on their counts: {results}")
    return Figures(
        name,
        path.stat().st_size,
        first["lines"],
        first["records"],
        first["rejects"],
        statistics.median(r["floor_s"] for r in results),
        statistics.median(r["parse_s"] for r in results),
        max(r["rss_kib"] for r in results) / 1024,
        [(r["parse_s"], r["parse_cpu_s"], r["floor_s"]) for r in results],
    )


def table(rows: list[list[str]]) -> str:
    """A Markdown table, numbers right-aligned."""
    out = ["| " + " | ".join(HEADER) + " |"]
    out.append("|---|" + "---:|" * 7 + "---|---|")
    out.extend("| " + " | ".join(row) + " |" for row in rows)
    return "\n".join(out)


def byte_size(text: str) -> int:
    """A size in bytes: an integer, optionally with K, M or G (powers of 1024)."""
    scale = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    text = text.strip().upper().removesuffix("IB").removesuffix("B")
    try:
        if text and text[-1] in scale:
            return int(float(text[:-1]) * scale[text[-1]])
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a size: {text!r}") from None


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--bytes", type=byte_size, default=1 << 30, help="input size per format")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--only", choices=sorted(SOURCES), action="append", help="repeatable")
    ap.add_argument("--cpu", type=int, help="the CPU to pin each run to (default: the last)")
    ap.add_argument("--child", nargs=2, metavar=("FORMAT", "FILE"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child[0], Path(args.child[1]), args.cpu)
        return
    cpu = args.cpu
    if cpu is None and hasattr(os, "sched_getaffinity"):
        cpu = max(os.sched_getaffinity(0))
    names = args.only or list(SOURCES)
    print(
        f"{len(names)} formats, {args.bytes:,} bytes each, {args.runs} runs each (medians), "
        f"each run one process pinned to {'CPU ' + str(cpu) if cpu is not None else 'no CPU'}",
        flush=True,
    )
    figures = []
    for name in names:
        f = bench(name, args.bytes, args.runs, cpu)
        figures.append(f)
        runs = ", ".join(f"{p:.2f} ({c:.2f} CPU) / {fl:.2f}" for p, c, fl in f.runs)
        rejects = f", {f.rejects:,} rejected" if f.rejects else ""
        print(
            f"  {name}: {f.lines:,} lines, {f.records:,} records{rejects}; "
            f"runs, parser / floor s: {runs}",
            flush=True,
        )
    print()
    print(table([f.row() for f in figures]))
    failed = [f.name for f in figures if f.row()[-1] == "FAIL"]
    print()
    print("targets: " + ("all met" if not failed else "NOT met by " + ", ".join(failed)))


if __name__ == "__main__":
    main()
