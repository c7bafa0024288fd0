"""Check group 4 beyond the hackme example: ingress-nginx, commands, emptyDir, Docker."""

from __future__ import annotations

import shutil
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


def discards(path: Path) -> set[tuple[str, int | None, str]]:
    return {
        (f.id, f.line, f.severity)
        for f in scan([str(path)]).findings
        if f.group == "discarded-logs" and f.file == str(path)
    }


def test_nginx_reads_several_access_logs_of_one_level(tmp_path: Path) -> None:
    # nginx.org/r/access_log: several logs on one level all write; `off` cancels them all
    conf = tmp_path / "nginx.conf"
    conf.write_text(
        "http {\n"
        "    access_log /dev/stdout main;\n"
        "    access_log /dev/null;\n"  # 3: beside a log that writes: discards nothing
        "    server {\n"
        "        access_log /dev/null;\n"  # 5: the only one of its server
        "    }\n"
        "    server {\n"
        "        access_log /dev/stdout;\n"
        "        access_log off;\n"  # 9: cancels the one above
        "        error_log off;\n"  # 10: not a switch, a file named "off"
        "    }\n"
        "}\n"
    )
    assert discards(conf) == {
        ("LW-DISCARD-001", 5, "high"),
        ("LW-DISCARD-001", 9, "high"),
        ("LW-DISCARD-002", 10, "high"),
    }


def test_quoted_switches_in_configmaps_and_every_ingress_nginx_key(tmp_path: Path) -> None:
    path = tmp_path / "ingress.yaml"
    path.write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ingress-nginx-controller}\ndata:\n"
        '  disable-http-access-log: "True"\n'  # 5
        '  disable-stream-access-log: "1"\n'  # 6
        "  http-access-log-path: /dev/null\n"  # 7
        '  access-log-off: "true"\n'  # 8: the F5 NGINX Ingress Controller's key
        '  disable-access-log: "false"\n'
        "  server-snippet: |\n"
        '    access_log "off";\n'  # 11
        "    error_log off;\n"  # 12
        "---\napiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n  name: i\n"
        "  annotations:\n    nginx.ingress.kubernetes.io/enable-access-log: 'False'\n"  # 19
    )
    assert discards(path) == {
        ("LW-DISCARD-003", 5, "high"),
        ("LW-DISCARD-003", 6, "medium"),  # TCP/UDP streams only
        ("LW-DISCARD-003", 7, "high"),
        ("LW-DISCARD-003", 8, "high"),
        ("LW-DISCARD-001", 11, "high"),
        ("LW-DISCARD-002", 12, "high"),
        ("LW-DISCARD-003", 19, "high"),
    }


def test_dockerfile_heredocs_exec_form_directories_and_link_options(tmp_path: Path) -> None:
    shutil.copytree(FIXTURES / "hackme" / "nginx", tmp_path / "nginx")
    dockerfile = tmp_path / "docker" / "Dockerfile"
    dockerfile.parent.mkdir()
    dockerfile.write_text(
        "FROM nginx:1.25\n"
        "RUN <<EOF\n"
        "apt-get update\n"
        "ln -sf /dev/null /var/log/nginx/access.log\n"  # 4
        "EOF\n"
        "RUN ln -s -f /dev/null /var/log/app.log && ln -f /dev/null /tmp/x.log\n"  # 6
        'COPY ["nginx/default.conf", "/etc/nginx/conf.d/"]\n'  # 7
        "COPY --chown=101:101 nginx/ /etc/nginx/\n"  # 8: both files
        "COPY . /usr/share/nginx/html/\n"  # not where nginx reads its configuration
        "COPY <<-EOF /etc/nginx/conf.d/health.conf\n"
        "\tserver {\n"
        "\t    access_log off;\n"  # 12
        "\t}\n"
        "\tEOF\n"
        "COPY --from=build /src/nginx/default.conf /etc/nginx/\n"
        "COPY nginx/\x00 /etc/nginx/\n"  # not a path: no crash
        'CMD ["nginx", "-g", "daemon off;"]\n'
        'RUN cat <<<"a here-string" > /tmp/x\n'  # not a here-document: reads no lines
        "RUN ln -sf /dev/null /var/log/last.log\n"  # 19
    )
    got = sorted(
        (f.line, f.message)
        for f in scan([str(tmp_path)]).findings
        if f.file == str(dockerfile) and f.id == "LW-DISCARD-007"
    )
    assert [line for line, _ in got] == [4, 6, 7, 8, 8, 12, 19]
    assert got[0][1] == "links /var/log/nginx/access.log to /dev/null"
    assert got[1][1] == "links /var/log/app.log to /dev/null"  # not the hard link
    assert got[2][1].startswith("COPY nginx/default.conf bakes in access_log /dev/null (line 3)")
    assert {m.split(" bakes")[0] for line, m in got if line == 8} == {
        "COPY nginx/default.conf",
        "COPY nginx/nginx.conf",
    }
    assert got[5][1] == "COPY here-document: access_log off;"
