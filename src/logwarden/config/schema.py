"""The schema of `logwarden.yaml`, the config file of `logwarden run`: one struct per section.

Every field has a type, a default and a description (`msgspec.Meta(description=...)`);
docs/configuration.md is generated from them (`logwarden.config.docs`). The defaults are
the embedded default: one process, listening on localhost only. Sources and receivers are
components under ids the user chooses, selected by `type:`; adding a type is adding a
struct to `SourceConfig` or `ReceiverConfig` (config/receivers.py); `alerts:` is in
config/alerting.py.

A struct that relates its fields to each other says what is wrong in `problems()`; the
loader reports those with everything else. Build a `Config` with `logwarden.config.load`,
which checks it, resolves paths and fills the defaults that depend on `data_dir`.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from logwarden.config._base import Found, _Section, _Source
from logwarden.config.alerting import AlertsConfig
from logwarden.config.checks import (
    HOST_PORT,
    ID,
    JSON_PATH,
    PATH,
    RULE_SPEC,
    URL_PATH,
)
from logwarden.config.receivers import ReceiverConfig, StdoutReceiver
from logwarden.config.sources import (
    ContainerLogsSource,
    EksCloudWatchSource,
    GkePubSubSource,
    JournaldSource,
    K8sEventsSource,
    LogFileSource,
)

__all__ = [
    "AlertsConfig",
    "Config",
    "DetectConfig",
    "K8sAuditFileSource",
    "K8sAuditWebhookSource",
    "LedgerConfig",
    "PipelineConfig",
    "ReceiverConfig",
    "RedactConfig",
    "ServiceConfig",
    "Severity",
    "SourceConfig",
]

#: Alert severities, most severe first (`logwarden.records.SEVERITIES`).
Severity = Literal["critical", "high", "medium", "low", "info"]

# ---------------------------------------------------------------------------- service


class ServiceConfig(_Section, frozen=True, kw_only=True):
    """The service's own HTTP endpoint and its log lines."""

    listen: Annotated[
        str,
        Meta(description="host:port of /metrics, /healthz and /readyz (plain HTTP)."),
        HOST_PORT,
    ] = "127.0.0.1:9095"
    log_format: Annotated[
        Literal["text", "json"],
        Meta(description="Log lines on stderr: text sentences, or one JSON object a line."),
    ] = "text"


# ---------------------------------------------------------------------------- sources


class K8sAuditWebhookSource(_Source, frozen=True, kw_only=True, tag="k8s_audit_webhook"):
    """kube-apiserver's audit webhook backend posts batches of audit events over HTTPS.

    Without `tls_cert_file` and `tls_key_file`, the service generates under `data_dir` a
    CA, a server certificate and a client certificate for the apiserver; then, unless
    `client_ca_file` or `bearer_token_file` is set, a client must present a certificate
    signed by that CA. With your own certificate, set `client_ca_file` (mTLS),
    `bearer_token_file`, or both; running with neither needs `allow_unauthenticated: true`.
    """

    listen: Annotated[
        str, Meta(description="host:port the HTTPS endpoint listens on."), HOST_PORT
    ] = "127.0.0.1:8443"
    path: Annotated[str, Meta(description="URL path events are posted to."), URL_PATH] = "/audit"
    tls_cert_file: Annotated[
        str | None,
        Meta(description="PEM server certificate (chain); set with tls_key_file, or neither."),
        PATH,
    ] = None
    tls_key_file: Annotated[
        str | None,
        Meta(description="PEM private key of tls_cert_file; set with it, or neither."),
        PATH,
    ] = None
    client_ca_file: Annotated[
        str | None,
        Meta(description="PEM CA certificates; clients must present a certificate they sign."),
        PATH,
    ] = None
    bearer_token_file: Annotated[
        str | None,
        Meta(description="File holding the token clients must send as 'Authorization: Bearer'."),
        PATH,
    ] = None
    allow_unauthenticated: Annotated[
        bool,
        Meta(
            description="Accept posts from anyone who reaches `listen` when neither "
            "client_ca_file nor bearer_token_file is set (and the certificate is your own)."
        ),
    ] = False
    max_body_bytes: Annotated[
        int,
        Meta(
            ge=1,
            description="Largest request body accepted (the apiserver's batch limit is 10 MiB).",
        ),
    ] = 10 << 20

    @property
    def generates_tls(self) -> bool:
        """No certificate given: the service generates its CA and certificates."""
        return self.tls_cert_file is None and self.tls_key_file is None

    def problems(self) -> Found:
        found: Found = []
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            lone, other = (
                ("tls_cert_file", "tls_key_file")
                if self.tls_key_file is None
                else ("tls_key_file", "tls_cert_file")
            )
            found.append(
                ((lone,), f"set {other} too, or neither to use a certificate generated in data_dir")
            )
        unauthenticated = self.client_ca_file is None and self.bearer_token_file is None
        if unauthenticated and not self.generates_tls and not self.allow_unauthenticated:
            found.append(
                (
                    (),
                    "no client authentication: set client_ca_file (mTLS) or bearer_token_file, "
                    "or allow_unauthenticated: true to accept anyone who can reach listen",
                )
            )
        return found


