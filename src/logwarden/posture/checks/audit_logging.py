"""Check group 1, audit logging on: a policy file and a backend, sane retention.

The kube-apiserver audits only with both `--audit-policy-file` and a backend
(`--audit-log-path`, where ``-`` is stdout, or `--audit-webhook-config-file`). Retention
flags of the log backend follow lumberjack's meaning: `--audit-log-maxage` and
`--audit-log-maxbackup` of 0 (or unset) mean unlimited, which is not a failure;
`--audit-log-maxsize` of 0 (or unset) means lumberjack's 100 MB.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

from logwarden.posture.apiserver import apiservers
from logwarden.posture.checks.base import Check
from logwarden.posture.model import ApiServer, Inventory
from logwarden.records import Finding

__all__ = ["CHECKS", "GROUP", "run"]

GROUP = "audit-logging"

NO_POLICY = Check(
    "LW-AUDIT-001",
    GROUP,
    "Audit logging off: no audit policy",
    "high",
    "Without --audit-policy-file the kube-apiserver writes no audit events at all: failed "
    "logins, secret reads, exec into pods and deletions leave no trace (K05: relevant "
    "events not logged; logging infrastructure disabled).",
    "Set --audit-policy-file to a policy that logs the K05 event classes (for example the "
    "one `logwarden generate audit-policy` writes) and mount it read-only into the "
    "kube-apiserver pod.",
)
NO_BACKEND = Check(
    "LW-AUDIT-002",
    GROUP,
    "Audit logging off: no audit backend",
    "high",
    "A policy without --audit-log-path or --audit-webhook-config-file sends the events "
    "nowhere: the apiserver evaluates the policy and drops every event.",
    "Set --audit-log-path (a file on a hostPath volume, or - for the container's stdout) "
    "and/or --audit-webhook-config-file pointing at a collector such as logwarden.",
)
SHORT_MAXAGE = Check(
    "LW-AUDIT-003",
    GROUP,
    "Audit logs deleted too soon",
    "medium",
    "--audit-log-maxage deletes rotated audit logs after that many days; intrusions are "
    "often found weeks later, and the trail is gone by then (K05: incident investigation).",
    "Set --audit-log-maxage=30 or more (0 keeps them without an age limit), or ship the "
    "log off the node and keep it there.",
)
FEW_BACKUPS = Check(
    "LW-AUDIT-004",
    GROUP,
    "Few rotated audit logs kept",
    "low",
    "--audit-log-maxbackup keeps only that many rotated files; on a busy apiserver they "
    "rotate many times a day, so the trail can be hours long whatever maxage says.",
    "Set --audit-log-maxbackup=10 or more (0 keeps all), or ship the log off the node.",
)
SMALL_MAXSIZE = Check(
    "LW-AUDIT-005",
    GROUP,
    "Audit log rotated while small",
    "low",
    "--audit-log-maxsize below 100 MB rotates often; together with maxbackup it bounds "
    "how much history stays on the node.",
    "Set --audit-log-maxsize=100 or more (0 or unset means 100 MB).",
)
UNBOUNDED = Check(
    "LW-AUDIT-006",
    GROUP,
    "Local audit log retention unbounded",
    "info",
    "With neither --audit-log-maxage nor --audit-log-maxbackup set (or both 0) rotated "
    "audit logs are never deleted: retention is complete, but a full control-plane disk "
    "stops the audit trail (and more) when nothing ships and prunes them.",
    "Keep it if a log shipper moves the files off the node and the disk is watched; "
    "otherwise set --audit-log-maxage=30 and --audit-log-maxbackup=10.",
)
WEBHOOK_ONLY = Check(
    "LW-AUDIT-007",
    GROUP,
    "Audit events go only to a webhook",
    "info",
    "With a webhook as the only backend, events are lost when the receiver is down long "
    "enough for --audit-webhook-batch-buffer-size to fill; there is no local copy.",
    "Also set --audit-log-path (a file on a hostPath volume) as a local copy, or make sure "
    "the receiver is highly available and alerts when it falls behind.",
)
NOT_MOUNTED = Check(
    "LW-AUDIT-008",
    GROUP,
    "Audit file not on a host volume",
    "medium",
    "The static pod reads --audit-policy-file and writes --audit-log-path inside its own "
    "container: a policy that is not mounted stops the apiserver from starting, and a log "
    "outside a hostPath volume is lost with the container and unseen by node log agents.",
    "Add hostPath volumes and volumeMounts for the policy file (read-only) and for the "
    "audit log directory, as the Kubernetes auditing documentation shows.",
)
POLICY_NOT_IN_INPUT = Check(
    "LW-AUDIT-009",
    GROUP,
    "Audit policy not in the scanned input",
    "info",
    "The apiserver names an audit policy file that is not among the scanned files, so "
    "what it logs cannot be simulated.",
    "Scan the policy file too (for example /etc/kubernetes/audit-policy.yaml), so "
    "logwarden can prove it logs the K05 event classes.",
)

CHECKS = (
    NO_POLICY,
    NO_BACKEND,
    SHORT_MAXAGE,
    FEW_BACKUPS,
    SMALL_MAXSIZE,
    UNBOUNDED,
    WEBHOOK_ONLY,
    NOT_MOUNTED,
    POLICY_NOT_IN_INPUT,
)


def _int(value: str | None) -> int | None:
    if value is None or value == "":
        return None
    try:
        return int(value)
    except ValueError:
        return None


def run(inv: Inventory) -> Iterator[Finding]:
    policy_names = {
        os.path.basename(o.file or "") for o in inv.of_kind("Policy") if o.file is not None
    }
    for server in apiservers(inv):
        yield from _check(server, policy_names)


def _check(server: ApiServer, policy_names: set[str]) -> Iterator[Finding]:
    flags = server.flags
    policy = flags.get("audit-policy-file", "")
    log_path = flags.get("audit-log-path", "")
    webhook = flags.get("audit-webhook-config-file", "")
    if not policy:
        what = "no --audit-policy-file"
        if not log_path and not webhook:
            what += " and no audit backend"
        yield NO_POLICY.at(server.where(), f"kube-apiserver runs with {what}: audit logging is off")
    elif not log_path and not webhook:
        yield NO_BACKEND.at(
            server.where("audit-policy-file"),
            "kube-apiserver has an audit policy but neither --audit-log-path nor "
            "--audit-webhook-config-file: every audit event is dropped",
        )
    if policy and os.path.basename(policy) not in policy_names:
        yield POLICY_NOT_IN_INPUT.at(
            server.where("audit-policy-file"),
            f"--audit-policy-file={policy} is not among the scanned files",
        )
    if webhook and not log_path:
        yield WEBHOOK_ONLY.at(
            server.where("audit-webhook-config-file"),
            f"audit events go only to the webhook in {webhook}",
        )
    if log_path and log_path != "-":
        yield from _retention(server)
    yield from _mounts(server, policy, log_path)


def _retention(server: ApiServer) -> Iterator[Finding]:
    maxage = _int(server.flags.get("audit-log-maxage"))
    maxbackup = _int(server.flags.get("audit-log-maxbackup"))
    maxsize = _int(server.flags.get("audit-log-maxsize"))
    if maxage is not None and 0 < maxage < 30:
        yield SHORT_MAXAGE.at(
            server.where("audit-log-maxage"),
            f"--audit-log-maxage={maxage}: rotated audit logs are deleted after {maxage} days",
        )
    if maxbackup is not None and 0 < maxbackup < 10:
        yield FEW_BACKUPS.at(
            server.where("audit-log-maxbackup"),
            f"--audit-log-maxbackup={maxbackup}: only {maxbackup} rotated audit logs are kept",
        )
    if maxsize is not None and 0 < maxsize < 100:
        yield SMALL_MAXSIZE.at(
            server.where("audit-log-maxsize"),
            f"--audit-log-maxsize={maxsize}: the audit log rotates every {maxsize} MB",
        )
    if not maxage and not maxbackup:
        yield UNBOUNDED.at(
            server.where("audit-log-path"),
            "--audit-log-maxage and --audit-log-maxbackup are unset or 0: rotated audit "
            "logs are kept without limit on the node",
        )


def _mounted(mounts: dict[str, str], path: str) -> str | None:
    """The kind of volume `path` lies on, or None if it is not under any mount."""
    best = ""
    for mount in mounts:
        if (path == mount or path.startswith(mount.rstrip("/") + "/")) and len(mount) > len(best):
            best = mount
    return mounts[best] if best else None


def _mounts(server: ApiServer, policy: str, log_path: str) -> Iterator[Finding]:
    if server.mounts is None:
        return
    if policy.startswith("/") and _mounted(server.mounts, policy) is None:
        yield NOT_MOUNTED.at(
            server.where("audit-policy-file"),
            f"--audit-policy-file={policy} is not under any volume mount of the container: "
            "the apiserver cannot read it",
            severity="high",
        )
    if log_path.startswith("/"):
        kind = _mounted(server.mounts, log_path)
        if kind is None or kind == "emptyDir":
            where = "not under any volume mount" if kind is None else "on an emptyDir volume"
            yield NOT_MOUNTED.at(
                server.where("audit-log-path"),
                f"--audit-log-path={log_path} is {where}: the audit log is lost with the "
                "container and node log agents cannot read it",
            )
