"""The Kubernetes Event format: core/v1, events.k8s.io/v1 and v1beta1 Events in, one
events.k8s.io/v1 view out. The samples in fixtures/k8s_events are real Events; where
SOURCES.md describes a real sample that could not be copied (unknown license), the test
builds an Event of exactly that shape and says so."""

from __future__ import annotations

import contextlib
import json
from datetime import UTC, datetime
from typing import Any

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from conftest import FIXTURES
from logwarden.normalize import k8s_event
from logwarden.normalize.base import MalformedInput
from logwarden.normalize.k8s_event import (
    FORMAT,
    K8sEvent,
    alert_ids,
    alert_labels,
    decode,
    decode_one,
    dedupe_key,
    document,
    event_time_ns,
)

EVENTS = FIXTURES / "k8s_events"
V1_KIND = EVENTS / "k8s-openapi-test-eventsv1-event-kind-2023.json"
CORE_GKE = EVENTS / "knative-docs-corev1-events-gke-2018.jsonl"


def utc_ns(*parts: int, frac_ns: int = 0) -> int:
    return int(datetime(*parts, tzinfo=UTC).timestamp()) * 1_000_000_000 + frac_ns


def core_lines() -> list[bytes]:
    return [line for line in CORE_GKE.read_bytes().splitlines() if line.strip()]


def one(data: bytes) -> K8sEvent:
    view = decode(data)
    assert isinstance(view, K8sEvent)
    return view


def edited(data: bytes, **changes: Any) -> bytes:
    doc = json.loads(data)
    for key, value in changes.items():
        if value is None:
            doc.pop(key, None)
        else:
            doc[key] = value
    return json.dumps(doc).encode()


# events.k8s.io/v1beta1 scheduler and kubelet events of the shape SOURCES.md describes for
# kaidotdev/events-logger's README (not copied: unknown license): no kind/apiVersion,
# eventTime as MicroTime, reportingController/action; kubelet's with deprecatedCount and
# deprecatedFirst/LastTimestamp. Values constructed here.
V1BETA1_SCHEDULER = {
    "metadata": {
        "name": "nginx-6db489d4b7-qxm5l.15b1c2d3e4f5a6b7",
        "namespace": "default",
        "uid": "5f3c8a7e-0b1d-4e2f-9a6b-7c8d9e0f1a2b",
        "resourceVersion": "1450",
        "creationTimestamp": "2019-10-05T12:00:01Z",
    },
    "eventTime": "2019-10-05T12:00:01.123456Z",
    "reportingController": "default-scheduler",
    "reportingInstance": "default-scheduler-minikube",
    "action": "Binding",
    "reason": "Scheduled",
    "regarding": {
        "kind": "Pod",
        "namespace": "default",
        "name": "nginx-6db489d4b7-qxm5l",
        "uid": "0c1d2e3f-4a5b-6c7d-8e9f-0a1b2c3d4e5f",
        "apiVersion": "v1",
        "resourceVersion": "1447",
    },
    "note": "Successfully assigned default/nginx-6db489d4b7-qxm5l to minikube",
    "type": "Normal",
    "deprecatedSource": {},
    "deprecatedFirstTimestamp": None,
    "deprecatedLastTimestamp": None,
}
V1BETA1_KUBELET = {
    "metadata": {
        "name": "nginx-6db489d4b7-qxm5l.15b1c2d4a0b1c2d3",
        "namespace": "default",
        "uid": "6a4d9b8f-1c2e-4f30-8b7c-8d9e0f1a2b3c",
        "resourceVersion": "1502",
        "creationTimestamp": "2019-10-05T12:00:03Z",
    },
    "eventTime": None,
    "reportingController": "",
    "reportingInstance": "",
    "reason": "BackOff",
    "regarding": {
        "kind": "Pod",
        "namespace": "default",
        "name": "nginx-6db489d4b7-qxm5l",
        "uid": "0c1d2e3f-4a5b-6c7d-8e9f-0a1b2c3d4e5f",
        "apiVersion": "v1",
        "fieldPath": "spec.containers{nginx}",
    },
    "note": "Back-off restarting failed container",
    "type": "Warning",
    "deprecatedSource": {"component": "kubelet", "host": "minikube"},
    "deprecatedFirstTimestamp": "2019-10-05T12:00:03Z",
    "deprecatedLastTimestamp": "2019-10-05T12:04:41Z",
    "deprecatedCount": 7,
}


