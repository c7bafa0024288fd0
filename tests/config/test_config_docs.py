"""docs/configuration.md is what the schema generates, and it documents every field."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from test_config_schema import ALL

from logwarden.config import Config
from logwarden.config._types import fields
from logwarden.config.docs import render

DOC = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"
REGENERATE = "python -m logwarden.config.docs > docs/configuration.md"


def test_docs_configuration_md_is_in_sync_with_the_schema() -> None:
    assert DOC.read_text(encoding="utf-8") == render(), f"out of date: run `{REGENERATE}`"


def test_the_module_prints_the_page() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "logwarden.config.docs"], capture_output=True, check=True, text=True
    ).stdout
    assert out == render()


def test_every_section_and_field_is_documented() -> None:
    page = render()
    for f in fields(Config):
        assert f"## `{f.name}`" in page or f"- `{f.name}` (" in page
    for cls in ALL:
        for f in fields(cls):
            assert f"- `{f.name}` (" in page or f"`{f.name}`: " in page, f.name
    assert "### `type: k8s_audit_webhook`" in page and "### `type: webhook`" in page
    assert "- `path` (path, **required**): The audit log file to follow." in page
    assert '- `listen` (host:port, default `"127.0.0.1:9095"`)' in page
    assert "- `key_file` (path, default `<data_dir>/ledger.key`)" in page
