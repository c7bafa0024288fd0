"""Every live source passes the same compliance suite (`compliance`): exactly once across
stops and crashes in `emit`, stop drains, bad input counted and kept, counters.

Each adapter drives its source over the real input its own tests use, with their helpers:
files appended with real lines (audit events, ingress-nginx and Hubble lines), container
logs laid out as the kubelet does, journal files written by systemd-journal-remote and read
by the real journalctl, the HTTPS fake kube-apiserver, moto's CloudWatch Logs server and the
fake Pub/Sub server.
"""

from __future__ import annotations

import json
import re
import sys
import time
from collections.abc import Callable, Hashable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import compliance
import pytest
import test_container_logs as containers
import test_journald_source as journal
import test_k8s_events as events
import test_log_file as logfile
from audit_tail_helpers import AUDIT_LINES
from audit_tail_helpers import make_source as make_audit_source
from compliance import CHECKS, BadUnit, Source
from fake_apiserver import FakeApiServer, running_apiserver
from fake_pubsub import running_pubsub, write_service_account
from tail_helpers import append

from logwarden.records import Record
from logwarden.rejects import Rejects

BATCH = 4


def spread(good: int, bad: int) -> list[bool]:
    """Where the bad units go among the good ones (True: bad): after the first good one,
    evenly."""
    out = [False] * good
    for k in range(bad):
        out.insert(min(len(out), 1 + (k + 1) * good // (bad + 1) + k), True)
    return out


class Base:
    """What every adapter has: the units added so far, the batch size, one stream."""

    name = ""
    batch_events = BATCH
    settle_secs = 0.2

    def __init__(self, tmp: Path) -> None:
        self.state = tmp / "state"
        self.good: list[Hashable] = []
        self.bad: list[BadUnit] = []
        self.n = 0  # units added so far (numbers them)

    def stream(self, ident: Hashable) -> Hashable:
        del ident
        return "all"


# --- files ----------------------------------------------------------------------------------


class FileAdapter(Base):
    """A log file appended with real lines of one format; a bad unit is a line that is not
    of it, reported as ``path:line``. A unit is its raw line and line number."""

    def __init__(
        self,
        tmp: Path,
        name: str,
        lines: list[bytes],
        make: Callable[[Path, Path, Rejects], Source],
        header: list[bytes] = (),  # type: ignore[assignment]
    ) -> None:
        super().__init__(tmp)
        self.name = name
        self.live = tmp / "input.log"
        self.lines = lines
        self._make = make
        self.next = 0  # the next of `lines` to write
        append(self.live, list(header))

    def make(self, rejects: Rejects) -> Source:
        return self._make(self.live, self.state, rejects)

    def add(self, good: int, bad: int = 0) -> None:
        batch: list[bytes] = []
        for is_bad in spread(good, bad):
            if is_bad:
                batch.append(b"not a line of %s, #%d" % (self.name.encode(), self.n))
            else:
                batch.append(self.lines[self.next % len(self.lines)])
                self.next += 1
            self.n += 1
        for line, lineno in append(self.live, batch):
            if line.startswith(b"not a line of "):
                self.bad.append(BadUnit(re.escape(f"{self.live}:{lineno}"), line))
            else:
                self.good.append((line, lineno))

    def identity(self, record: Record) -> Hashable:
        return (record.raw, record.line)


def audit_file(tmp: Path, stack: ExitStack, request: pytest.FixtureRequest) -> FileAdapter:
    def make(live: Path, state: Path, rejects: Rejects) -> Source:
        return make_audit_source(live, state, rejects, batch_events=BATCH)

    return FileAdapter(tmp, "k8s_audit_file", AUDIT_LINES, make)


def log_file(fmt: str) -> Callable[..., FileAdapter]:
    def adapter(tmp: Path, stack: ExitStack, request: pytest.FixtureRequest) -> FileAdapter:
        def make(live: Path, state: Path, rejects: Rejects) -> Source:
            return logfile.make_source(fmt, live, state, rejects, batch_events=BATCH)

        header = logfile.HEADER if fmt == "hubble_flow" else []
        return FileAdapter(tmp, f"log_file[{fmt}]", logfile.LINES[fmt], make, header)

    return adapter


# --- container logs -------------------------------------------------------------------------


class ContainerLogsAdapter(Base):
    """Two containers' logs under a kubelet pod log root, written alternately; a unit is a
    CRI line ``<pod> line <n>`` (ordered per container), a bad unit a line that is not CRI."""

    name = "container_logs"

    def __init__(self, tmp: Path) -> None:
        super().__init__(tmp)
        self.root = tmp / "pods"
        self.paths = {pod: containers.log_path(self.root, "default", pod, "main") for pod in "ab"}
        self.lines = dict.fromkeys(self.paths, 0)
        for path in self.paths.values():
            path.touch()

    def make(self, rejects: Rejects) -> Source:
        return containers.make(self.root, self.state, rejects=rejects, batch_events=BATCH)

    def add(self, good: int, bad: int = 0) -> None:
        data = {pod: b"" for pod in self.paths}
        for is_bad in spread(good, bad):
            pod = "ab"[self.n % 2]
            self.lines[pod] += 1
            if is_bad:
                line = b"garbage #%d" % self.n
                data[pod] += line + b"\n"
                where = f"{self.paths[pod]}:{self.lines[pod]}"
                self.bad.append(BadUnit(re.escape(where), line))
            else:
                text = f"{pod} line {self.n}"
                data[pod] += containers.cri(text)
                self.good.append(text)
            self.n += 1
        for pod, path in self.paths.items():
            containers.write(path, data[pod])

    def identity(self, record: Record) -> Hashable:
        return str(record.view.log)

    def stream(self, ident: Hashable) -> Hashable:
        return str(ident).split(" ", 1)[0]


def container_logs(
    tmp: Path, stack: ExitStack, request: pytest.FixtureRequest
) -> ContainerLogsAdapter:
    return ContainerLogsAdapter(tmp)


# --- journald -------------------------------------------------------------------------------

#: journalctl passing the real journalctl's output through, with the entries whose MESSAGE
#: starts with "BAD " made unusable (a __REALTIME_TIMESTAMP that is not a number): the real
#: journalctl prints only entries the format takes, and systemd-journal-remote drops fields
#: that are not journal fields
JOURNALCTL_WRAPPER = """#!{python} -IS
import signal, subprocess, sys
child = subprocess.Popen([{journalctl!r}, *sys.argv[1:]], stdout=subprocess.PIPE)

def end(*_):
    child.terminate()
    child.wait()
    sys.exit(0)

signal.signal(signal.SIGTERM, end)
out = sys.stdout.buffer
for line in child.stdout:
    if b'"MESSAGE":"BAD ' in line:
        line = line.replace(b'"__REALTIME_TIMESTAMP":"', b'"__REALTIME_TIMESTAMP":"x', 1)
    out.write(line)
    out.flush()
sys.exit(child.wait())
"""
CURSOR = r"s=[0-9a-f]+;i=[0-9a-f]+;b=[0-9a-f]+;m=[0-9a-f]+;t=[0-9a-f]+;x=[0-9a-f]+"


class JournaldAdapter(Base):
    """Journal files written by systemd-journal-remote, one per `add`; a unit is an sshd
    entry (its MESSAGE), a bad unit an entry journalctl prints with an unusable time."""

    name = "journald"

    def __init__(self, tmp: Path) -> None:
        super().__init__(tmp)
        self.journals = tmp / "journal"
        self.journals.mkdir()
        self.wrapper = tmp / "journalctl"
        self.wrapper.write_text(
            JOURNALCTL_WRAPPER.format(python=sys.executable, journalctl=journal.JOURNALCTL)
        )
        self.wrapper.chmod(0o755)
        self.files = 0

    def make(self, rejects: Rejects) -> Source:
        return journal.make_source(
            self.journals,
            self.state,
            batch_events=BATCH,
            rejects=rejects,
            journalctl=str(self.wrapper),
        )

    def add(self, good: int, bad: int = 0) -> None:
        data = b""
        for is_bad in spread(good, bad):
            entry = journal.export(self.n, 1)
            message = json.loads(_export_field(entry, "MESSAGE"))
            if is_bad:
                entry = entry.replace(b"MESSAGE=", b"MESSAGE=BAD ")
                marker = json.dumps({"MESSAGE": f"BAD {message}"}, separators=(",", ":"))[
                    1:-1
                ].encode()
                self.bad.append(BadUnit(f"journald {CURSOR}", marker))
            else:
                self.good.append(message)
            data += entry
            self.n += 1
        self.files += 1
        journal.write_journal(self.journals / f"part-{self.files}.journal", data)

    def identity(self, record: Record) -> Hashable:
        return str(json.loads(record.raw)["MESSAGE"])


def _export_field(entry: bytes, name: str) -> str:
    """A field of one export-format entry, as a JSON string."""
    for line in entry.splitlines():
        if line.startswith(name.encode() + b"="):
            return json.dumps(line.split(b"=", 1)[1].decode())
    raise KeyError(name)


def journald(tmp: Path, stack: ExitStack, request: pytest.FixtureRequest) -> JournaldAdapter:
    if not journal.JOURNAL_REMOTE.exists() or journal.JOURNALCTL is None:
        pytest.skip("needs Debian packages systemd-journal-remote and systemd (journalctl)")
    return JournaldAdapter(tmp)


# --- Kubernetes Events ------------------------------------------------------------------------


class K8sEventsAdapter(Base):
    """Events put to the fake HTTPS kube-apiserver (listed, then watched); a unit is an
    Event (its name: names sort in input order, as the list is ordered), a bad unit an
    object that is not an Event, reported as ``namespace/name``."""

    name = "k8s_events"

    def __init__(self, tmp: Path, api: FakeApiServer) -> None:
        super().__init__(tmp)
        self.tmp = tmp
        self.api = api

    def make(self, rejects: Rejects) -> Source:
        return events.source(self.tmp, self.api, rejects, batch_events=BATCH)

    def add(self, good: int, bad: int = 0) -> None:
        for is_bad in spread(good, bad):
            if is_bad:
                name = f"bad-{self.n:04d}"
                meta = {"name": name, "namespace": "shop"}
                self.api.put({"kind": "Pod", "apiVersion": "v1", "metadata": meta})
                self.bad.append(BadUnit(f"k8s_event shop/{name}", f'"{name}"'.encode()))
            else:
                name = f"ev-{self.n:04d}"
                note = f"Started container step-{self.n}"
                self.api.put(events.v1_event(name, "Started", note, second=self.n % 3600))
                self.good.append(name)
            self.n += 1

    def identity(self, record: Record) -> Hashable:
        return str(json.loads(record.raw)["metadata"]["name"])


def k8s_events(tmp: Path, stack: ExitStack, request: pytest.FixtureRequest) -> K8sEventsAdapter:
    return K8sEventsAdapter(tmp, stack.enter_context(running_apiserver(tmp)))


# --- EKS audit logs in CloudWatch ---------------------------------------------------------------


class EksAdapter(Base):
    """Audit events put to two log streams of an EKS log group in moto, alternately (moto
    returns streams one after the other: ordered per stream); a unit is a log message, a
    bad unit a message that is not an audit event, reported as ``stream/eventId``."""

    name = "eks_cloudwatch"
    settle_secs = 0.3

    def __init__(self, tmp: Path, cloud: Any, url: str, eks: Any) -> None:
        super().__init__(tmp)
        self.cloud = cloud
        self.url = url
        self.eks = eks
        self.clock = 0

    def make(self, rejects: Rejects) -> Source:
        return self.eks.make_source(  # type: ignore[no-any-return]
            self.cloud, self.state, self.url, rejects, batch_events=BATCH, page_events=BATCH + 1
        )

    def add(self, good: int, bad: int = 0) -> None:
        streams = (self.eks.AUDIT, self.eks.AUDIT_B)
        out: dict[str, list[str]] = {s: [] for s in streams}
        for is_bad in spread(good, bad):
            stream = streams[self.n % 2]
            if is_bad:
                message = f"I0926 08:36:44.021 not an audit event #{self.n}"
                self.bad.append(BadUnit(rf"eks {re.escape(stream)}/\S+", message.encode()))
            else:
                message = self.eks.MESSAGES[len(self.good)]
                self.good.append((stream, message))
            out[stream].append(message)
            self.n += 1
        # just past, and later than what was put before: each stream in input order
        self.clock = max(self.clock, time.time_ns() // 1_000_000 - 1000 - good - bad)
        for stream, messages in out.items():
            if messages:
                self.cloud.put_messages(stream, messages, at_ms=self.clock)
                self.clock += len(messages)

    def identity(self, record: Record) -> Hashable:
        env = json.loads(record.raw)
        return (env["logStream"], env["message"])

    def stream(self, ident: Hashable) -> Hashable:
        assert isinstance(ident, tuple)
        return str(ident[0])


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    server_module = pytest.importorskip("moto.server")
    server = server_module.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


def eks_cloudwatch(tmp: Path, stack: ExitStack, request: pytest.FixtureRequest) -> EksAdapter:
    pytest.importorskip("moto.server")
    import test_eks_cloudwatch as eks

    monkeypatch = request.getfixturevalue("monkeypatch")
    # dummy credentials where boto3's chain looks first; no profile, no instance role
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(name, raising=False)
    url = request.getfixturevalue("moto_url")
    return EksAdapter(tmp, eks.Cloud(url), url, eks)


# --- GKE audit logs from Pub/Sub ----------------------------------------------------------------


class GkePubSubAdapter(Base):
    """GKE audit LogEntries published to a subscription of the fake Pub/Sub server (ack
    deadline 1 s); a unit is a LogEntry (its insertId), a bad unit a message whose data is
    not a GKE audit LogEntry (not JSON, or a container's log entry), reported as
    ``gke <messageId>``. Pub/Sub keeps no order (a message not acknowledged comes again
    after its deadline, after newer ones): each unit is a stream of its own."""

    name = "gke_pubsub"
    settle_secs = 1.1  # past the ack deadline: a stored message that comes again is seen

    def __init__(self, tmp: Path, pubsub: Any, gke: Any) -> None:
        super().__init__(tmp)
        self.pubsub = pubsub
        self.gke = gke
        self.key = write_service_account(tmp / "sa.json")
        pubsub.create(gke.SUB, ack_deadline_secs=1)

    def make(self, rejects: Rejects) -> Source:
        return self.gke.make_source(  # type: ignore[no-any-return]
            self.pubsub, self.state, self.key, rejects, batch_events=BATCH, ack_deadline_secs=1
        )

    def add(self, good: int, bad: int = 0) -> None:
        for is_bad in spread(good, bad):
            if is_bad:
                if self.n % 2:
                    data = b"not a LogEntry #%d" % self.n
                else:
                    log = {"insertId": f"bad-{self.n}", "jsonPayload": {"msg": "hello"}}
                    data = json.dumps(log).encode()
                message_id = self.pubsub.publish(self.gke.SUB, data)
                self.bad.append(BadUnit(re.escape(f"gke {message_id}"), data))
            else:
                data = self.gke.entry(len(self.good))
                self.pubsub.publish(self.gke.SUB, data)
                self.good.append(json.loads(data)["insertId"])
            self.n += 1

    def identity(self, record: Record) -> Hashable:
        return str(record.view.insertId)

    def stream(self, ident: Hashable) -> Hashable:
        return ident


def gke_pubsub(tmp: Path, stack: ExitStack, request: pytest.FixtureRequest) -> GkePubSubAdapter:
    pytest.importorskip("google.auth")
    import test_gke_pubsub as gke

    return GkePubSubAdapter(tmp, stack.enter_context(running_pubsub()), gke)


# --- a reference source, and faults the suite must find ------------------------------------------


class ListSource:
    """A minimal correct live source over an in-memory list of units (its position saved
    after each durable batch, the ledger's lag skipped), or one with `fault`."""

    def __init__(self, units: list[bytes], state: Path, rejects: Rejects, fault: str) -> None:
        self.units, self.file, self.rejects, self.fault = units, state / "list.json", rejects, fault
        self.events = self.rejected = self.last_event_ns = 0

    def run(self, emit: Callable[[list[Record]], None], stop: Any, resume_seq: int) -> None:
        saved = json.loads(self.file.read_bytes()) if self.file.exists() else [0, 0]
        pos, seq = saved
        skip = 0 if self.fault == "ignores_the_ledger_lag" else max(0, resume_seq - seq)
        while not stop.is_set():
            batch: list[Record] = []
            while pos < len(self.units) and len(batch) < BATCH:
                raw, pos = self.units[pos], pos + 1
                if raw.startswith(b"bad"):
                    self.rejected += self.fault != "rejects_uncounted"
                    self.rejects.report(f"list:{pos}", "not a good unit", raw)
                elif skip:
                    skip, seq = skip - 1, seq + 1
                else:
                    seq += 1
                    batch.append(Record("list", "l", seq, pos, time.time_ns(), 0, raw, None))
            if not batch:
                stop.wait(0.005)
                continue
            if self.fault == "saves_before_emit":
                self._save(pos, seq)
            if self.fault == "counts_before_emit":
                self.events += len(batch)
            emit(batch)
            self.events += len(batch) * (self.fault != "counts_before_emit")
            self.last_event_ns = batch[-1].received_ns
            self._save(pos, seq)
        if self.fault == "slow_to_stop":
            time.sleep(STOP_SLOW_SECS)

    def _save(self, pos: int, seq: int) -> None:
        self.file.parent.mkdir(exist_ok=True)
        self.file.write_text(json.dumps([pos, seq]))


STOP_SLOW_SECS = 2.5


class ListAdapter(Base):
    name = "list"
    settle_secs = 0.02

    def __init__(self, tmp: Path, fault: str) -> None:
        super().__init__(tmp)
        self.units: list[bytes] = []
        self.fault = fault

    def make(self, rejects: Rejects) -> Source:
        return ListSource(self.units, self.state, rejects, self.fault)

    def add(self, good: int, bad: int = 0) -> None:
        for is_bad in spread(good, bad):
            raw = b"%s %d" % (b"bad" if is_bad else b"good", self.n)
            self.units.append(raw)
            if is_bad:
                self.bad.append(BadUnit(f"list:{len(self.units)}", raw))
            else:
                self.good.append(raw)
            self.n += 1

    def identity(self, record: Record) -> Hashable:
        return record.raw


@pytest.mark.parametrize("check", list(CHECKS))
def test_a_correct_reference_source_passes(tmp_path: Path, check: str) -> None:
    CHECKS[check](ListAdapter(tmp_path, ""))


@pytest.mark.parametrize(
    ("fault", "check", "found"),
    [
        ("saves_before_emit", "exactly_once_across_restarts", "lost"),
        ("ignores_the_ledger_lag", "exactly_once_across_restarts", "repeated"),
        ("slow_to_stop", "stop_drains", "return after"),
        ("rejects_uncounted", "bad_input_counted_and_kept", "rejected is 0"),
        ("counts_before_emit", "counters", "records were durable"),
    ],
)
def test_the_suite_finds_a_faulty_source(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fault: str, check: str, found: str
) -> None:
    monkeypatch.setattr(compliance, "RUN_TIMEOUT_SECS", 1.0)  # what is lost never comes
    with pytest.raises(AssertionError, match=found):
        CHECKS[check](ListAdapter(tmp_path, fault))


# --- the runs -----------------------------------------------------------------------------------

ADAPTERS: dict[str, Callable[[Path, ExitStack, pytest.FixtureRequest], Any]] = {
    "k8s_audit_file": audit_file,
    "log_file-ingress_nginx": log_file("ingress_nginx"),
    "log_file-hubble_flow": log_file("hubble_flow"),
    "container_logs": container_logs,
    "journald": journald,
    "k8s_events": k8s_events,
    "eks_cloudwatch": eks_cloudwatch,
    "gke_pubsub": gke_pubsub,
}


@pytest.mark.parametrize("adapter", sorted(ADAPTERS))
@pytest.mark.parametrize("check", list(CHECKS))
def test_source_compliance(
    tmp_path: Path, request: pytest.FixtureRequest, check: str, adapter: str
) -> None:
    with ExitStack() as stack:
        CHECKS[check](ADAPTERS[adapter](tmp_path, stack, request))