class K8sAuditFileSource(_Source, frozen=True, kw_only=True, tag="k8s_audit_file"):
    """Tails kube-apiserver's audit log (`--audit-log-path`) through rotation, resuming
    where it stopped after a restart."""

    path: Annotated[str, Meta(description="The audit log file to follow."), PATH]
    poll_interval_secs: Annotated[
        float, Meta(gt=0, description="How often the file is checked for new lines.")
    ] = 0.25


#: Every source type; `type:` selects one.
SourceConfig = (
    K8sAuditWebhookSource
    | K8sAuditFileSource
    | LogFileSource
    | ContainerLogsSource
    | K8sEventsSource
    | JournaldSource
    | EksCloudWatchSource
    | GkePubSubSource
)

# ---------------------------------------------------------------------------- stages


class RedactConfig(_Section, frozen=True, kw_only=True):
    """What is replaced in a record before anything stores or shows it. The values of a
    Secret's `data` and `stringData` always are; the record notes what was replaced."""

    extra_paths: Annotated[
        list[Annotated[str, JSON_PATH]],
        Meta(
            description="Further dot paths into an event whose values are replaced "
            "(requestObject.spec.password); a step that meets a list applies to each item."
        ),
    ] = msgspec.field(default_factory=list)


class LedgerConfig(_Section, frozen=True, kw_only=True):
    """The tamper-evident ledger every record is appended to before it is acknowledged."""

    path: Annotated[
        str, Meta(description="The ledger directory.", extra={"default": "<data_dir>/ledger"}), PATH
    ] = ""
    key_file: Annotated[
        str,
        Meta(
            description="Private key that signs checkpoints; generated on first start if absent.",
            extra={"default": "<data_dir>/ledger.key"},
        ),
        PATH,
    ] = ""
    anchor: Annotated[
        str | None,
        Meta(description="Directory sealed segments and checkpoints are copied to as they seal."),
        PATH,
    ] = None
    fsync: Annotated[
        Literal["always", "checkpoint"],
        Meta(
            description="always: every append is on disk before it is acknowledged; "
            "checkpoint: the disk is synced at each checkpoint."
        ),
    ] = "always"
    checkpoint_interval_secs: Annotated[
        float, Meta(gt=0, description="How often a signed checkpoint is written.")
    ] = 1.0
    segment_bytes: Annotated[
        int, Meta(ge=4096, description="Size at which a segment is sealed and a new one begun.")
    ] = 64 << 20


class DetectConfig(_Section, frozen=True, kw_only=True):
    """The rules run over every record (as `logwarden detect` runs them)."""

    rules: Annotated[
        list[Annotated[str, RULE_SPEC]],
        Meta(description="Rule set names (builtin, falco, sigma) or rules files and directories."),
    ] = msgspec.field(default_factory=lambda: ["builtin"])
    match: Annotated[
        Literal["first", "all"],
        Meta(
            description="first: at most one alert per event from Falco rules, from the first "
            "that matches (Falco's rule_matching; Sigma rules each alert on their own); "
            "all: one alert per matching rule."
        ),
    ] = "first"
    lateness_secs: Annotated[
        float,
        Meta(ge=0, description="How late events may arrive and still count in windows."),
    ] = 5.0
    suppress_secs: Annotated[
        float,
        Meta(
            ge=0,
            description="Fold repeats of one alert within this window, for rules that set no "
            "window of their own; 0: only rules' own windows.",
        ),
    ] = 0.0


