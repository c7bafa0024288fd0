"""Check group 4 beyond the hackme example: ingress-nginx, commands, emptyDir, Docker."""

from __future__ import annotations

from pathlib import Path

from conftest import FIXTURES
from logwarden.posture import scan

M = FIXTURES / "posture" / "manifests"


def found(*paths: str) -> set[tuple[str, str, int | None, str]]:
    return {
        (f.id, (f.file or "").rsplit("/", 1)[-1], f.line, f.severity)
        for f in scan([str(M / p) for p in paths]).findings
        if f.group == "discarded-logs"
    }


def test_ingress_nginx_configmap_annotation_and_snippet() -> None:
    assert found("ingress") == {
        ("LW-DISCARD-003", "ingress-nginx.yaml", 7, "high"),  # disable-access-log: "true"
        ("LW-DISCARD-003", "ingress-nginx.yaml", 16, "high"),  # enable-access-log: "false"
        ("LW-DISCARD-001", "ingress-nginx.yaml", 19, "high"),  # access_log off in a snippet
    }


def test_commands_emptydir_and_list_items() -> None:
    assert found("workloads") == {
        ("LW-DISCARD-004", "helm-rendered.yaml", 19, "high"),  # > /dev/null 2>&1
        ("LW-DISCARD-005", "helm-rendered.yaml", 24, "medium"),  # log file on emptyDir
        ("LW-DISCARD-001", "list.json", 11, "high"),  # access_log in a List's ConfigMap
        ("LW-DISCARD-004", "list.json", 15, "medium"),  # 2>/dev/null: stderr only
    }


def test_docker_log_driver_none_and_dockerfile() -> None:
    assert found("docker") == {
        ("LW-DISCARD-006", "daemon.json", 3, "high"),
        ("LW-DISCARD-006", "docker-compose.yml", 5, "high"),
        ("LW-DISCARD-006", "run.sh", 2, "high"),
        ("LW-DISCARD-007", "Dockerfile.proxy", 2, "high"),  # ln -sf /dev/null access.log
        ("LW-DISCARD-004", "Dockerfile.proxy", 3, "high"),  # CMD ... > /dev/null
    }


def test_access_log_off_in_a_location_is_a_low_blind_spot(tmp_path: Path) -> None:
    conf = tmp_path / "site.conf"
    conf.write_text(
        "server {\n"
        "    listen 80;\n"
        "    error_log /dev/null;\n"
        "    location /healthz { access_log off; return 200; }\n"
        "    location / { root /srv; }\n"
        "}\n"
    )
    got = {
        (f.id, f.line, f.severity, f.message)
        for f in scan([str(conf)]).findings
        if f.group == "discarded-logs"
    }
    assert got == {
        ("LW-DISCARD-002", 3, "high", "error_log /dev/null"),  # the whole server
        (
            "LW-DISCARD-001",
            4,
            "low",
            "access_log off inside a location block: requests to that location leave no trace",
        ),
    }