def test_the_v1_sample_from_kind_normalizes_with_a_null_event_time() -> None:
    view = one(V1_KIND.read_bytes())
    assert view.eventTime is None
    assert view.regarding.kind == "Pod"
    assert view.regarding.name == "some-pod"
    assert view.reason == "Scheduled"
    assert view.note == "Successfully assigned test-530513/some-pod to test-pgd-control-plane"
    # a server-converted legacy event: the controller is only in deprecatedSource
    assert view.reportingController == "default-scheduler"
    assert view.count == 1
    assert view.series is None
    # eventTime null: the time falls through to deprecatedLastTimestamp
    assert event_time_ns(view) == utc_ns(2023, 2, 16, 18, 25, 7)


def test_core_v1_events_from_gke_take_the_v1_names() -> None:
    lines = core_lines()
    assert len(lines) == 2
    scheduled, mounted = (one(line) for line in lines)
    assert scheduled.regarding.kind == "Pod"
    assert scheduled.regarding.uid == "daf645df-e10d-11e8-bf3c-42010a8a017d"
    assert scheduled.note == json.loads(lines[0])["message"]
    # reportingComponent is "" in these events: source.component stands in
    assert scheduled.reportingController == "default-scheduler"
    assert scheduled.reportingInstance is None
    assert mounted.reportingController == "kubelet"
    assert mounted.reportingInstance == "gke-knative-eventing-e2e-default-pool-575bcad9-vz55"
    assert mounted.deprecatedFirstTimestamp == "2018-11-05T15:17:06Z"
    assert mounted.deprecatedLastTimestamp == "2018-11-05T15:17:06Z"
    assert mounted.deprecatedCount == 1
    assert mounted.count == 1
    assert event_time_ns(mounted) == utc_ns(2018, 11, 5, 15, 17, 6)


def test_self_link_of_old_clusters_is_dropped() -> None:
    line = core_lines()[0]
    assert b"selfLink" in line
    doc = document(line, one(line))
    assert "selfLink" not in doc["metadata"]
    assert "selfLink" not in json.dumps(doc)


def test_the_document_has_the_v1_shape_and_the_count() -> None:
    line = core_lines()[1]
    doc = document(line, one(line))
    assert doc == {
        "regarding": {
            "kind": "Pod",
            "namespace": "default",
            "name": "busybox",
            "uid": "daf645df-e10d-11e8-bf3c-42010a8a017d",
            "apiVersion": "v1",
            "resourceVersion": "681389",
        },
        "count": 1,
        "reason": "SuccessfulMountVolume",
        "note": 'MountVolume.SetUp succeeded for volume "default-token-pzr6x" ',
        "type": "Normal",
        "reportingController": "kubelet",
        "reportingInstance": "gke-knative-eventing-e2e-default-pool-575bcad9-vz55",
        "deprecatedSource": {
            "component": "kubelet",
            "host": "gke-knative-eventing-e2e-default-pool-575bcad9-vz55",
        },
        "deprecatedFirstTimestamp": "2018-11-05T15:17:06Z",
        "deprecatedLastTimestamp": "2018-11-05T15:17:06Z",
        "deprecatedCount": 1,
        "metadata": {
            "namespace": "default",
            "name": "busybox.15644359f59f72f2",
            "uid": "db14ff23-e10d-11e8-bf3c-42010a8a017d",
            "resourceVersion": "7841",
            "creationTimestamp": "2018-11-05T15:17:06Z",
        },
    }
    # plain JSON values only
    assert json.loads(json.dumps(doc)) == doc


def test_a_v1beta1_scheduler_event_keeps_its_micro_time_and_action() -> None:
    view = one(json.dumps(V1BETA1_SCHEDULER).encode())
    assert view.action == "Binding"
    assert view.reportingController == "default-scheduler"
    assert view.reportingInstance == "default-scheduler-minikube"
    assert event_time_ns(view) == utc_ns(2019, 10, 5, 12, 0, 1, frac_ns=123_456_000)


