"""The K05 seed's exploit (tests/fixtures/hackme): every place logs are discarded is found,
and the fixed app (k8s/fixed/) yields none of those findings."""

from __future__ import annotations

from conftest import FIXTURES
from logwarden.posture import scan

HACKME = FIXTURES / "hackme"

#: (file relative to hackme, line, check id): every place the example throws logs away
DISCARDED = {
    ("nginx/nginx.conf", 2, "LW-DISCARD-002"),  # error_log /dev/null notice
    ("nginx/nginx.conf", 15, "LW-DISCARD-001"),  # access_log /dev/null main
    ("nginx/default.conf", 3, "LW-DISCARD-001"),  # access_log /dev/null
    ("nginx/default.conf", 4, "LW-DISCARD-002"),  # error_log /dev/null
    ("k8s/hack.pod.yaml", 25, "LW-DISCARD-001"),  # ConfigMap: access_log off
    ("k8s/hack.pod.yaml", 26, "LW-DISCARD-002"),  # ConfigMap: error_log /dev/null
    ("docker/Dockerfile", 4, "LW-DISCARD-007"),  # COPY nginx/default.conf into the image
    ("docker/Dockerfile", 5, "LW-DISCARD-007"),  # COPY nginx/nginx.conf into the image
}


def test_every_discarded_log_is_found() -> None:
    result = scan([str(HACKME)])
    assert result.inventory.rejects.count == 0
    found = {
        (str(__import__("pathlib").Path(f.file).relative_to(HACKME)), f.line, f.id)
        for f in result.findings
        if f.group == "discarded-logs" and f.file
    }
    assert found == DISCARDED
    by_place = {(f.file, f.line): f for f in result.findings}
    configmap = by_place[(str(HACKME / "k8s/hack.pod.yaml"), 25)]
    assert configmap.object == "ConfigMap/hackme-nginx"
    assert configmap.message == "access_log off (in ConfigMap/hackme-nginx)"
    assert configmap.severity == "high"
    assert "/dev/stdout" in configmap.remediation
    image = by_place[(str(HACKME / "docker/Dockerfile"), 5)]
    assert "error_log /dev/null notice (line 2)" in image.message
    assert "access_log /dev/null main (line 15)" in image.message


def test_fixed_app_has_none_of_those_findings() -> None:
    result = scan([str(HACKME / "k8s" / "fixed")])
    assert result.inventory.rejects.count == 0
    assert [o.ref for o in result.inventory.of_kind("ConfigMap")] == ["ConfigMap/hackme-nginx"]
    assert [f for f in result.findings if f.group == "discarded-logs"] == []
    # only the gaps of an app repository remain (no agent, no monitoring in this input)
    assert {f.id for f in result.findings} == {"LW-SHIP-001", "LW-MON-001"}
    assert {f.severity for f in result.findings} == {"info"}
