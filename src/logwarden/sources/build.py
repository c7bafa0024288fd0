"""The live sources of `logwarden run`, made from their config (`config.sources`).

`live_source` returns the `LiveSource` of one configured source (the audit webhook is a
server, made by the runtime itself); `record_source` names the `Record.source` its records
carry, which the pipeline resumes by and the silence watch reports. Source modules are
imported only when a source of theirs is configured, so a dependency of one (boto3 for
CloudWatch) is needed only by those who use it.
"""

from __future__ import annotations

from pathlib import Path

from logwarden.config.schema import K8sAuditFileSource as AuditFileConfig
from logwarden.config.schema import SourceConfig
from logwarden.config.sources import (
    ContainerLogsSource,
    EksCloudWatchSource,
    GkePubSubSource,
    JournaldSource,
    K8sEventsSource,
    LogFileSource,
)
from logwarden.normalize import FORMATS
from logwarden.rejects import Rejects
from logwarden.sources.base import LiveSource

__all__ = ["live_source", "record_source", "what"]


def record_source(config: SourceConfig) -> str:
    """The `Record.source` of a configured source's records."""
    if isinstance(config, LogFileSource):
        return str(config.format)
    if isinstance(config, ContainerLogsSource):
        return "container_log"
    if isinstance(config, K8sEventsSource):
        return "k8s_event"
    if isinstance(config, JournaldSource):
        return "journald"
    if isinstance(config, EksCloudWatchSource):
        return "eks_audit"
    if isinstance(config, GkePubSubSource):
        return "gke_audit"
    return "k8s_audit"


#: how a silence alert names a source's records
_WHAT = {
    "k8s_audit": "audit events",
    "k8s_event": "Kubernetes Events",
    "container_log": "container logs",
    "journald": "journal entries",
    "aks_audit": "AKS audit logs",
    "eks_audit": "EKS audit logs",
    "gke_audit": "GKE audit logs",
    "ingress_nginx": "ingress-nginx access logs",
    "nginx_access": "nginx access logs",
    "envoy_access": "Envoy access logs",
    "hubble_flow": "Hubble flows",
}


def what(config: SourceConfig) -> str:
    return _WHAT.get(record_source(config), "records")


def live_source(
    source_id: str,
    config: SourceConfig,
    state_dir: Path,
    rejects: Rejects,
    *,
    batch_events: int,
) -> LiveSource | None:
    """The live source of `config`, or None for the audit webhook (a server)."""
    if isinstance(config, AuditFileConfig):
        from logwarden.sources.k8s_audit_file import K8sAuditFileSource

        return K8sAuditFileSource(
            source_id,
            config.path,
            state_dir,
            rejects,
            poll_interval_secs=config.poll_interval_secs,
            batch_events=batch_events,
        )
    if isinstance(config, LogFileSource):
        from logwarden.sources.log_file import LogFileSource as Tail
        from logwarden.sources.log_file import skip_for

        fmt = FORMATS[config.format]
        return Tail(
            source_id,
            config.path,
            state_dir,
            rejects,
            fmt=fmt,
            poll_interval_secs=config.poll_interval_secs,
            batch_events=batch_events,
            start_at=config.start_at,
            skip=skip_for(fmt),
        )
    if isinstance(config, ContainerLogsSource):
        from logwarden.sources.container_logs import (
            ContainerLogsSource as Pods,
        )

        return Pods(
            source_id,
            config.root,
            state_dir,
            rejects,
            include_namespaces=config.include_namespaces,
            exclude_namespaces=config.exclude_namespaces,
            multiline=config.multiline,
            poll_interval_secs=config.poll_interval_secs,
            batch_events=batch_events,
            start_at=config.start_at,
        )
    if isinstance(config, K8sEventsSource):
        from logwarden.sources.k8s_events import K8sEventsSource as Events

        return Events(
            source_id,
            state_dir,
            rejects,
            kubeconfig=config.kubeconfig,
            context=config.context,
            in_cluster=config.in_cluster,
            namespace=config.namespace,
            batch_events=batch_events,
        )
    if isinstance(config, JournaldSource):
        from logwarden.sources.journald import JournaldSource as Journal

        return Journal(
            source_id,
            state_dir,
            rejects,
            directory=config.directory,
            units=config.units,
            batch_events=batch_events,
            start_at=config.start_at,
        )
    if isinstance(config, EksCloudWatchSource):
        from logwarden.sources.eks_cloudwatch import EksCloudWatchSource as Eks

        return Eks(
            source_id,
            state_dir,
            rejects,
            log_group=config.log_group,
            region=config.region,
            log_stream_prefix=config.log_stream_prefix,
            endpoint_url=config.endpoint_url,
            poll_interval_secs=config.poll_interval_secs,
            lookback_secs=config.lookback_secs,
            batch_events=batch_events,
        )
    if isinstance(config, GkePubSubSource):
        from logwarden.sources.gke_pubsub import GkePubSubSource as PubSub

        return PubSub(
            source_id,
            state_dir,
            rejects,
            subscription=config.subscription,
            credentials_file=config.credentials_file,
            endpoint=config.endpoint,
            max_messages=config.max_messages,
            poll_interval_secs=config.poll_interval_secs,
            ack_deadline_secs=config.ack_deadline_secs,
            batch_events=batch_events,
        )
    return None
