"""The Kubernetes Events source against a real HTTPS server playing kube-apiserver.

Nothing in the official client is mocked: the source loads a kubeconfig written here and
lists and watches over TLS (`fake_apiserver`). The served Events are the real samples of
fixtures/k8s_events and Events built like the kubelet's (BackOff with a growing count,
FailedMount of a secret, a node's OOMKilling). Each record's raw must be exactly the
bytes the server sent for the object.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from fake_apiserver import FakeApiServer, running_apiserver, write_kubeconfig
from tail_helpers import Sink

from conftest import FIXTURES
from logwarden.errors import InputError
from logwarden.normalize.k8s_event import K8sEvent
from logwarden.records import Record
from logwarden.rejects import Rejects
from logwarden.sources._watch import Api, Lines, new_client
from logwarden.sources.k8s_events import CORE_V1, EVENTS_V1, K8sEventsSource

EVENTS = FIXTURES / "k8s_events"
V1_KIND = EVENTS / "k8s-openapi-test-eventsv1-event-kind-2023.json"
CORE_GKE = EVENTS / "knative-docs-corev1-events-gke-2018.jsonl"


def v1_event(
    name: str,
    reason: str,
    note: str,
    *,
    namespace: str = "shop",
    count: int = 1,
    regarding: tuple[str, str] = ("Pod", "web-7d9c-x2"),
    second: int = 0,
    uid: str | None = None,
) -> dict[str, Any]:
    """An events.k8s.io/v1 Event as the kubelet writes it (series once it repeats)."""
    when = f"2024-05-01T10:{second // 60:02d}:{second % 60:02d}"
    event: dict[str, Any] = {
        "kind": "Event",
        "apiVersion": "events.k8s.io/v1",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "uid": uid or str(uuid.uuid5(uuid.NAMESPACE_URL, f"{namespace}/{name}")),
            "creationTimestamp": f"{when}Z",
        },
        "eventTime": f"{when}.000000Z",
        "reportingController": "kubelet",
        "reportingInstance": "node-1",
        "action": "Failed" if reason != "Scheduled" else "Binding",
        "reason": reason,
        "regarding": {
            "kind": regarding[0],
            "name": regarding[1],
            "apiVersion": "v1",
            **({"namespace": namespace} if regarding[0] != "Node" else {}),
        },
        "note": note,
        "type": "Warning",
    }
    if count > 1:
        event["series"] = {"count": count, "lastObservedTime": f"{when}.500000Z"}
    return event


def backoff(count: int) -> dict[str, Any]:
    return v1_event(
        "web-7d9c-x2.17c1b0a1",
        "BackOff",
        "Back-off restarting failed container app in pod web-7d9c-x2_shop",
        count=count,
        second=count * 10,
    )


def failed_mount(second: int = 5) -> dict[str, Any]:
    return v1_event(
        "web-7d9c-x2.17c1b0f3",
        "FailedMount",
        'MountVolume.SetUp failed for volume "db-creds" : secret "db-creds" not found',
        second=second,
    )


def oom_killing() -> dict[str, Any]:
    return v1_event(
        "node-1.17c1b2c4",
        "OOMKilling",
        "Memory cgroup out of memory: Killed process 4242 (java)",
        namespace="default",
        regarding=("Node", "node-1"),
        second=30,
    )


def generated(n: int, start: int = 0) -> list[dict[str, Any]]:
    return [
        v1_event(f"job-{i:03d}.17c1c0{i:02x}", "Started", f"Started container step-{i}", second=i)
        for i in range(start, start + n)
    ]


def source(
    tmp: Path, api: FakeApiServer, rejects: Rejects | None = None, **kw: Any
) -> K8sEventsSource:
    kubeconfig = tmp / "kubeconfig"
    if not kubeconfig.exists():
        write_kubeconfig(kubeconfig, api)
    return K8sEventsSource(
        "events", tmp / "state", rejects or Rejects(), kubeconfig=str(kubeconfig), **kw
    )


@contextmanager
def running(
    src: K8sEventsSource, emit: object, resume_seq: int = 0, *, expect_error: bool = False
) -> Iterator[threading.Event]:
    """Run `src` in a thread; on leaving, stop it and wait for it (at most 2 s: stopping
    must be prompt), and re-raise what it raised unless `expect_error`."""
    stop = threading.Event()
    errors: list[BaseException] = []

    def target() -> None:
        try:
            src.run(emit, stop, resume_seq)  # type: ignore[arg-type]
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    try:
        yield stop
    finally:
        stop.set()
        started = time.monotonic()
        thread.join(10)
        assert not thread.is_alive(), "the source did not stop"
        assert time.monotonic() - started < 2, "the source took over 2 s to stop"
        if errors and not expect_error:
            raise errors[0]


def wait_until(check: Any, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def state_of(tmp: Path) -> dict[str, Any]:
    value = json.loads((tmp / "state" / "k8s_events.events.json").read_bytes())
    assert isinstance(value, dict)
    return value


def keys(records: list[Record]) -> list[tuple[str, int]]:
    out = []
    for r in records:
        assert isinstance(r.view, K8sEvent) and r.view.metadata is not None
        out.append((str(r.view.metadata.name), r.view.count))
    return out


# --- list, then watch ----------------------------------------------------------------------


def test_list_then_watch_records_are_the_served_bytes(tmp_path: Path) -> None:
    with running_apiserver(tmp_path) as api:
        served = [api.put(json.loads(V1_KIND.read_bytes()))]
        served += [api.put(e) for e in generated(4)]  # 5 objects: pages of 3 (continue)
        listed_rv = str(api.rv)
        sink = Sink()
        src = source(tmp_path, api, batch_events=2)
        with running(src, sink):
            sink.wait_for(5)
            wait_until(lambda: api.watches() == 1)
            served += [api.put(backoff(1)), api.put(failed_mount()), api.put(oom_killing())]
            sink.wait_for(8)
            wait_until(lambda: src.events == 8)
        records = sink.records
        # listed in the server's order (by namespace/name), then as watched
        by_name = sorted(
            served[:5],
            key=lambda raw: (
                json.loads(raw)["metadata"]["namespace"],
                json.loads(raw)["metadata"]["name"],
            ),
        )
        assert [r.raw for r in records] == by_name + served[5:]
        assert [r.seq for r in records] == list(range(1, 9))
        assert all(r.source == "k8s_event" and r.instance == "events" for r in records)
        kind = next(r for r in records if r.raw == served[0])
        assert kind.view.reason == "Scheduled"
        assert kind.time_ns == 1676571907 * 10**9  # eventTime null: deprecatedLastTimestamp
        oom = records[-1].view
        assert (oom.reason, oom.regarding.kind, oom.reportingController) == (
            "OOMKilling",
            "Node",
            "kubelet",
        )
        assert (src.events, src.rejected, src.repeats, src.lists, src.errors) == (8, 0, 0, 1, 0)
        assert src.last_event_ns == records[-1].received_ns
        # a paged list (continue), then one watch from the list's resourceVersion
        lists = [q for p, q in api.requests if "watch" not in q]
        assert [p for p, _ in api.requests] == ["/apis/events.k8s.io/v1/events"] * 3
        assert lists[0]["limit"] == ["500"] and "continue" in lists[1]
        watch = api.requests[-1][1]
        assert watch["resourceVersion"] == [listed_rv]
        assert watch["allowWatchBookmarks"] == ["true"]
        state = state_of(tmp_path)
        assert (state["seq"], state["resource_version"], state["api"]) == (
            8,
            str(api.rv),
            EVENTS_V1,
        )


def test_series_updates_are_deduplicated_deleted_ignored(tmp_path: Path) -> None:
    with running_apiserver(tmp_path) as api:
        sink = Sink()
        src = source(tmp_path, api, remember_events=2)
        with running(src, sink):
            wait_until(lambda: api.watches() == 1)
            api.put(backoff(1))
            relabeled = backoff(1)
            relabeled["metadata"]["labels"] = {"seen": "yes"}  # same occurrence: a repeat
            api.put(relabeled, "MODIFIED")
            for count in (2, 3, 4):
                api.put(backoff(count), "MODIFIED")  # the series goes on: new occurrences
            api.put(backoff(3), "MODIFIED")  # an older count again: a repeat
            api.put(failed_mount())
            api.put(failed_mount(), "DELETED")  # expired: not a record
            api.bookmark()
            api.put(oom_killing())
            wait_until(lambda: src.events == 6 and src.deleted == 1)
        assert keys(sink.records) == [
            ("web-7d9c-x2.17c1b0a1", 1),
            ("web-7d9c-x2.17c1b0a1", 2),
            ("web-7d9c-x2.17c1b0a1", 3),
            ("web-7d9c-x2.17c1b0a1", 4),
            ("web-7d9c-x2.17c1b0f3", 1),
            ("node-1.17c1b2c4", 1),
        ]
        assert [r.view.count for r in sink.records[:4]] == [1, 2, 3, 4]
        assert (src.repeats, src.deleted, src.rejected) == (2, 1, 0)
        state = state_of(tmp_path)
        assert state["resource_version"] == str(api.rv)
        assert len(state["emitted"]) == 2  # remember_events bounds what is kept


# --- restart -------------------------------------------------------------------------------


def test_restart_resumes_from_resource_version(tmp_path: Path) -> None:
    with running_apiserver(tmp_path) as api:
        for e in generated(4):
            api.put(e)
        first = Sink()
        with running(source(tmp_path, api, batch_events=3), first):
            first.wait_for(4)
            api.put(backoff(1))
            first.wait_for(5)
        # while down: the series goes on, new events, one repeat, one deletion
        api.put(backoff(2), "MODIFIED")
        api.put(failed_mount())
        api.put(failed_mount(), "MODIFIED")
        api.put(generated(1)[0], "DELETED")
        api.put(oom_killing())
        second = Sink()
        src = source(tmp_path, api, batch_events=3)
        requests = len(api.requests)
        with running(src, second, resume_seq=len(first.records)):
            second.wait_for(3)
            wait_until(lambda: src.deleted == 1 and src.repeats == 1)
        assert [r.seq for r in first.records + second.records] == list(range(1, 9))
        assert keys(second.records) == [
            ("web-7d9c-x2.17c1b0a1", 2),
            ("web-7d9c-x2.17c1b0f3", 1),
            ("node-1.17c1b2c4", 1),
        ]
        assert src.lists == 0  # no list: the watch went on from the saved resourceVersion
        assert api.requests[requests][1]["watch"] == ["true"]


class CrashingEmit:
    """Stores batches like `Sink` until its `at`-th batch, where it raises: `after` the
    batch was stored (the ledger has it, the state does not) or before. Any later call
    would be stored: the source must not call it again."""

    def __init__(self, at: int, after: bool) -> None:
        self.records: list[Record] = []
        self.at = at
        self.after = after
        self.batches = 0
        self.crashed = threading.Event()
        self.called_after_crash = False

    def __call__(self, batch: list[Record]) -> None:
        self.called_after_crash = self.crashed.is_set()
        self.batches += 1
        if self.batches == self.at:
            if self.after:
                self.records.extend(batch)
            self.crashed.set()
            raise OSError(28, "No space left on device")  # not taken for a failed read
        self.records.extend(batch)


@pytest.mark.parametrize("after", [True, False], ids=["after-store", "before-store"])
@pytest.mark.parametrize("at", [1, 2, 4, 6])
def test_crash_in_emit_neither_repeats_nor_loses(tmp_path: Path, at: int, after: bool) -> None:
    """Batches 1-3 come from the list (10 Events, 4 a batch), the others from the watch
    (12 more); the crash is at batch `at`, the next run takes `resume_seq` from the fake
    ledger."""
    with running_apiserver(tmp_path) as api:
        for e in generated(10):
            api.put(e)
        crashing = CrashingEmit(at, after)
        src = source(tmp_path, api, batch_events=4)
        with running(src, crashing, expect_error=True):
            wait_until(lambda: api.watches() == 1 or crashing.crashed.is_set())
            for e in generated(12, 10):
                api.put(e)
            wait_until(crashing.crashed.is_set)
            time.sleep(0.05)
        assert not crashing.called_after_crash
        sink = Sink()
        with running(source(tmp_path, api, batch_events=4), sink, len(crashing.records)):
            sink.wait_for(22 - len(crashing.records))
            time.sleep(0.1)  # nothing more comes
        records = crashing.records + sink.records
        assert [r.seq for r in records] == list(range(1, 23))
        assert [name for name, _ in keys(records)] == [
            str(e["metadata"]["name"]) for e in generated(22)
        ]


@pytest.mark.parametrize("compact", [False, True], ids=["mid-list", "watch-gone"])
def test_crash_after_store_then_a_changed_list(tmp_path: Path, compact: bool) -> None:
    """The ledger stored a batch the state does not know of, and the next run lists a
    cluster that changed meanwhile (Events created and expired; the list is in name order,
    not time order): what the ledger holds must be known by identity, not by position."""
    with running_apiserver(tmp_path) as api:
        for e in generated(10):
            api.put(e)
        if compact:  # the crash comes while watching; the next run's watch gets 410
            first = Sink()
            with running(source(tmp_path, api, batch_events=4), first):
                first.wait_for(10)
                wait_until(lambda: api.watches() == 1)
            stored = list(first.records)
            crashing = CrashingEmit(1, after=True)
            with running(source(tmp_path, api, batch_events=4), crashing, 10, expect_error=True):
                wait_until(lambda: api.watches() == 1)
                for e in generated(3, 10):
                    api.put(e)
                wait_until(crashing.crashed.is_set)
        else:  # the crash comes in the first batch of the first list
            stored = []
            crashing = CrashingEmit(1, after=True)
            with running(source(tmp_path, api, batch_events=4), crashing, expect_error=True):
                wait_until(crashing.crashed.is_set)
        stored += crashing.records
        early = v1_event("aaa-first.17c1d0aa", "Pulled", "Pulled image busybox", second=1)
        api.put(early)  # lists before everything stored
        api.put(generated(2, 1)[1], "DELETED")  # job-002 expired
        if compact:
            api.compact(skip=10)
        sink = Sink()
        src = source(tmp_path, api, batch_events=4)
        with running(src, sink, resume_seq=len(stored)):
            wait_until(lambda: src.lists == 1 and api.watches() >= 1)
            time.sleep(0.2)
        names = [name for name, _ in keys(stored + sink.records)]
        assert sorted(names) == sorted(
            [str(e["metadata"]["name"]) for e in generated(13 if compact else 10)]
            + ["aaa-first.17c1d0aa"]
        )
        assert [r.seq for r in stored + sink.records] == list(range(1, len(names) + 1))
        assert state_of(tmp_path)["pending"] == []


@pytest.mark.parametrize("gone_as_status", [False, True], ids=["error-event", "http-410"])
def test_gone_while_watching_relists_without_repeats(tmp_path: Path, gone_as_status: bool) -> None:
    with running_apiserver(tmp_path) as api:
        api.gone_as_status = gone_as_status
        for e in generated(4):
            api.put(e)
        sink = Sink()
        src = source(tmp_path, api)
        with running(src, sink):
            sink.wait_for(4)
            wait_until(lambda: api.watches() == 1)
            with api.cond:  # missed by the watch, which ends at once on a compacted store
                api.put(backoff(1))
                api.put(backoff(2), "MODIFIED")
                api.put(failed_mount())
                api.compact(skip=10)
                api.end_watches()
            wait_until(lambda: src.lists == 2 and api.watches() >= 3)
            api.put(oom_killing())
            sink.wait_for(7)
        assert keys(sink.records)[4:] == [
            ("web-7d9c-x2.17c1b0a1", 2),  # the list shows only the latest count
            ("web-7d9c-x2.17c1b0f3", 1),
            ("node-1.17c1b2c4", 1),
        ]
        assert [r.seq for r in sink.records] == list(range(1, 8))
        assert (src.repeats, src.lists, src.errors) == (4, 2, 0)  # the 4 listed again


def test_gone_after_restart_relists_without_repeats(tmp_path: Path) -> None:
    with running_apiserver(tmp_path) as api:
        for e in generated(5):
            api.put(e)
        first = Sink()
        with running(source(tmp_path, api), first):
            first.wait_for(5)
        api.put(failed_mount())
        api.put(generated(1)[0], "DELETED")
        api.compact(skip=10)
        second = Sink()
        src = source(tmp_path, api)
        with running(src, second, resume_seq=5):
            second.wait_for(1)
            wait_until(lambda: src.lists == 1)
            api.put(oom_killing())
            second.wait_for(2)
        assert keys(second.records) == [("web-7d9c-x2.17c1b0f3", 1), ("node-1.17c1b2c4", 1)]
        assert [r.seq for r in second.records] == [6, 7]
        assert src.repeats == 4
        # what expired is forgotten: only the objects of the last list are remembered
        assert {k for k, _ in state_of(tmp_path)["emitted"]} == {
            e["metadata"]["uid"] for e in [*generated(4, 1), failed_mount(), oom_killing()]
        }


def test_failed_requests_are_retried_and_counted(tmp_path: Path) -> None:
    with running_apiserver(tmp_path) as api:
        api.put(failed_mount())
        api.fail_next = 1  # the first list
        sink = Sink()
        src = source(tmp_path, api)
        with running(src, sink):
            sink.wait_for(1)
            wait_until(lambda: api.watches() == 1)
            with api.cond:
                api.fail_next = 1  # the next watch
                api.put(backoff(1))
                api.end_watches()
            sink.wait_for(2)
        assert keys(sink.records) == [("web-7d9c-x2.17c1b0f3", 1), ("web-7d9c-x2.17c1b0a1", 1)]
        assert (src.errors, src.lists, src.repeats) == (2, 1, 0)


# --- core/v1 -------------------------------------------------------------------------------


def test_core_v1_when_events_k8s_io_is_not_served(tmp_path: Path) -> None:
    with running_apiserver(tmp_path) as api:
        api.events_v1 = False
        served = [api.put(json.loads(line)) for line in CORE_GKE.read_bytes().splitlines()]
        sink = Sink()
        src = source(tmp_path, api)
        with running(src, sink):
            sink.wait_for(2)
            core = {
                "metadata": {"name": "db-0.17c1d001", "namespace": "shop", "uid": "c0de-1"},
                "involvedObject": {"kind": "Pod", "namespace": "shop", "name": "db-0"},
                "reason": "FailedMount",
                "message": 'MountVolume.SetUp failed for volume "tls" : secret "db-tls" not found',
                "source": {"component": "kubelet", "host": "node-2"},
                "firstTimestamp": "2024-05-01T10:00:00Z",
                "lastTimestamp": "2024-05-01T10:02:00Z",
                "count": 3,
                "type": "Warning",
            }
            served.append(api.put(core))
            core["count"], core["lastTimestamp"] = 4, "2024-05-01T10:04:00Z"
            served.append(api.put(core, "MODIFIED"))
            sink.wait_for(4)
        assert [r.raw for r in sink.records] == served
        assert sink.records[0].view.note.startswith("Successfully assigned busybox")
        assert [r.view.count for r in sink.records[2:]] == [3, 4]
        assert sink.records[3].view.reportingController == "kubelet"
        assert src.api == CORE_V1 and state_of(tmp_path)["api"] == CORE_V1
        paths = [p for p, _ in api.requests]
        assert paths[0] == "/apis/events.k8s.io/v1/events"  # 404
        assert set(paths[1:]) == {"/api/v1/events"}


def test_one_namespace(tmp_path: Path) -> None:
    with running_apiserver(tmp_path) as api:
        api.put(oom_killing())  # namespace default
        api.put(failed_mount())  # namespace shop
        sink = Sink()
        with running(source(tmp_path, api, namespace="shop"), sink):
            sink.wait_for(1)
            api.put(oom_killing(), "MODIFIED")
            api.put(backoff(1))
            sink.wait_for(2)
        assert [n for n, _ in keys(sink.records)] == [
            "web-7d9c-x2.17c1b0f3",
            "web-7d9c-x2.17c1b0a1",
        ]
        assert {p for p, _ in api.requests} == {"/apis/events.k8s.io/v1/namespaces/shop/events"}


# --- bad input, stopping, state --------------------------------------------------------------


def test_malformed_objects_are_rejected_counted_and_kept(tmp_path: Path) -> None:
    with running_apiserver(tmp_path) as api:
        pod = {"kind": "Pod", "apiVersion": "v1", "metadata": {"name": "web", "namespace": "shop"}}
        api.put(pod)  # in the list
        rejects = Rejects()
        sink = Sink()
        src = source(tmp_path, api, rejects)
        with running(src, sink):
            wait_until(lambda: api.watches() == 1)
            no_ref = failed_mount()
            del no_ref["regarding"]
            api.put(no_ref)
            bad_time = backoff(1)
            bad_time["series"] = {"count": 2, "lastObservedTime": "soon"}
            api.put(bad_time)
            rv = api.rv + 1
            api.put_raw("ADDED", b'{"metadata":{"resourceVersion":"%d"},"reason":7}' % rv)
            api.put_raw("ADDED", b"{broken")
            api.put(oom_killing())
            sink.wait_for(1)
        assert keys(sink.records) == [("node-1.17c1b2c4", 1)]
        where = [(r.where, r.reason.split(":")[0]) for r in rejects.first]
        assert where == [
            ("k8s_event shop/web", "not a Kubernetes Event"),
            ("k8s_event shop/web-7d9c-x2.17c1b0f3", "not a Kubernetes Event"),
            ("k8s_event shop/web-7d9c-x2.17c1b0a1", "timestamp 'soon' is not RFC 3339"),
            (f"k8s_event resourceVersion {rv}", "not a Kubernetes Event"),
            (f"k8s_event watch after resourceVersion {rv}", "not a watch event"),
        ]
        assert rejects.first[0].reason == 'not a Kubernetes Event: kind is "Pod", expected "Event"'
        assert rejects.first[3].raw == f'{{"metadata":{{"resourceVersion":"{rv}"}},"reason":7}}'
        assert (src.rejected, rejects.count, src.events) == (5, 5, 1)


def test_stop_while_watching_is_prompt(tmp_path: Path) -> None:
    with running_apiserver(tmp_path) as api:
        api.put(failed_mount())
        sink = Sink()
        src = source(tmp_path, api)
        with running(src, sink) as stop:
            sink.wait_for(1)
            wait_until(lambda: api.watches() == 1)
            time.sleep(0.3)  # blocked reading the idle watch
            started = time.monotonic()
            stop.set()
        assert time.monotonic() - started < 2
        assert state_of(tmp_path)["seq"] == 1


def test_stop_drains_the_batch_in_hand(tmp_path: Path) -> None:
    with running_apiserver(tmp_path) as api:
        gate = threading.Event()
        entered = threading.Event()
        sink = Sink()

        def slow_emit(batch: list[Record]) -> None:
            entered.set()
            assert gate.wait(5)
            sink(batch)

        src = source(tmp_path, api)
        with running(src, slow_emit) as stop:
            wait_until(lambda: api.watches() == 1)
            with api.cond:
                for e in generated(5):
                    api.put(e)
            assert entered.wait(5)
            stop.set()
            time.sleep(0.2)
            assert not sink.records  # still emitting: run has not returned
            gate.set()
        assert len(sink.records) >= 1
        state = state_of(tmp_path)
        assert state["seq"] == sink.records[-1].seq == src.events
        # the rest is read by the next run, once
        rest = Sink()
        with running(source(tmp_path, api), rest, resume_seq=len(sink.records)):
            rest.wait_for(5 - len(sink.records))
            time.sleep(0.1)
        assert [r.seq for r in sink.records + rest.records] == [1, 2, 3, 4, 5]


class PreShutdownResponse:
    """A watch response as urllib3 before 2.3 has it (kubernetes>=29 allows those): the
    real response without `shutdown`."""

    def __init__(self, resp: Any) -> None:
        self._resp = resp

    def stream(self, amt: int | None, decode_content: bool) -> Iterator[bytes]:
        return self._resp.stream(amt, decode_content=decode_content)  # type: ignore[no-any-return]

    @property
    def connection(self) -> Any:
        return self._resp.connection

    def close(self) -> None:
        self._resp.close()


def test_a_watch_is_ended_at_once_without_response_shutdown(tmp_path: Path) -> None:
    with running_apiserver(tmp_path) as api:
        write_kubeconfig(tmp_path / "kubeconfig", api)
        client = new_client(str(tmp_path / "kubeconfig"), None, False, "events")
        try:
            resp = Api(client, None).call(
                EVENTS_V1, watch=True, resource_version=str(api.rv), _preload_content=False
            )
            lines = Lines(PreShutdownResponse(resp))
            time.sleep(0.2)  # blocked reading the idle watch
            started = time.monotonic()
            lines.close()
            assert time.monotonic() - started < 1
        finally:
            client.close()


def test_state_ahead_of_the_ledger_or_missing_is_refused(tmp_path: Path) -> None:
    with running_apiserver(tmp_path) as api:
        api.put(failed_mount())
        sink = Sink()
        with running(source(tmp_path, api), sink):
            sink.wait_for(1)
        stop = threading.Event()
        with pytest.raises(InputError, match="ledger holds only 0"):
            source(tmp_path, api).run(sink, stop, 0)
        (tmp_path / "state" / "k8s_events.events.json").unlink()
        with pytest.raises(InputError, match=r"state file .* is missing"):
            source(tmp_path, api).run(sink, stop, 1)


def test_unusable_kubeconfig_is_an_input_error(tmp_path: Path) -> None:
    (tmp_path / "kubeconfig").write_text("apiVersion: v1\nkind: Config\nclusters: []\n")
    src = K8sEventsSource(
        "events", tmp_path / "state", Rejects(), kubeconfig=str(tmp_path / "kubeconfig")
    )
    with pytest.raises(InputError, match="kubeconfig"):
        src.run(Sink(), threading.Event(), 0)