def test_v1beta1_deprecated_count_becomes_a_series() -> None:
    view = one(json.dumps(V1BETA1_KUBELET).encode())
    assert view.count == 7
    assert view.series is not None
    assert view.series.count == 7
    assert view.series.lastObservedTime == "2019-10-05T12:04:41Z"
    # empty reportingController: deprecatedSource names the reporter
    assert view.reportingController == "kubelet"
    assert view.reportingInstance == "minikube"
    assert view.regarding.fieldPath == "spec.containers{nginx}"
    assert event_time_ns(view) == utc_ns(2019, 10, 5, 12, 4, 41)
    doc = document(b"", view)
    assert doc["reason"] == "BackOff"
    assert doc["count"] == 7


def test_a_core_event_counted_more_than_once_is_a_series() -> None:
    line = edited(core_lines()[1], count=5, lastTimestamp="2018-11-05T15:20:00Z")
    view = one(line)
    assert view.count == 5
    assert view.series is not None
    assert (view.series.count, view.series.lastObservedTime) == (5, "2018-11-05T15:20:00Z")
    assert event_time_ns(view) == utc_ns(2018, 11, 5, 15, 20)


def test_a_v1_series_update_is_timed_by_its_last_observation_not_its_first() -> None:
    series = {"count": 12, "lastObservedTime": "2023-02-16T18:55:07.500000Z"}
    data = edited(V1_KIND.read_bytes(), eventTime="2023-02-16T18:25:07.000001Z", series=series)
    view = one(data)
    assert view.count == 12
    assert event_time_ns(view) == utc_ns(2023, 2, 16, 18, 55, 7, frac_ns=500_000_000)
    # without a series, eventTime comes first
    view = one(edited(data, series=None))
    assert event_time_ns(view) == utc_ns(2023, 2, 16, 18, 25, 7, frac_ns=1_000)


def test_time_falls_back_to_first_timestamp_then_creation() -> None:
    line = edited(core_lines()[0], lastTimestamp=None, firstTimestamp="2018-11-05T15:17:01Z")
    assert event_time_ns(one(line)) == utc_ns(2018, 11, 5, 15, 17, 1)
    line = edited(line, firstTimestamp=None)
    assert event_time_ns(one(line)) == utc_ns(2018, 11, 5, 15, 17, 5)
    doc = json.loads(line)
    del doc["metadata"]["creationTimestamp"]
    with pytest.raises(MalformedInput, match="no time"):
        event_time_ns(one(json.dumps(doc).encode()))
    with pytest.raises(MalformedInput, match="RFC 3339"):
        event_time_ns(one(edited(line, eventTime="yesterday")))


def test_exporter_labels_on_the_involved_object_are_dropped() -> None:
    # kubernetes-event-exporter adds involvedObject.labels (SOURCES.md); not API data
    doc = json.loads(core_lines()[0])
    doc["involvedObject"]["labels"] = {"app": "busybox"}
    view = one(json.dumps(doc).encode())
    assert "labels" not in document(b"", view)["regarding"]


def test_alert_ids_and_labels() -> None:
    view = one(V1_KIND.read_bytes())
    assert alert_ids(view) == ("f3ac47c9-cc86-4193-a2ed-2e4428b7ad77", None)
    assert alert_labels(view) == {
        "namespace": "test-530513",
        "resource": "pod",
        "object": "Pod/some-pod",
    }
    # a cluster-scoped object: the Event's own namespace
    doc = json.loads(V1_KIND.read_bytes())
    doc["regarding"] = {"kind": "Node", "name": "minikube"}
    labels = alert_labels(one(json.dumps(doc).encode()))
    assert labels == {"namespace": "test-530513", "resource": "node", "object": "Node/minikube"}


