"""YAML and JSON loading: alias bombs and recursive aliases refused, foreign tags read."""

from __future__ import annotations

from pathlib import Path

from logwarden.posture import scan
from logwarden.rejects import Rejects

POD = "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: [{name: a}]}\n"


def lol(levels: int, key: str = "lol") -> str:
    """A billion-laughs document: each level lists the one below ten times."""
    lines = [f'{key}0: &{key}0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, levels):
        lines.append(f"{key}{i}: &{key}{i} [" + ", ".join([f"*{key}{i - 1}"] * 10) + "]")
    return "\n".join(lines) + "\n"


def reported(path: Path) -> tuple[list[str], Rejects, list[str]]:
    rejects = Rejects()
    result = scan([str(path)], rejects=rejects)
    return [f"{r.where}: {r.reason}" for r in rejects.first], rejects, result.inventory.notes


def test_alias_bomb_is_refused_before_anything_is_built(tmp_path: Path) -> None:
    path = tmp_path / "bomb.yaml"
    # 10**7 nodes once expanded; aliased into the Pod's name, a str() of it takes gigabytes
    path.write_text(lol(8) + POD.replace("name: p", "name: *lol7"))
    errors, rejects, _ = reported(path)
    assert rejects.count == 1
    assert errors[0].startswith(f"{path}:1: refused: aliases expand the document by ")
    assert errors[0].endswith("nodes (more than 1,000,000): an alias bomb")


def test_aliases_within_the_limit_are_read_with_their_lines(tmp_path: Path) -> None:
    path = tmp_path / "docker-compose.yml"
    path.write_text(
        "x-logging: &logging\n  driver: none\n"
        "services:\n  web: {image: nginx, logging: *logging}\n"
        "  db: {image: pg, logging: *logging}\n" + lol(3)
    )
    errors, rejects, _ = reported(path)
    assert rejects.count == 0, errors
    found = {(f.id, f.line, f.message) for f in scan([str(path)]).findings}
    assert found == {  # the alias points at the anchor's line, where the fix goes
        ("LW-DISCARD-006", 2, "service 'web' uses logging driver none"),
        ("LW-DISCARD-006", 2, "service 'db' uses logging driver none"),
    }


def test_recursive_aliases_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "list.yaml"
    path.write_text("&l {apiVersion: v1, kind: List, items: [*l]}\n---\n" + POD)
    errors, rejects, _ = reported(path)
    assert errors == [
        f"{path}:1: refused: an alias refers to a node that contains it (a recursive structure)"
    ]
    assert rejects.count == 1  # the whole file: one bad document and it is not read


def test_an_alias_bomb_in_a_configmap_policy_is_refused(tmp_path: Path) -> None:
    body = "apiVersion: audit.k8s.io/v1\nkind: Policy\n" + lol(8) + "rules: [{level: None}]\n"
    text = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: audit}\ndata:\n  policy.yaml: |\n"
    path = tmp_path / "audit.yaml"
    path.write_text(text + "".join(f"    {line}\n" for line in body.splitlines()))
    errors, rejects, _ = reported(path)
    assert rejects.count == 1
    assert errors[0].startswith(f"{path}:6: audit policy in ConfigMap/audit policy.yaml: refused")


def test_foreign_tags_and_the_value_scalar_are_plain_data(tmp_path: Path) -> None:
    (tmp_path / "mkdocs.yml").write_text(
        "site_name: x\nmarkdown_extensions:\n  - pymdownx.emoji:\n"
        "      emoji_index: !!python/name:material.extensions.emoji.twemoji\n"
    )
    (tmp_path / "stack.yaml").write_text(
        "Resources:\n  B:\n    Properties:\n      BucketName: !Sub '${AWS::StackName}-b'\n"
        "      Tags: !Tagged [a, b]\n      Cfg: !Cfg {k: v}\n"
    )
    (tmp_path / "cm.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: eq}\n"
        "data:\n  separator: =\n  disable-access-log: 'true'\n"
    )
    rejects = Rejects()
    result = scan([str(tmp_path)], rejects=rejects)
    assert rejects.count == 0, [r.reason for r in rejects.first]
    (cm,) = result.inventory.objects
    assert cm.data["data"]["separator"] == "="  # kubectl reads `=` as a string too
    assert [(f.id, f.line) for f in result.findings if f.group == "discarded-logs"] == [
        ("LW-DISCARD-003", 6)
    ]


def test_json_surrogate_pairs_are_characters(tmp_path: Path) -> None:
    # what Python's json.dumps writes for characters outside the BMP (here U+1F600)
    path = tmp_path / "cm.json"
    path.write_text(
        '{"apiVersion": "v1", "kind": "ConfigMap",\n'
        ' "metadata": {"name": "s", "annotations": {"note": "\\ud83d\\ude00 \\udc00",\n'
        '  "text": "\\\\ud83d"}},\n'
        ' "data": {"access-log-path": "\\/dev\\/null"}}\n'
    )
    errors, rejects, _ = reported(path)
    assert rejects.count == 0, errors
    (cm,) = scan([str(path)]).inventory.objects
    annotations = cm.data["metadata"]["annotations"]
    assert annotations == {"note": "\U0001f600 \ufffd", "text": "\\ud83d"}  # "\\" is text