# ---------------------------------------------------------------------------- pipeline


class PipelineConfig(_Section, frozen=True, kw_only=True):
    """The in-process queues between stages. They block when full (backpressure reaches
    the sources); nothing is dropped."""

    queue_events: Annotated[
        int, Meta(ge=1, description="Bound of each in-process queue, in events.")
    ] = 100_000
    batch_events: Annotated[
        int, Meta(ge=1, description="Most events a stage takes from its queue at once.")
    ] = 1024
    detect_worker: Annotated[
        bool,
        Meta(
            description="Run detection and the alert stage in a worker process of their own, "
            "on another core; false: in a thread of the service."
        ),
    ] = True

    def problems(self) -> Found:
        if self.batch_events > self.queue_events:
            return [(("batch_events",), f"must not exceed queue_events ({self.queue_events})")]
        return []


# ---------------------------------------------------------------------------- the file


def _default_sources() -> dict[str, SourceConfig]:
    return {"audit": K8sAuditWebhookSource()}


def _default_receivers() -> dict[str, ReceiverConfig]:
    return {"stdout": StdoutReceiver()}


class Config(_Section, frozen=True, kw_only=True):
    """The whole config file of `logwarden run`."""

    data_dir: Annotated[
        str,
        Meta(
            description="Where the ledger, the sources' positions and generated keys and "
            "certificates live."
        ),
        PATH,
    ] = "~/.local/state/logwarden"
    service: Annotated[
        ServiceConfig, Meta(description="The HTTP endpoint of the service and its logs.")
    ] = msgspec.field(default_factory=ServiceConfig)
    sources: Annotated[
        dict[Annotated[str, ID], SourceConfig],
        Meta(
            min_length=1,
            description="Where records come from, by id; each has a `type:`. At least one; "
            'default: one k8s_audit_webhook source, "audit", with its defaults.',
        ),
    ] = msgspec.field(default_factory=_default_sources)
    redact: Annotated[
        RedactConfig, Meta(description="What is redacted before a record is stored.")
    ] = msgspec.field(default_factory=RedactConfig)
    ledger: Annotated[
        LedgerConfig, Meta(description="Where and how records are stored tamper-evidently.")
    ] = msgspec.field(default_factory=LedgerConfig)
    detect: Annotated[DetectConfig, Meta(description="The rules records are checked against.")] = (
        msgspec.field(default_factory=DetectConfig)
    )
    receivers: Annotated[
        dict[Annotated[str, ID], ReceiverConfig],
        Meta(
            min_length=1,
            description="Where notifications go, by id; each has a `type:` "
            '(docs/notifiers.md). At least one; default: one stdout receiver, "stdout".',
        ),
    ] = msgspec.field(default_factory=_default_receivers)
    alerts: Annotated[
        AlertsConfig,
        Meta(description="Routing, grouping, inhibition and escalation of alerts, and their API."),
    ] = msgspec.field(default_factory=AlertsConfig)
    pipeline: Annotated[PipelineConfig, Meta(description="The queues between the stages.")] = (
        msgspec.field(default_factory=PipelineConfig)
    )

    def problems(self) -> Found:
        """Two endpoints on one address cannot both listen; routes and escalations name
        receivers that exist."""
        seen = {self.service.listen: "service.listen"}
        found: Found = []
        if self.alerts.api.enabled:
            seen.setdefault(self.alerts.api.listen, "alerts.api.listen")
        for where, receiver in self.alerts.receivers_named():
            if receiver not in self.receivers:
                known = ", ".join(self.receivers)
                found.append((("alerts", *where), f"no receiver '{receiver}' (receivers: {known})"))
        for name, source in self.sources.items():
            if not isinstance(source, K8sAuditWebhookSource):
                continue
            if source.listen in seen:
                where = ("sources", name, "listen")
                found.append((where, f"{source.listen} is also {seen[source.listen]}"))
            seen.setdefault(source.listen, f"sources.{name}.listen")
        return found
