"""The base structs of the config schema, shared by `schema` and `receivers`.

`_Section` is any part of the file (unknown fields rejected, `problems()` relating its
fields); `_Component` is a part selected by `type:` under an id the user chooses.
"""

from __future__ import annotations

from typing import Annotated

import msgspec
from msgspec import Meta

__all__ = ["Found"]

#: Problems a struct finds in its fields together: (path from the struct, message) each.
Found = list[tuple[tuple[str | int, ...], str]]


class _Section(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    def problems(self) -> Found:
        """What is wrong with these fields together (each field alone is already good)."""
        return []


class _Component(_Section, frozen=True, kw_only=True, tag_field="type"):
    """A source, sink or receiver; `type:` selects its struct."""


class _Source(_Component, frozen=True, kw_only=True):
    """A source of `sources:`: what every type has."""

    silence_after_secs: Annotated[
        float,
        Meta(
            ge=0,
            description="Alert when a source that was sending stays quiet this long "
            "(K05: logging disabled); 0 never alerts.",
        ),
    ] = 300.0
