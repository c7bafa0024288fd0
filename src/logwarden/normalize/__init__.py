"""Input formats: one module per format, each turning raw bytes into record views."""

from __future__ import annotations

from logwarden.normalize import k8s_audit
from logwarden.normalize.base import Format

__all__ = ["FORMATS", "Format"]

#: Every format, by the `Record.source` it produces.
FORMATS: dict[str, Format] = {k8s_audit.SOURCE: k8s_audit.FORMAT}
