"""Which container a kubelet log file belongs to, from its name.

The kubelet keeps each container's log in
``/var/log/pods/<namespace>_<pod>_<pod uid>/<container>/<restart count>.log`` and links
``/var/log/containers/<pod>_<namespace>_<container>-<container id>.log`` to it.
`parse_path` reads a `PodRef` from either name (see its docstring for the exact shapes).

The pod UID and restart count cannot be read from a /var/log/containers name alone
(resolve the link and parse that path). Public through `normalize.container_log`.
"""

from __future__ import annotations

import os
import re

import msgspec

__all__ = ["PodRef", "parse_path"]


class PodRef(msgspec.Struct, frozen=True, gc=False):
    """Which container a log file belongs to. `pod_uid` and `restart` are None for a
    /var/log/containers name, `container_id` is None for a /var/log/pods name; `rotated`
    is the kubelet's rotation stamp (``20250203-155314``) of a rotated file."""

    namespace: str
    pod: str
    container: str
    pod_uid: str | None = None
    restart: int | None = None
    container_id: str | None = None
    rotated: str | None = None


_LABEL = r"[a-z0-9](?:[-a-z0-9]*[a-z0-9])?"  # DNS-1123 label
_SUBDOMAIN = rf"{_LABEL}(?:\.{_LABEL})*"  # DNS-1123 subdomain
_UID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|[0-9a-f]{32}"
_PODS_PATH = re.compile(
    rf"(?:\A|/)pods/({_LABEL})_({_SUBDOMAIN})_({_UID})/({_LABEL})/"
    r"(0|[1-9][0-9]{0,8})\.log(?:\.([0-9]{8}-[0-9]{6}))?\Z"
)
_CONTAINERS_PATH = re.compile(
    rf"(?:\A|/)containers/({_SUBDOMAIN})_({_LABEL})_({_LABEL})-([0-9a-f]{{64}})\.log\Z"
)


def parse_path(path: str | os.PathLike[str]) -> PodRef | None:
    """The container a kubelet log file belongs to, from its name; None for other paths.

    Two shapes, under any prefix (a host path mounted at /host/var/log works):

    - ``.../pods/<namespace>_<pod>_<pod uid>/<container>/<restart>.log``, and the rotated
      ``<restart>.log.<YYYYMMDD-HHMMSS>`` (compressed ``.gz`` rotations give None: they are
      not lines to read);
    - ``.../containers/<pod>_<namespace>_<container>-<64 hex container id>.log``.

    Namespaces and container names are DNS-1123 labels (at most 63 characters), pod names
    DNS-1123 subdomains (at most 253); none holds ``_``, so the name splits unambiguously.
    The pod UID is a UUID, or 32 hex digits for a static pod (its manifest hash).
    """
    text = os.fspath(path)
    m = _PODS_PATH.search(text)
    if m is not None:
        ns, pod, uid, container, restart, rotated = m.groups()
        if len(ns) > 63 or len(pod) > 253 or len(container) > 63:
            return None
        return PodRef(ns, pod, container, uid, int(restart), None, rotated)
    m = _CONTAINERS_PATH.search(text)
    if m is not None:
        pod, ns, container, cid = m.groups()
        if len(ns) > 63 or len(pod) > 253 or len(container) > 63:
            return None
        return PodRef(ns, pod, container, container_id=cid)
    return None
