"""File inputs: YAML/JSON documents and their lines, nginx in ConfigMaps, errors counted."""

from __future__ import annotations

from pathlib import Path

from conftest import FIXTURES
from logwarden.posture.inputs import collect
from logwarden.posture.model import Inventory

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
