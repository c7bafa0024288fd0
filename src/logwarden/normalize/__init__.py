"""Input formats: one module per format, each turning raw bytes into record views."""

from __future__ import annotations

from logwarden.normalize import (
    cloud_aks,
    cloud_eks,
    cloud_gke,
    container_log,
    hubble,
    journald,
    k8s_audit,
    k8s_event,
    web_access,
)
from logwarden.normalize.base import Format

__all__ = ["FORMATS", "Format"]

#: Every format, by the `Record.source` it produces.
FORMATS: dict[str, Format] = {
    fmt.source: fmt
    for fmt in (
        k8s_audit.FORMAT,
        k8s_event.FORMAT,
        container_log.FORMAT,
        journald.FORMAT,
        cloud_aks.FORMAT,
        cloud_eks.FORMAT,
        cloud_gke.FORMAT,
        web_access.INGRESS_NGINX,
        web_access.NGINX,
        web_access.ENVOY,
        hubble.FORMAT,
    )
}
