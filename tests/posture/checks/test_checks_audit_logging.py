"""Check group 1 on kube-apiserver static pods and kubeadm configuration."""

from __future__ import annotations

from pathlib import Path

from conftest import FIXTURES
from logwarden.posture import scan
from logwarden.records import Finding

APISERVER = FIXTURES / "posture" / "manifests" / "apiserver"
KUBEADM = FIXTURES / "posture" / "manifests" / "kubeadm"


def audit(*names: str, root=APISERVER) -> list[Finding]:  # type: ignore[no-untyped-def]
    paths = [str(root / n) for n in names]
    return [f for f in scan(paths).findings if f.group == "audit-logging"]


def ids(found: list[Finding]) -> list[tuple[str, int | None]]:
    return sorted((f.id, f.line) for f in found)


def test_kubeadm_default_has_audit_off() -> None:
    (f,) = audit("kubeadm-default.yaml")
    assert (f.id, f.severity, f.line) == ("LW-AUDIT-001", "high", 11)
    assert f.object == "Pod/kube-system/kube-apiserver"
    assert "no --audit-policy-file and no audit backend" in f.message


def test_documented_setup_with_its_policy_is_clean() -> None:
    assert audit("audited.yaml", "audit-policy.yaml") == []
    # without the policy file in the input, it says the policy could not be simulated
    assert ids(audit("audited.yaml")) == [("LW-AUDIT-009", 14)]


def test_short_retention_each_flag_on_its_line() -> None:
    found = audit("short-retention.yaml", "audit-policy.yaml")
    assert ids(found) == [
        ("LW-AUDIT-003", 14),
        ("LW-AUDIT-004", 15),
        ("LW-AUDIT-005", 16),
        ("LW-AUDIT-008", 13),
    ]
    by_id = {f.id: f for f in found}
    assert by_id["LW-AUDIT-003"].message.startswith("--audit-log-maxage=7")
    assert "not under any volume mount" in by_id["LW-AUDIT-008"].message


def test_zero_retention_means_unlimited_and_is_not_a_failure() -> None:
    (f,) = audit("unlimited.yaml", "audit-policy.yaml")
    assert (f.id, f.severity) == ("LW-AUDIT-006", "info")


def test_flags_in_args_and_webhook_only_backend() -> None:
    found = audit("webhook-args.yaml")
    assert ids(found) == [("LW-AUDIT-007", 14), ("LW-AUDIT-009", 13)]
    assert not [f for f in found if f.id in ("LW-AUDIT-001", "LW-AUDIT-002")]


def test_kubeadm_cluster_configuration_without_backend() -> None:
    found = audit("kubeadm.yaml", root=KUBEADM)
    assert ids(found) == [("LW-AUDIT-002", 12), ("LW-AUDIT-009", 12)]
    assert found[0].object == "ClusterConfiguration"


def test_audit_log_path_dash_given_as_a_separate_argument(tmp_path: Path) -> None:
    # pflag reads `--audit-log-path -` as the value "-": the audit log on stdout
    pod = tmp_path / "kube-apiserver.yaml"
    pod.write_text(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: kube-apiserver, namespace: kube-system}\n"
        "spec:\n  containers:\n  - name: kube-apiserver\n    command:\n    - kube-apiserver\n"
        "    - --audit-policy-file\n    - /etc/kubernetes/audit-policy.yaml\n"
        "    - --audit-log-path\n    - '-'\n"
        "    volumeMounts: [{name: audit, mountPath: /etc/kubernetes/audit-policy.yaml}]\n"
        "  volumes: [{name: audit, hostPath: {path: /etc/kubernetes/audit-policy.yaml}}]\n"
    )
    found = audit(str(pod), str(APISERVER / "audit-policy.yaml"), root=Path("/"))
    assert found == []  # not "no audit backend"
