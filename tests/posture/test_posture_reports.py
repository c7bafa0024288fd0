"""Report formats: JSON's contract, SARIF 2.1.0 valid against its schema, --fix patches."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import jsonschema
import pytest

from conftest import FIXTURES
from logwarden.errors import UsageError
from logwarden.posture import scan
from logwarden.posture.fix import write_fixes
from logwarden.posture.report import to_json
from logwarden.posture.sarif import to_sarif

HACKME = FIXTURES / "hackme"
MANIFESTS = FIXTURES / "posture" / "manifests"
SCHEMA = json.loads((FIXTURES / "posture" / "sarif" / "sarif-2.1.0-rtm.5.json").read_text())


def test_json_is_a_list_of_findings_with_the_contract_fields() -> None:
    data = json.loads(to_json(scan([str(HACKME)]).findings))
    assert isinstance(data, list) and len(data) == 10
    for item in data:
        assert list(item) == [
            "id",
            "severity",
            "title",
            "file",
            "line",
            "object",
            "message",
            "why",
            "remediation",
            "group",
        ]
        assert item["severity"] in ("critical", "high", "medium", "low", "info")
        assert (item["file"] and item["line"]) or item["object"]


def test_sarif_is_valid_against_the_2_1_0_schema() -> None:
    findings = scan([str(HACKME), str(MANIFESTS)]).findings
    log = to_sarif(findings)
    jsonschema.validate(log, SCHEMA)
    (run,) = log["runs"]
    assert len(run["results"]) == len(findings) > 40
    rules = run["tool"]["driver"]["rules"]
    for result in run["results"]:
        assert rules[result["ruleIndex"]]["id"] == result["ruleId"]
        assert result["level"] in ("error", "warning", "note")
    first = next(r for r in run["results"] if r["ruleId"] == "LW-DISCARD-001")
    region = first["locations"][0]["physicalLocation"]["region"]
    assert region["startLine"] > 0
    # the validator is strict enough to catch a broken log
    run["results"][0]["level"] = "fatal"
    try:
        jsonschema.validate(log, SCHEMA)
    except jsonschema.ValidationError:
        pass
    else:
        raise AssertionError("an invalid level passed the SARIF schema")


def test_fix_writes_patched_copies_and_leaves_originals(tmp_path: Path) -> None:
    work = tmp_path / "hackme"
    shutil.copytree(HACKME, work)
    before = {p: p.read_bytes() for p in work.rglob("*") if p.is_file()}
    result = write_fixes(scan([str(work)]).findings, str(tmp_path / "out"))
    assert result.fixed == 6 and len(result.written) == 3
    assert {p: p.read_bytes() for p in work.rglob("*") if p.is_file()} == before
    patched = Path(next(w for w in result.written if w.endswith("default.conf"))).read_text()
    assert "access_log   /dev/stdout;" in patched and "error_log    /dev/stderr;" in patched
    diff = Path(result.diff_path or "").read_text()
    assert "-    access_log   /dev/null;" in diff and "+    access_log   /dev/stdout;" in diff
    # the patched tree has no discarded logs left (the Dockerfile copies clean configs now)
    for written in result.written:
        original = work / Path(written).relative_to(tmp_path / "out").relative_to(
            work.relative_to("/")
        )
        original.write_text(Path(written).read_text())
    left = [f for f in scan([str(work)]).findings if f.group == "discarded-logs"]
    assert left == []


def test_fix_in_place_rewrites_originals(tmp_path: Path) -> None:
    daemon = tmp_path / "daemon.json"
    shutil.copy(MANIFESTS / "docker" / "daemon.json", daemon)
    result = write_fixes(scan([str(daemon)]).findings, str(tmp_path / "out"), in_place=True)
    assert result.written == [str(daemon)]
    assert json.loads(daemon.read_text())["log-driver"] == "json-file"


def test_fix_keeps_line_endings_and_fixes_quoted_values(tmp_path: Path) -> None:
    conf = tmp_path / "site.conf"
    conf.write_bytes(
        b'server {\r\n    listen 80;\r\n    access_log off;\r\n    error_log "/dev/null";\r\n}\r\n'
    )
    result = write_fixes(scan([str(conf)]).findings, str(tmp_path / "out"), in_place=True)
    assert result.fixed == 2
    assert conf.read_bytes() == (  # every other byte kept, CRLF included
        b"server {\r\n    listen 80;\r\n    access_log /dev/stdout;\r\n"
        b'    error_log "/dev/stderr";\r\n}\r\n'
    )


def test_fix_refuses_a_directory_whose_copies_are_the_originals(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "app").mkdir()
    conf = tmp_path / "app" / "site.conf"
    conf.write_text("server {\n    access_log off;\n}\n")
    monkeypatch.chdir(tmp_path)
    findings = scan(["app"]).findings
    with pytest.raises(UsageError, match="would overwrite the original"):
        write_fixes(findings, ".")  # `--fix .`: app/site.conf is its own copy
    assert conf.read_text() == "server {\n    access_log off;\n}\n"
    assert not (tmp_path / "logwarden-fix.diff").exists()


def test_sarif_uris_are_percent_encoded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "my app").mkdir()
    (tmp_path / "my app" / "a#1%.conf").write_text("server {\n    access_log off;\n}\n")
    monkeypatch.chdir(tmp_path)
    log = to_sarif(scan(["my app"]).findings)
    jsonschema.validate(log, SCHEMA)
    (result,) = log["runs"][0]["results"]
    artifact = result["locations"][0]["physicalLocation"]["artifactLocation"]
    assert artifact == {"uri": "my%20app/a%231%25.conf", "uriBaseId": "%SRCROOT%"}
    monkeypatch.chdir("/")
    root = to_sarif([])["runs"][0]["originalUriBaseIds"]["%SRCROOT%"]["uri"]
    assert root == "file:///"
