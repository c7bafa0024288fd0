"""Falco's k8saudit and json plugin fields, extracted from real trace events.

The expected values follow the plugin's extract.go as summarised in fixtures/falco/FIELDS.md:
strings as they are, other JSON values as compact JSON text, missing paths as no value.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import msgspec
import pytest

from conftest import TRACES
from logwarden.detect.falco.fields import catalog
from logwarden.errors import RuleError
from logwarden.normalize import k8s_audit
from logwarden.records import Record


def record(trace: str | Path, line: int = 0) -> Record:
    path = TRACES / trace if isinstance(trace, str) else trace
    raw = path.read_bytes().splitlines()[line]
    view = k8s_audit.decode(raw)
    assert isinstance(view, k8s_audit.AuditEvent)
    return Record("k8s_audit", str(path), 1, 1, 0, k8s_audit.event_time_ns(view), raw, view)


def value(rec: Record, name: str, arg: str | None = None) -> Any:
    return catalog().field(name, arg).extract(rec)


@pytest.mark.parametrize(
    ("trace", "field", "arg", "expected"),
    [
        ("exec_pod.json", "ka.auditid", None, "ca1ed9f4-7bf4-4c85-81a8-1b11253d1ba6"),
        ("exec_pod.json", "ka.stage", None, "ResponseStarted"),
        ("exec_pod.json", "ka.verb", None, "create"),
        ("exec_pod.json", "ka.user.name", None, "minikube-user"),
        ("exec_pod.json", "ka.user.groups", None, ["system:masters", "system:authenticated"]),
        ("exec_pod.json", "ka.auth.decision", None, "allow"),
        ("exec_pod.json", "ka.auth.reason", None, ""),
        ("exec_pod.json", "ka.target.name", None, "nginx-deployment-7998647bdf-phvq7"),
        ("exec_pod.json", "ka.target.namespace", None, "default"),
        ("exec_pod.json", "ka.target.resource", None, "pods"),
        ("exec_pod.json", "ka.target.subresource", None, "exec"),
        ("exec_pod.json", "ka.target.pod.name", None, None),  # a subresource: no pod name
        ("exec_pod.json", "ka.response.code", None, "101"),  # a number, as text
        ("exec_pod.json", "ka.uri.param", "command", "bash"),
        ("exec_pod.json", "ka.uri.param", "container", "nginx1"),  # the first of two
        ("exec_pod.json", "ka.uri.param", "absent", None),
        ("exec_pod.json", "ka.impuser.name", None, None),
        ("exec_pod.json", "ka.sourceips", None, ["192.168.99.1"]),
        ("exec_pod.json", "ka.req.pod.containers.image", None, None),  # no request object
        ("create_nginx_pod_privileged.json", "ka.req.pod.containers.image", None, ["nginx"]),
        # [N] selects container N; the field stays a list field
        ("create_nginx_pod_privileged.json", "ka.req.pod.containers.image", "0", ["nginx"]),
        ("create_nginx_pod_privileged.json", "ka.req.pod.containers.image", "1", None),
        ("create_nginx_pod_privileged.json", "ka.req.pod.containers.privileged", None, ["true"]),
        ("create_nginx_pod_privileged.json", "ka.req.pod.initContainers.image", None, None),
        ("create_nginx_pod_privileged.json", "ka.req.container.privileged", None, "true"),
        ("create_nginx_pod_privileged.json", "ka.req.container.image", None, "nginx"),
        (
            "create_nginx_pod_privileged.json",
            "ka.target.pod.name",
            None,
            "nginx-deployment-5cdcc99dbf-rgw6z",
        ),
        (
            "create_nginx_pod_privileged.json",
            "ka.resp.name",
            None,
            "nginx-deployment-5cdcc99dbf-rgw6z",
        ),
        ("create_nginx_pod_unprivileged.json", "ka.req.pod.containers.privileged", None, None),
        ("create_nginx_pod_unprivileged.json", "ka.req.container.privileged", None, "false"),
        # the deprecated fields have no value when the request has no containers/volumes
        ("exec_pod.json", "ka.req.container.privileged", None, None),
        ("exec_pod.json", "ka.req.volume.hostpath", "/etc", None),
        ("create_nginx_pod_hostnetwork.json", "ka.req.pod.host_network", None, "true"),
        ("create_nginx_pod_hostnetwork.json", "ka.req.container.host_network", None, "true"),
        ("create_nginx_pod_sensitive_mount.json", "ka.req.pod.volumes.hostpath", None, ["/etc"]),
        (
            "create_nginx_pod_sensitive_mount.json",
            "ka.req.pod.volumes.volume_type",
            None,
            ["hostPath"],
        ),
        ("create_nginx_pod_sensitive_mount.json", "ka.req.volume.hostpath", "/etc", "true"),
        ("create_nginx_pod_sensitive_mount.json", "ka.req.volume.hostpath", "/e*", "true"),
        ("create_nginx_pod_sensitive_mount.json", "ka.req.volume.hostpath", "/proc", "false"),
        ("attach_cluster_admin_role.json", "ka.req.binding.role", None, "cluster-admin"),
        (
            "attach_cluster_admin_role.json",
            "ka.req.binding.subjects.user_names",
            None,
            ["minikube"],
        ),
        ("attach_cluster_admin_role.json", "ka.req.binding.subjects.group_names", None, None),
        (
            "attach_cluster_admin_role.json",
            "ka.req.binding.subjects",
            None,
            ['{"apiGroup":"rbac.authorization.k8s.io","kind":"User","name":"minikube"}'],
        ),
        ("create_cluster_role_wildcard_verbs.json", "ka.req.role.rules.verbs", None, ["*", "get"]),
        ("create_cluster_role_wildcard_verbs.json", "ka.req.role.rules.verbs", "1", ["get"]),
        ("create_cluster_role_wildcard_verbs.json", "ka.req.role.rules.verbs", "0", ["*"]),
        ("create_cluster_role_wildcard_verbs.json", "ka.req.role.rules.resources", None, ["pods"]),
        ("create_cluster_role_wildcard_verbs.json", "ka.req.role.rules.apiGroups", None, [""]),
        ("create_nginx_service_nodeport.json", "ka.req.service.type", None, "NodePort"),
        (
            "create_nginx_service_nodeport.json",
            "ka.req.service.ports",
            None,
            ['{"nodePort":30080,"port":80,"protocol":"TCP","targetPort":80}'],
        ),
        ("create_configmap.json", "ka.req.configmap.name", None, "my-config"),
        ("exec_pod.json", "jevt.value", "/stage", "ResponseStarted"),
        ("exec_pod.json", "jevt.value", "/responseStatus/code", "101"),
        ("exec_pod.json", "jevt.value", "/user/groups/1", "system:authenticated"),
        ("exec_pod.json", "jevt.value", "/annotations/authorization.k8s.io~1decision", "allow"),
        ("exec_pod.json", "jevt.value", "/metadata/creationTimestamp", "2018-10-26T13:38:34Z"),
        ("exec_pod.json", "jevt.value", "/a~1~0b", None),
        ("exec_pod.json", "json.value", "/verb", "create"),
        ("exec_pod.json", "jevt.rawtime", None, "1540561114902914000"),
        ("exec_pod.json", "jevt.value", "stage", "ResponseStarted"),  # '/' may be left out
        ("exec_pod.json", "evt.time.iso8601", None, "2018-10-26T13:38:34.902914000Z"),
        ("exec_pod.json", "evt.source", None, "k8s_audit"),
    ],
)
def test_field_values(trace: str, field: str, arg: str | None, expected: Any) -> None:
    assert value(record(trace), field, arg) == expected


def test_configmap_obj_is_the_data_as_json_text() -> None:
    rec = record("create_configmap_sensitive_values.json")
    obj = value(rec, "ka.req.configmap.obj")
    assert isinstance(obj, str)
    assert json.loads(obj)["access.properties"].startswith("aws_access_key_id = MY-ID")
    assert "aws_access_key_id" in obj


def test_image_repository_keeps_the_plugins_cut_at_the_first_colon() -> None:
    raw = json.loads((TRACES / "create_nginx_pod_privileged.json").read_bytes())
    raw["requestObject"]["spec"]["containers"] = [
        {"name": "a", "image": "docker.io/library/nginx:1.25"},
        {"name": "b", "image": "registry.local:5000/team/app@sha256:abc"},
        {"name": "c", "image": "quay.io/x/y@sha256:def"},
    ]
    data = json.dumps(raw).encode()
    view = k8s_audit.decode(data)
    rec = Record("k8s_audit", "x", 1, 1, 0, 0, data, view)
    assert value(rec, "ka.req.pod.containers.image.repository") == [
        "docker.io/library/nginx",
        "registry.local",  # as the plugin does: the port's colon cuts too
        "quay.io/x/y",
    ]


def test_lazy_parts_are_decoded_once_and_cached() -> None:
    rec = record("create_nginx_pod_privileged.json")
    assert rec.cache is None
    value(rec, "ka.req.pod.containers.image")
    assert rec.cache is not None and "req" in rec.cache
    cached = rec.cache["req"]
    value(rec, "ka.req.pod.host_network")
    assert rec.cache["req"] is cached


def test_jevt_obj_is_the_event_indented() -> None:
    rec = record("exec_pod.json")
    obj = value(rec, "jevt.obj")
    assert obj == msgspec.json.format(rec.raw, indent=2).decode()
    assert json.loads(obj)["auditID"] == "ca1ed9f4-7bf4-4c85-81a8-1b11253d1ba6"


def test_every_spelling_of_an_index_field_is_one_field() -> None:
    cat = catalog()
    assert (
        cat.field("ka.verb") is cat.field("jevt.value", "/verb") is cat.field("json.value", "/verb")
    )
    assert cat.field("ka.verb").indexable


@pytest.mark.parametrize(
    ("name", "arg", "message"),
    [
        ("ka.nope", None, "unknown field 'ka.nope'"),
        ("ka.verb", "x", "takes no argument"),
        ("ka.uri.param", None, "needs an argument"),
        ("ka.req.pod.containers.image", "x", "the index must be a number"),
    ],
)
def test_field_reference_errors(name: str, arg: str | None, message: str) -> None:
    with pytest.raises(RuleError, match=message):
        catalog().field(name, arg)


def _with_request(request_object: dict[str, Any]) -> Record:
    raw = json.loads((TRACES / "create_nginx_pod_privileged.json").read_bytes())
    raw["requestObject"] = request_object
    data = json.dumps(raw).encode()
    view = k8s_audit.decode(data)
    return Record("k8s_audit", "x", 1, 1, 0, 0, data, view)


def test_an_index_selects_the_container_before_values_are_taken() -> None:
    rec = _with_request(
        {"spec": {"containers": [{"image": "nginx"}, {"securityContext": {"privileged": True}}]}}
    )
    assert value(rec, "ka.req.pod.containers.privileged") == ["true"]
    assert value(rec, "ka.req.pod.containers.privileged", "0") is None
    assert value(rec, "ka.req.pod.containers.privileged", "1") == ["true"]


def test_json_null_is_a_value_not_a_missing_field() -> None:
    rec = _with_request({"spec": {"tls": None, "hostNetwork": None}})
    assert value(rec, "jevt.value", "/requestObject/spec/tls") == "null"
    assert value(rec, "ka.req.pod.host_network") == "null"
    assert value(rec, "jevt.value", "/requestObject/spec/absent") is None


def test_evt_time_is_local_time_and_iso8601_is_utc() -> None:
    rec = record("exec_pod.json")
    secs = rec.time_ns // 1_000_000_000
    local = datetime.fromtimestamp(secs).strftime("%H:%M:%S")
    assert value(rec, "evt.time") == f"{local}.902914000"
    assert value(rec, "evt.time.iso8601") == "2018-10-26T13:38:34.902914000Z"
