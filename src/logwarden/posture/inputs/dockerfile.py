"""Dockerfiles, parsed by dockerfile-parse, with BuildKit here-documents put back together.

dockerfile-parse does not know here-documents: it reads the body of `RUN <<EOF` ...
`EOF` as one instruction per line (`LN -sf /dev/null ...`, `EOF`). Here the body of each
here-document an instruction opens (`<<EOF`, `<<-EOF`, `<<"EOF"`, several on one line)
is taken from the text, up to its delimiter line, and given to that instruction; the
instructions dockerfile-parse made of its lines are dropped.
"""

from __future__ import annotations

import io
import json
import re

from logwarden.posture.model import Dockerfile, Instruction, Inventory

__all__ = ["copy_sources", "read_dockerfile"]

#: a here-document opened by RUN, COPY or ADD; the delimiter may be quoted (`<<<` is a
#: shell here-string, not a here-document)
_HEREDOC = re.compile(r"""(?<!<)<<(-?)(["']?)([A-Za-z_][\w.-]*)\2""")
_HEREDOC_INSTRUCTIONS = ("RUN", "COPY", "ADD")


def read_dockerfile(path: str, text: str, inv: Inventory) -> None:
    """Parse one Dockerfile into `inv.dockerfiles`; a failure is reported."""
    from dockerfile_parse import DockerfileParser

    try:
        parser = DockerfileParser(fileobj=io.BytesIO(text.encode()), env_replace=False)
        structure = parser.structure
    except Exception as exc:  # dockerfile-parse raises plain exceptions; translated here
        inv.rejects.report(path, f"not a readable Dockerfile: {exc}")
        return
    lines = [line.rstrip("\r") for line in text.split("\n")]
    out: list[Instruction] = []
    consumed = -1  # the last line (0-based) a here-document took
    for item in structure:
        start, end = int(item["startline"]), int(item["endline"])
        if start <= consumed:
            continue  # a line of a here-document, not an instruction
        name, value = str(item["instruction"]), str(item["value"])
        body: list[str] = []
        following = end + 1
        if name in _HEREDOC_INSTRUCTIONS:
            for m in _HEREDOC.finditer(value):
                strip_tabs, delimiter = m.group(1) == "-", m.group(3)
                while following < len(lines):
                    line = lines[following]
                    following += 1
                    if (line.lstrip("\t") if strip_tabs else line) == delimiter:
                        break
                    body.append(line)
                consumed = following - 1
        out.append(Instruction(name, value, start + 1, tuple(body), end + 2))
    inv.dockerfiles.append(Dockerfile(path, out))


def copy_sources(value: str) -> tuple[list[str], str] | None:
    """The sources and the destination of a COPY or ADD, in shell or exec (JSON array)
    form; None for a copy from another stage or image (`--from`) or without a source.
    Here-document sources (`<<EOF`) are left out: their text is the instruction's."""
    rest = value.strip()
    flags = []
    while rest.startswith("--"):
        flag, _, rest = rest.partition(" ")
        flags.append(flag)
        rest = rest.strip()
    if any(f.startswith("--from") for f in flags):
        return None
    parts: list[str] = []
    if rest.startswith("["):
        try:
            parsed = json.loads(rest)
        except ValueError:
            parsed = None
        if isinstance(parsed, list) and all(isinstance(p, str) for p in parsed):
            parts = parsed
    else:
        parts = rest.split()
    if len(parts) < 2:
        return None
    return [p for p in parts[:-1] if not p.startswith("<<")], parts[-1]
