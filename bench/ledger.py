"""Benchmark: ledger appends per second, and verification speed against raw SHA-256.

    python bench/ledger.py [--events N] [--runs R] [--batch B]

Generates N audit events (default 1,000,000) with the shared workload generator
(../shared/bench/gen_audit.py, deterministic; cached in bench/.data/), reads them into
records in memory, then R times (median reported), each in a fresh ledger directory
under bench/.data/:

* append: `LedgerWriter.append_records` in batches of B records (default 1024, the
  sink's batch), fsync policy ``checkpoint`` (a checkpoint at least every second, each
  one fsyncing the data it covers before it is signed), default 64 MiB segments; the
  time includes the final checkpoint and close. Reading and parsing the input is not
  timed: the records are built before the clock starts, as a source would hand them over;
* verify: `logwarden.ledger.verify.verify_ledger` on the finished ledger (the whole
  offline check: checkpoint signatures, frames, checksums, tree, roots, sequences), as
  `logwarden verify` runs it (segments scanned by one process per core), and again in
  one process (jobs=1);
* raw SHA-256: hashlib.sha256 over the same segment files' bytes, read the same way
  (whole files from the page cache), in the same run; also hashing alone (files already
  in memory), the stricter floor.

It prints appends/s and verification MB/s as a fraction of both raw figures. Targets of
issue 4: >= 200,000 appends/s; verification >= 40% of raw SHA-256 speed.
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import statistics
import sys
import time
from pathlib import Path

from logwarden.ledger import note
from logwarden.ledger.layout import SEGMENTS
from logwarden.ledger.verify import verify_ledger
from logwarden.ledger.writer import LedgerWriter, WriterOptions
from logwarden.records import Record
from workload import CACHE, workload

ROOT = Path(__file__).resolve().parent.parent


def records(path: Path) -> list[Record]:
    out = []
    received = time.time_ns()
    with open(path, "rb") as fh:
        for seq, line in enumerate(fh, 1):
            out.append(Record("k8s_audit", str(path), seq, seq, received, 0, line.rstrip(), None))
    return out


def append_run(recs: list[Record], ledger: Path, signer: note.Signer, batch: int) -> float:
    shutil.rmtree(ledger, ignore_errors=True)
    options = WriterOptions(fsync="checkpoint", checkpoint_interval_secs=1.0)
    start = time.perf_counter()
    writer = LedgerWriter(ledger, signer, options=options)
    append = writer.append_records
    for i in range(0, len(recs), batch):
        append(recs[i : i + batch])
    writer.close()
    return time.perf_counter() - start


def raw_sha256(ledger: Path) -> tuple[float, float, int]:
    """Seconds to read+hash and to hash only the segment files, and their bytes."""
    files = sorted((ledger / SEGMENTS).iterdir())
    start = time.perf_counter()
    total = 0
    for f in files:
        data = f.read_bytes()
        total += len(data)
        hashlib.sha256(data).digest()
    read_hash = time.perf_counter() - start
    blobs = [f.read_bytes() for f in files]
    start = time.perf_counter()
    for data in blobs:
        hashlib.sha256(data).digest()
    hash_only = time.perf_counter() - start
    return read_hash, hash_only, total


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--batch", type=int, default=1024)
    args = ap.parse_args()

    path = workload(args.events)
    recs = records(path)
    signer = note.generate("bench.logwarden.invalid/ledger")
    ledger = CACHE / "ledger-bench"
    appends, verifies, singles, raws, hashes = [], [], [], [], []
    total = 0
    for run in range(args.runs):
        appends.append(append_run(recs, ledger, signer, args.batch))
        report = verify_ledger(ledger, keys=[signer.verifier()])
        if not report.ok or report.entries != len(recs):
            sys.exit(f"verification failed: {[str(p) for p in report.problems[:5]]}")
        verifies.append(report.seconds)
        singles.append(verify_ledger(ledger, keys=[signer.verifier()], jobs=1).seconds)
        read_hash, hash_only, total = raw_sha256(ledger)
        raws.append(read_hash)
        hashes.append(hash_only)
        print(
            f"run {run + 1}: append {appends[-1]:.2f} s, verify {verifies[-1]:.2f} s "
            f"(1 process: {singles[-1]:.2f} s), "
            f"raw read+sha256 {read_hash:.2f} s, sha256 only {hash_only:.2f} s, "
            f"{report.checkpoints} checkpoints",
            flush=True,
        )
    shutil.rmtree(ledger, ignore_errors=True)
    _summary(len(recs), total, appends, verifies, singles, raws, hashes)


def _summary(
    n: int,
    total: int,
    appends: list[float],
    verifies: list[float],
    singles: list[float],
    raws: list[float],
    hashes: list[float],
) -> None:
    mb = total / 1e6
    append_rate = n / statistics.median(appends)
    verify_mbs = mb / statistics.median(verifies)
    raw_mbs = mb / statistics.median(raws)
    hash_mbs = mb / statistics.median(hashes)
    print()
    print(f"events                  {n:,} ({mb:,.0f} MB of segments)")
    print(f"appends/s (median)      {append_rate:,.0f}   target >= 200,000")
    entries = n / statistics.median(verifies)
    print(f"verify MB/s (median)    {verify_mbs:,.0f}   ({entries:,.0f} entries/s)")
    print(f"raw read+SHA-256 MB/s   {raw_mbs:,.0f}   verify = {verify_mbs / raw_mbs:.0%} of it")
    print(
        f"raw SHA-256 only MB/s   {hash_mbs:,.0f}   verify = {verify_mbs / hash_mbs:.0%} of it"
        "   target >= 40%"
    )
    single_mbs = mb / statistics.median(singles)
    print(
        f"verify, 1 process MB/s  {single_mbs:,.0f}   = {single_mbs / hash_mbs:.0%} of SHA-256 "
        f"only, {single_mbs / raw_mbs:.0%} of read+SHA-256"
    )


if __name__ == "__main__":
    main()
