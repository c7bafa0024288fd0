"""Check groups 3, 5, 6 and 7 on crafted manifests, kubeadm/kubelet config and cloud inputs."""

from __future__ import annotations

from pathlib import Path

from conftest import FIXTURES
from logwarden.posture import scan
from logwarden.posture.checks import ALL_CHECKS, GROUPS
from logwarden.rejects import Rejects

M = FIXTURES / "posture" / "manifests"


def found(group: str, *paths: str) -> set[tuple[str, str, int | None, str]]:
    return {
        (f.id, (f.file or "").rsplit("/", 1)[-1], f.line, f.severity)
        for f in scan([str(M / p) for p in paths]).findings
        if f.group == group
    }


def test_every_check_has_a_unique_id_and_its_texts() -> None:
    assert len(ALL_CHECKS) == sum(len(g.CHECKS) for g in GROUPS) == 37
    assert len(GROUPS) == 7
    for check in ALL_CHECKS.values():
        assert check.id.startswith("LW-") and check.title and check.why and check.remediation
        assert check.severity in ("critical", "high", "medium", "low", "info")


def test_log_shipping() -> None:
    assert found("log-shipping", "logging") == {
        ("LW-SHIP-002", "fluent-bit.yaml", 12, "medium"),
        ("LW-SHIP-003", "fluent-bit.yaml", 16, "medium"),
    }  # vector.yaml tolerates the control plane and mounts /var/log: clean
    (gap,) = [f for f in scan([str(M / "workloads")]).findings if f.group == "log-shipping"]
    assert (gap.id, gap.severity, gap.object) == ("LW-SHIP-001", "info", "scanned input")


def test_monitoring_gap_is_info_and_falco_counts() -> None:
    assert found("monitoring", "workloads") == {("LW-MON-001", "", None, "info")}
    assert found("monitoring", "workloads", "monitoring") == set()


def test_kubelet_events_and_rbac() -> None:
    assert found("kubelet-events-rbac", "kubeadm", "rbac", "logging") == {
        ("LW-EVENTS-001", "kubeadm.yaml", 5, "medium"),  # event-qps "2"
        ("LW-EVENTS-001", "kubelet-slow.yaml", 3, "low"),  # eventRecordQPS: 10
        ("LW-EVENTS-002", "kubeadm.yaml", 13, "medium"),  # event-ttl 45m
        ("LW-EVENTS-003", "rbac.yaml", 13, "high"),  # bob may delete events
        ("LW-EVENTS-004", "rbac.yaml", 28, "low"),  # developers read pods/log
        ("LW-EVENTS-005", "rbac.yaml", 43, "high"),  # ci may patch daemonsets in logging
        ("LW-EVENTS-003", "rbac.yaml", 65, "high"),  # every authenticated user may
    }  # eventRecordQPS: 0 is unlimited: not reported; the controller manager is not reported
    everyone = [
        f
        for f in scan([str(M / "rbac")]).findings
        if f.object == "ClusterRoleBinding/everyone-prunes-events"
    ]
    # system:authenticated is everyone, not the control plane; kube-system's accounts are
    assert [f.message for f in everyone] == [
        "Group system:authenticated may delete Events cluster-wide (ClusterRole/event-pruner)"
    ]


def test_managed_clusters_from_cloud_json_and_terraform() -> None:
    assert found("managed-clusters", "cloud") == {
        ("LW-CLOUD-001", "eks.json", 6, "high"),  # audit and authenticator disabled
        ("LW-CLOUD-001", "main.tf", 1, "high"),  # aws_eks_cluster.staging (its block): no types
        ("LW-CLOUD-002", "aks-cluster.json", 3, "high"),
        ("LW-CLOUD-002", "aks-diagnostics.json", 2, "high"),
        ("LW-CLOUD-003", "gke.json", 6, "medium"),  # WORKLOADS missing
        ("LW-CLOUD-003", "main.tf", 21, "high"),  # logging_service = "none"
    }  # aws_eks_cluster.prod (all five) and the AKS setting with kube-audit-admin are clean
    eks = [f for f in scan([str(M / "cloud" / "eks.json")]).findings if f.id == "LW-CLOUD-001"]
    assert eks[0].message == "EKS cluster 'prod': log types not enabled: audit, authenticator"


def test_docs_describe_every_check() -> None:
    docs = (Path(__file__).resolve().parents[3] / "docs" / "scan.md").read_text()
    for check in ALL_CHECKS.values():
        assert f"#### {check.id} — {check.title} ({check.severity})" in docs, check.id
        assert check.why in docs and check.remediation in docs, check.id


def test_terraform_values_computed_by_terraform_are_noted_not_judged(tmp_path: Path) -> None:
    tf = tmp_path / "aks.tf"
    tf.write_text(
        'resource "aws_eks_cluster" "c" {\n'
        "  provider = aws.west\n"  # an argument, not the next block
        "  enabled_cluster_log_types = var.log_types\n"  # 3
        "}\n"
        'resource "azurerm_kubernetes_cluster" "k" {\n  name = "k"\n}\n'
        'resource "azurerm_monitor_diagnostic_setting" "literal" {\n'
        "  target_resource_id = azurerm_kubernetes_cluster.k.id\n"
        '  dynamic "enabled_log" {\n'
        '    for_each = toset(["kube-apiserver", "guard"])\n'
        "    content { category = enabled_log.value }\n"
        "  }\n"
        "}\n"  # iterates literal categories, none of them the audit log
        'resource "azurerm_monitor_diagnostic_setting" "computed" {\n'
        "  target_resource_id = azurerm_kubernetes_cluster.k.id\n"
        '  dynamic "enabled_log" {\n'  # 17
        "    for_each = var.categories\n"
        "    content { category = enabled_log.value }\n"
        "  }\n"
        "}\n"
    )
    rejects = Rejects()
    result = scan([str(tf)], rejects=rejects)
    assert rejects.count == 0  # valid Terraform: not "expected a list, got str"
    assert result.inventory.notes == [
        f"{tf}:3: aws_eks_cluster.c.enabled_cluster_log_types is computed by Terraform: what "
        "it sets is not in the file, and not judged",
        f"{tf}:17: azurerm_monitor_diagnostic_setting.computed.dynamic is computed by "
        "Terraform: what it sets is not in the file, and not judged",
    ]
    assert [(f.id, f.line, f.message) for f in result.findings] == [
        (
            "LW-CLOUD-002",
            8,
            "diagnostic setting 'azurerm_monitor_diagnostic_setting.literal' exports guard, "
            "kube-apiserver, not kube-audit or kube-audit-admin",
        )  # the cluster itself may be covered by the computed setting: not reported
    ]