def test_dedupe_key_identifies_one_occurrence() -> None:
    first = one(json.dumps(V1BETA1_KUBELET).encode())
    again = dict(V1BETA1_KUBELET, metadata=dict(V1BETA1_KUBELET["metadata"], resourceVersion="9"))
    more = dict(V1BETA1_KUBELET, deprecatedCount=8)
    assert dedupe_key(first) == ("6a4d9b8f-1c2e-4f30-8b7c-8d9e0f1a2b3c", 7)
    assert dedupe_key(one(json.dumps(again).encode())) == dedupe_key(first)
    assert dedupe_key(one(json.dumps(more).encode())) != dedupe_key(first)
    nameless = dict(V1BETA1_KUBELET, metadata={"namespace": "default", "name": "x.1"})
    assert dedupe_key(one(json.dumps(nameless).encode())) == ("default/x.1", 7)


def test_an_event_list_decodes_item_by_item() -> None:
    items = [json.loads(line) for line in core_lines()] + [{"kind": "Pod"}]
    data = json.dumps({"kind": "EventList", "apiVersion": "v1", "items": items}).encode()
    out = decode(data)
    assert isinstance(out, list)
    assert [type(v) for _, v in out] == [K8sEvent, K8sEvent, MalformedInput]
    assert "items[2]" in str(out[2][1])
    assert decode_one(out[0][0]).reason == "Scheduled"
    with pytest.raises(MalformedInput, match="missing items"):
        decode(b'{"kind":"List"}')


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "invalid JSON"),
        (b"[1]", "not a Kubernetes Event"),
        (b"{", "invalid JSON"),
        (b'{"kind":"Pod","involvedObject":{}}', 'kind is "Pod"'),
        (b'{"apiVersion":"audit.k8s.io/v1","regarding":{}}', "apiVersion"),
        (b'{"reason":"x"}', "missing regarding"),
        (b'{"regarding":{"name":1}}', "not a Kubernetes Event"),
        (b'{"regarding":{},"count":"3"}', "not a Kubernetes Event"),
        (b'{"regarding":{},"note":"\xff"}', "UTF-8"),
    ],
)
def test_malformed_events_say_why(data: bytes, reason: str) -> None:
    with pytest.raises(MalformedInput, match=reason):
        decode(data)


def test_a_truncated_event_is_flagged() -> None:
    data = V1_KIND.read_bytes()
    with pytest.raises(MalformedInput) as info:
        decode(data[: len(data) // 2])
    assert info.value.truncated


def test_format_object() -> None:
    assert FORMAT.source == k8s_event.SOURCE == "k8s_event"
    view = FORMAT.decode(V1_KIND.read_bytes())
    assert FORMAT.time_ns(view) == event_time_ns(view)
    assert FORMAT.derived(b"", view) == []
    assert FORMAT.document(b"", view)["reason"] == "Scheduled"


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)
event_keys = st.sampled_from(
    [
        "kind",
        "apiVersion",
        "metadata",
        "regarding",
        "involvedObject",
        "series",
        "count",
        "eventTime",
        "lastTimestamp",
        "source",
        "deprecatedCount",
        "note",
        "message",
    ]
)


def exercise(data: bytes) -> None:
    try:
        out = decode(data)
    except MalformedInput:
        return
    views = [v for _, v in out] if isinstance(out, list) else [out]
    for view in views:
        if isinstance(view, MalformedInput):
            continue
        with contextlib.suppress(MalformedInput):
            FORMAT.time_ns(view)
        FORMAT.alert_ids(view)
        FORMAT.alert_labels(view)
        dedupe_key(view)
        msgspec.json.encode(FORMAT.document(data, view))


@given(st.binary(max_size=300))
def test_any_bytes_give_a_view_or_malformed_input(data: bytes) -> None:
    exercise(data)


@given(st.dictionaries(event_keys, json_values, max_size=8))
def test_any_event_shaped_json_gives_a_view_or_malformed_input(doc: dict[str, Any]) -> None:
    exercise(json.dumps(doc).encode())


@given(st.integers(min_value=0, max_value=2000))
def test_every_truncation_of_a_sample_is_malformed(cut: int) -> None:
    data = V1_KIND.read_bytes().strip()
    with pytest.raises(MalformedInput):
        decode(data[: min(cut, len(data) - 1)])
