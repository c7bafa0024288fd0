"""The `sources:` types beyond the audit webhook and audit file (schema.py): the other five
K05 sources, one struct per `type:` (docs/sources.md).

- `log_file`: any log file of a known format, followed through rotation (access logs of
  ingress-nginx, nginx or Envoy, Hubble flows, exported Events, journald JSON, cloud
  audit exports);
- `container_logs`: kubelet's pod log directory;
- `k8s_events`: Kubernetes Events through the API (list and watch);
- `journald`: the systemd journal through `journalctl`;
- `eks_cloudwatch`: EKS control-plane audit logs polled from CloudWatch Logs;
- `gke_pubsub`: GKE's Cloud Audit Logs from a Pub/Sub subscription.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from logwarden.config._base import _Source
from logwarden.config.checks import ID, PATH

__all__ = [
    "LOG_FILE_FORMATS",
    "ContainerLogsSource",
    "EksCloudWatchSource",
    "GkePubSubSource",
    "JournaldSource",
    "K8sEventsSource",
    "LogFileSource",
]

#: the formats a `log_file` source reads (normalize.FORMATS; container logs have their own
#: source type, since their path names the pod)
LOG_FILE_FORMATS = (
    "k8s_audit",
    "k8s_event",
    "journald",
    "aks_audit",
    "eks_audit",
    "gke_audit",
    "ingress_nginx",
    "nginx_access",
    "envoy_access",
    "hubble_flow",
)

_StartAt = Annotated[
    Literal["beginning", "end"],
    Meta(
        description="With no saved position: read what is there already (beginning), or only "
        "what comes after the start (end)."
    ),
]


class LogFileSource(_Source, frozen=True, kw_only=True, tag="log_file"):
    """Follows one log file of a known format through rotation (rename and gzip,
    logrotate, copytruncate), resuming exactly where it stopped."""

    path: Annotated[str, Meta(description="The log file to follow."), PATH]
    format: Annotated[
        Literal[LOG_FILE_FORMATS],  # type: ignore[valid-type]
        Meta(description="What the file holds (`logwarden detect --input` names the same)."),
    ]
    poll_interval_secs: Annotated[
        float, Meta(gt=0, description="How often the file is checked for new lines.")
    ] = 0.25
    start_at: _StartAt = "beginning"


class ContainerLogsSource(_Source, frozen=True, kw_only=True, tag="container_logs"):
    """kubelet's container logs (CRI or Docker json-file) under /var/log/pods: every pod's
    containers, partial lines and stack traces joined, rotation followed."""

    root: Annotated[str, Meta(description="The pod log directory."), PATH] = "/var/log/pods"
    include_namespaces: Annotated[
        list[str], Meta(description="Only these namespaces (empty: all).")
    ] = msgspec.field(default_factory=list)
    exclude_namespaces: Annotated[list[str], Meta(description="Not these namespaces.")] = (
        msgspec.field(default_factory=list)
    )
    multiline: Annotated[
        bool, Meta(description="Join the lines of Java, Python and Go stack traces.")
    ] = True
    poll_interval_secs: Annotated[
        float, Meta(gt=0, description="How often the directory and files are checked.")
    ] = 0.5
    start_at: _StartAt = "end"


class K8sEventsSource(_Source, frozen=True, kw_only=True, tag="k8s_events"):
    """Kubernetes Events (events.k8s.io/v1, else core/v1) listed and watched through the
    API, resuming from the last resourceVersion; repeats of a series are dropped."""

    kubeconfig: Annotated[
        str | None,
        Meta(description="Kubeconfig file (default: $KUBECONFIG, ~/.kube/config)."),
        PATH,
    ] = None
    context: Annotated[str | None, Meta(description="Kubeconfig context to use.")] = None
    in_cluster: Annotated[
        bool, Meta(description="Use the pod's service account instead of a kubeconfig.")
    ] = False
    namespace: Annotated[
        str | None, Meta(description="Only this namespace (default: all namespaces).")
    ] = None
    silence_after_secs: Annotated[
        float,
        Meta(ge=0, description="Alert when no Event comes for this long; 0 never alerts."),
    ] = 0.0


class JournaldSource(_Source, frozen=True, kw_only=True, tag="journald"):
    """The systemd journal, followed with `journalctl -o json --follow` from the last
    stored entry's cursor."""

    directory: Annotated[
        str | None,
        Meta(description="A journal directory (default: the system journal)."),
        PATH,
    ] = None
    units: Annotated[
        list[Annotated[str, ID]],
        Meta(description="Only these systemd units (journalctl -u; empty: all)."),
    ] = msgspec.field(default_factory=list)
    start_at: _StartAt = "end"


class EksCloudWatchSource(_Source, frozen=True, kw_only=True, tag="eks_cloudwatch"):
    """EKS control-plane audit logs, polled from CloudWatch Logs (FilterLogEvents) with
    the standard AWS credential chain."""

    log_group: Annotated[
        str, Meta(description="The cluster's log group, /aws/eks/<cluster>/cluster.")
    ]
    region: Annotated[str, Meta(description="The AWS region of the log group.")]
    log_stream_prefix: Annotated[str, Meta(description="Streams read (the audit log's).")] = (
        "kube-apiserver-audit"
    )
    endpoint_url: Annotated[
        str | None, Meta(description="Another CloudWatch Logs endpoint (a VPC endpoint).")
    ] = None
    poll_interval_secs: Annotated[
        float, Meta(gt=0, description="How often new log events are asked for.")
    ] = 10.0
    lookback_secs: Annotated[
        float, Meta(ge=0, description="How far back to start when there is no saved position.")
    ] = 300.0


class GkePubSubSource(_Source, frozen=True, kw_only=True, tag="gke_pubsub"):
    """GKE's Cloud Audit Logs from a Pub/Sub subscription a Cloud Logging sink publishes
    to; each message is acknowledged only once its entry is in the ledger."""

    subscription: Annotated[
        str, Meta(description="The subscription, projects/PROJECT/subscriptions/NAME.")
    ]
    credentials_file: Annotated[
        str | None,
        Meta(
            description="A service account key file (default: Application Default "
            "Credentials, e.g. GOOGLE_APPLICATION_CREDENTIALS or the node's identity)."
        ),
        PATH,
    ] = None
    endpoint: Annotated[
        str | None, Meta(description="Another Pub/Sub endpoint (a private endpoint).")
    ] = None
    max_messages: Annotated[
        int, Meta(ge=1, le=1000, description="Most messages one pull asks for.")
    ] = 500
    poll_interval_secs: Annotated[
        float, Meta(gt=0, description="How long to wait after a pull that brought nothing.")
    ] = 1.0
    ack_deadline_secs: Annotated[
        int,
        Meta(
            ge=10,
            le=600,
            description="The subscription's acknowledgement deadline (extended while a "
            "batch is being stored).",
        ),
    ] = 10
