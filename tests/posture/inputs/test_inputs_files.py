"""File inputs: YAML/JSON documents and their lines, nginx in ConfigMaps, errors counted."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from conftest import FIXTURES
from logwarden.posture import scan
from logwarden.posture.inputs import collect
from logwarden.posture.model import Inventory
from logwarden.rejects import Rejects

M = FIXTURES / "posture" / "manifests"


def test_documents_lists_and_helm_output_become_objects_with_lines() -> None:
    inv = collect([str(M / "workloads")], Inventory())
    refs = sorted(o.ref for o in inv.objects)
    assert refs == [
        "ConfigMap/web/web",
        "Deployment/jobs/with-sidecar",
        "Deployment/jobs/worker",
        "Pod/web/quiet",
    ]
    worker = next(o for o in inv.objects if o.name == "worker")
    path = ("spec", "template", "spec", "containers", 1, "volumeMounts", 0)
    assert worker.where(path).line == 24
    assert worker.where(("metadata", "name")).line == 6
    pod = next(o for o in inv.objects if o.name == "quiet")
    assert (pod.kind, pod.api_version) == ("Pod", "v1")  # List items keep kind/apiVersion


def test_nginx_in_a_configmap_points_into_the_manifest() -> None:
    inv = collect([str(FIXTURES / "hackme" / "k8s" / "hack.pod.yaml")], Inventory())
    (cfg,) = inv.nginx
    lines = {d.name: d.line for d in cfg.directives}
    assert lines == {
        "server": 23,
        "listen": 24,
        "access_log": 25,
        "error_log": 26,
        "location": 27,
        "root": 27,
    }
    assert cfg.object == "ConfigMap/hackme-nginx" and cfg.origin == "configmap"


def test_bad_inputs_are_reported_counted_and_do_not_stop_the_scan(tmp_path: Path) -> None:
    reported: list[tuple[str, str]] = []

    class Keep:
        count = 0

        def report(self, where: str, reason: str, raw: bytes | None = None) -> None:
            self.count += 1
            reported.append((where, reason))

    missing = str(tmp_path / "nope")
    inv = Inventory(rejects=Keep())  # type: ignore[arg-type]
    collect([str(M / "bad"), missing, str(M / "docker" / "daemon.json")], inv)
    assert inv.rejects.count == 3
    bad = str(M / "bad")
    assert (
        f"{bad}/broken.tf:3",
        "not valid Terraform (HCL2): Unexpected token Token('$END', '') at line 3, column 1.",
    ) in reported
    assert (f"{bad}/broken.yaml:6", "not valid YAML or JSON: did not find expected ',' or ']'") in (
        reported
    )
    assert (missing, "cannot read: no such file or directory") in reported
    assert inv.notes == [f"{bad}/template.yaml: skipped: an unrendered template (render it first)"]
    assert len(inv.daemon_json) == 1  # the good file after the bad ones was still read


def test_terraform_and_cloud_json_are_recognised() -> None:
    inv = collect([str(M / "cloud")], Inventory())
    kinds = sorted((d.provider, d.name) for d in inv.cloud)
    assert kinds == [
        ("aks", "aks-prod"),
        ("aks", "main"),
        ("aks-diagnostics", "apiserver-only"),
        ("aks-diagnostics", "azurerm_monitor_diagnostic_setting.aks_audit"),
        ("eks", "aws_eks_cluster.prod"),
        ("eks", "aws_eks_cluster.staging"),
        ("eks", "prod"),
        ("gke", "gke-prod"),
        ("gke", "google_container_cluster.legacy"),
    ]


#: (file name, content, [(line, reason)]): fields of the wrong type, as the API would refuse
MALFORMED = [
    (
        "agent.yaml",
        "apiVersion: apps/v1\nkind: DaemonSet\nmetadata: {name: fluent-bit}\nspec:\n"
        "  template:\n    spec:\n      containers: [{image: fluent/fluent-bit}]\n"
        "      tolerations: 5\n      volumes: [{hostPath: /var/log}]\n",
        [
            (8, "DaemonSet/fluent-bit: spec.template.spec.tolerations: expected a list, got int"),
            (9, "spec.template.spec.volumes[0].hostPath: expected a mapping, got str"),
        ],
    ),
    (
        "pod.yaml",
        "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n"
        "  - name: a\n    command: sh -c 'x > /dev/null'\n",
        [(7, "Pod/p: spec.containers[0].command: expected a list, got str")],
    ),
    (
        "binding.yaml",
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\n"
        "metadata: {name: b, namespace: n}\nroleRef: cluster-admin\nsubjects: []\n",
        [(4, "RoleBinding/n/b: roleRef: expected a mapping, got str")],
    ),
    (
        "kubelet.yaml",
        "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n"
        "eventRecordQPS: true\n",
        [(3, "eventRecordQPS: expected a number, got a boolean")],
    ),
    (
        "eks.json",
        '{"cluster": {"name": "c", "arn": "arn:aws:eks:eu-west-1:1:cluster/c",\n'
        ' "logging": {"clusterLogging": {"types": ["audit"]}}}}\n',
        [(2, "cluster.logging.clusterLogging: expected a list, got dict")],
    ),
    (
        "gke.json",
        '{"name": "g", "loggingService": "logging.googleapis.com/kubernetes",\n'
        ' "loggingConfig": {"componentConfig": "WORKLOADS"}}\n',
        [(2, "loggingConfig.componentConfig: expected a mapping, got str")],
    ),
    (
        "main.tf",
        'resource "aws_eks_cluster" "c" {\n  name = "c"\n'
        '  enabled_cluster_log_types = "audit"\n}\n',
        [(3, "aws_eks_cluster.c.enabled_cluster_log_types: expected a list, got str")],
    ),
    (
        "diag.tf",
        'resource "azurerm_monitor_diagnostic_setting" "d" {\n  name = "d"\n  enabled_log = 5\n}\n',
        [(3, "azurerm_monitor_diagnostic_setting.d.enabled_log: expected a list, got int")],
    ),
    (
        "snippet.yaml",
        "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n  name: i\n"
        "  annotations:\n    nginx.ingress.kubernetes.io/configuration-snippet: |\n"
        "      access_log off\n",
        [(7, "nginx configuration: unexpected end of file: a directive without ';'")],
    ),
    (
        "audit-cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: audit}\ndata:\n  policy.yaml: |\n"
        "    apiVersion: audit.k8s.io/v1\n    kind: Policy\n    rules:\n"
        "    - level: Metadata\n      users: [a\n    - level: None\n",
        [(11, "audit policy in ConfigMap/audit policy.yaml: not valid YAML")],
    ),
]


@pytest.mark.parametrize(("name", "text", "expected"), MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_fields_are_reported_with_file_line_and_field(
    tmp_path: Path, name: str, text: str, expected: list[tuple[int, str]]
) -> None:
    path = tmp_path / name
    path.write_text(text)
    rejects = Rejects()
    result = scan([str(path)], rejects=rejects)  # no exception: reported and counted
    reported = [f"{r.where}: {r.reason}" for r in rejects.first]
    assert rejects.count == len(expected), reported
    for line, reason in expected:
        place = f"{path}:{line}: "
        assert any(r.startswith(place) and reason in r for r in reported), (line, reported)
    # the object is left out rather than judged half-read
    assert not [f for f in result.findings if f.file == str(path)]


def test_audit_policies_in_configmaps_are_found_however_written(tmp_path: Path) -> None:
    path = tmp_path / "audit-cm.yaml"
    path.write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: audit}\ndata:\n"
        "  quoted.yaml: |\n"  # line 5
        '    apiVersion: "audit.k8s.io/v1"\n    kind: "Policy"\n    rules:\n'
        "    - level: None\n"  # line 9
        "  policy.json: |\n"  # line 10
        '    {"apiVersion": "audit.k8s.io/v1", "kind": "Policy", "rules": [{"level": "None"}]}\n'
        "  docs.txt: |\n"  # mentions both, parses as a string: not a Policy
        "    see the audit.k8s.io Policy reference\n"
    )
    rejects = Rejects()
    result = scan([str(path)], rejects=rejects)
    assert rejects.count == 0
    policies = list(result.inventory.of_kind("Policy"))
    assert [o.embedded_in for o in policies] == ["ConfigMap/audit"] * 2
    lines = {f.line for f in result.findings if f.id == "LW-POLICY-001"}
    assert lines == {9, 11}  # the None rule of each: the quoted YAML and the JSON


def _scan_in_thread(paths: list[str], rejects: Rejects) -> bool:
    """Scan `paths`; False when the scan has not ended after 30 s (it blocked)."""
    done = threading.Event()

    def target() -> None:
        scan(paths, rejects=rejects)
        done.set()

    threading.Thread(target=target, daemon=True).start()
    return done.wait(30)


def test_fifos_devices_and_huge_files_are_reported_not_read(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe.yaml")  # open() would wait for a writer forever
    (tmp_path / "zero.yaml").symlink_to("/dev/zero")  # read() would never end
    with open(tmp_path / "huge.json", "wb") as fh:  # sparse: costs no disk
        fh.truncate(32 * 1024 * 1024 + 1)
    (tmp_path / "ok.yaml").write_text('{"log-driver": "none"}\n')
    rejects = Rejects()
    assert _scan_in_thread([str(tmp_path)], rejects), "the scan blocked"
    assert sorted(f"{r.where}: {r.reason}" for r in rejects.first) == [
        f"{tmp_path}/huge.json: not read: larger than 32 MiB (split it)",
        f"{tmp_path}/pipe.yaml: cannot read: not a regular file",
        f"{tmp_path}/zero.yaml: cannot read: not a regular file",
    ]


def test_symlinks_loops_and_linked_directories(tmp_path: Path) -> None:
    real = tmp_path / "tree" / "real"
    real.mkdir(parents=True)
    (real / "daemon.json").write_text('{"log-driver": "none"}\n')
    (tmp_path / "tree" / "loop").symlink_to(tmp_path / "tree")  # a directory loop
    (tmp_path / "tree" / "a.yaml").symlink_to("b.yaml")
    (tmp_path / "tree" / "b.yaml").symlink_to("a.yaml")
    (tmp_path / "self").symlink_to("self")
    rejects = Rejects()
    result = scan([str(tmp_path / "tree"), str(tmp_path / "self")], rejects=rejects)
    assert sorted(f"{r.where}: {r.reason}" for r in rejects.first) == [
        f"{tmp_path}/self: cannot read: too many levels of symbolic links",
        f"{tmp_path}/tree/a.yaml: cannot read: too many levels of symbolic links",
        f"{tmp_path}/tree/b.yaml: cannot read: too many levels of symbolic links",
    ]
    assert result.inventory.notes == [
        f"{tmp_path}/tree/loop: a symbolic link to a directory: not followed"
    ]
    assert len(result.inventory.daemon_json) == 1  # read once, not once per loop


def test_conf_files_that_are_not_nginx_are_left_alone(tmp_path: Path) -> None:
    # /etc/kubernetes/admin.conf is a kubeconfig; ntp.conf says `server` too
    (tmp_path / "admin.conf").write_text(
        "apiVersion: v1\nclusters:\n- cluster:\n    server: https://10.0.0.1:6443\n"
        "  name: kubernetes\nkind: Config\n"
    )
    (tmp_path / "ntp.conf").write_text("driftfile /var/lib/ntp/drift\nserver 0.pool.ntp.org\n")
    (tmp_path / "site.conf").write_text("server\n{\n    access_log off;\n}\n")
    rejects = Rejects()
    result = scan([str(tmp_path)], rejects=rejects)
    assert rejects.count == 0, [f"{r.where}: {r.reason}" for r in rejects.first]
    assert [cfg.file for cfg in result.inventory.nginx] == [str(tmp_path / "site.conf")]


def test_kubeadm_and_kubelet_config_kept_in_their_configmaps(tmp_path: Path) -> None:
    # `kubectl -n kube-system get cm kubeadm-config kubelet-config -o yaml`, trimmed
    path = tmp_path / "kube-system.yaml"
    path.write_text(
        "apiVersion: v1\nkind: List\nitems:\n"
        "- apiVersion: v1\n  kind: ConfigMap\n"
        "  metadata: {name: kubeadm-config, namespace: kube-system}\n"
        "  data:\n    ClusterConfiguration: |\n"  # line 8
        "      apiServer:\n        extraArgs:\n          authorization-mode: Node,RBAC\n"
        "      apiVersion: kubeadm.k8s.io/v1beta3\n      kind: ClusterConfiguration\n"
        "- apiVersion: v1\n  kind: ConfigMap\n"
        "  metadata: {name: kubelet-config, namespace: kube-system}\n"
        "  data:\n    kubelet: |\n"  # line 18
        "      apiVersion: kubelet.config.k8s.io/v1beta1\n"
        "      kind: KubeletConfiguration\n      eventRecordQPS: 2\n"
    )
    found = {(f.id, f.line, f.object) for f in scan([str(path)]).findings}
    assert {
        ("LW-AUDIT-001", 9, "ClusterConfiguration in ConfigMap/kube-system/kubeadm-config"),
        ("LW-EVENTS-001", 21, "KubeletConfiguration in ConfigMap/kube-system/kubelet-config"),
    } <= found


def test_tolerations_with_fields_of_the_wrong_type_are_reported(tmp_path: Path) -> None:
    path = tmp_path / "agent.yaml"
    path.write_text(
        "apiVersion: apps/v1\nkind: DaemonSet\nmetadata: {name: vector}\nspec:\n"
        "  template:\n    spec:\n      containers: [{image: timberio/vector}]\n"
        "      tolerations:\n      - {key: [node-role.kubernetes.io/control-plane]}\n"
    )
    rejects = Rejects()
    scan([str(path)], rejects=rejects)  # the check hashed the key: TypeError
    assert [f"{r.where}: {r.reason}" for r in rejects.first] == [
        f"{path}:9: DaemonSet/vector: spec.template.spec.tolerations[0].key: "
        "expected a string, got list"
    ]
