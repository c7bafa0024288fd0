"""Sigma levels as logwarden's priorities and severities."""

from __future__ import annotations

from typing import Any

__all__ = ["LEVELS", "level_of"]

#: Sigma level -> (Falco priority name, logwarden severity)
LEVELS = {
    "informational": ("Informational", "info"),
    "low": ("Notice", "low"),
    "medium": ("Warning", "medium"),
    "high": ("Error", "high"),
    "critical": ("Critical", "critical"),
}


def level_of(sigma: Any) -> tuple[str, str]:
    """The (Falco priority name, severity) of a Sigma rule or correlation (medium if it
    gives no level)."""
    level = getattr(sigma, "level", None)
    name = str(level.name).lower() if level is not None else "medium"
    return LEVELS.get(name, LEVELS["medium"])
