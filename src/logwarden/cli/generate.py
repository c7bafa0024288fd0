"""`logwarden generate audit-policy|webhook-kubeconfig`: configuration that closes K05 gaps."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from logwarden.errors import UsageError
from logwarden.generate import WebhookCredentials, audit_policy, webhook_kubeconfig

__all__ = ["ORDER", "SUMMARY", "add_parser", "write_output"]

ORDER = 65
SUMMARY = "write the kube-apiserver audit policy and audit webhook kubeconfig"

_HELP = """\
Write configuration for kube-apiserver that makes it log what K05 asks for and send it
to `logwarden run`. Each action writes YAML to stdout, or to --output FILE.

  audit-policy         the audit Policy for --audit-policy-file
  webhook-kubeconfig   the kubeconfig for --audit-webhook-config-file

docs/generate.md explains every rule of the policy and the apiserver flags.
Exit status: 0 when the file was written, 2 on usage errors (bad arguments or files).
"""

_POLICY_HELP = """\
Write a kube-apiserver audit Policy (audit.k8s.io/v1), each rule commented with why it
is there. It logs failed authentications and anonymous requests; every access to
Secrets, ConfigMaps, TokenRequests and TokenReviews at Metadata, never their bodies
(--logging-namespace makes the one exception); exec, attach, port-forward and proxy;
changes to workloads, certificate requests, admission webhooks, CRDs and APIServices at
Request; changes to RBAC and namespaces at RequestResponse; Event deletions; every other
write at Request and every other request at Metadata. It omits the RequestReceived stage
and drops only routine traffic: reads by control-plane components, kubelets and
kube-system service accounts, the Events they write, health probes, and discovery reads
by authenticated clients. No other write and no failed authentication is dropped.
`logwarden scan` on the result reports no audit-policy finding.
"""

_WEBHOOK_HELP = """\
Write the kubeconfig kube-apiserver's --audit-webhook-config-file takes: the URL of
`logwarden run`'s audit webhook, the CA that signed its certificate, and the apiserver's
credentials, all embedded. logwarden refuses unauthenticated posts: give a client
certificate and key (mutual TLS), a bearer token, or both. Files are checked first: the
CA and certificate must be PEM certificates, the key an unencrypted PEM key matching the
certificate, the token one line. With --output the file is created mode 0600.
"""


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "generate",
        help=SUMMARY,
        description=_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = p.add_subparsers(dest="action", metavar="ACTION", title="actions")
    actions.required = True
    _add_policy(actions)
    _add_webhook(actions)


def _add_output(p: argparse.ArgumentParser) -> None:
    p.add_argument("--output", "-o", metavar="FILE", help="write to FILE instead of stdout")


def _add_policy(actions: Any) -> None:
    p = actions.add_parser(
        "audit-policy",
        help="the audit Policy for kube-apiserver --audit-policy-file",
        description=_POLICY_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--logging-namespace",
        action="append",
        default=[],
        metavar="NS",
        help="namespace of the logging pipeline (repeatable): log changes to its ConfigMaps "
        "with their body, not only their metadata (keep secrets out of these ConfigMaps)",
    )
    p.add_argument(
        "--keep-system-reads",
        action="store_true",
        help="also log get/list/watch by control-plane components, kubelets and kube-system "
        "service accounts (a much larger log)",
    )
    _add_output(p)
    p.set_defaults(run=_policy)


def _add_webhook(actions: Any) -> None:
    p = actions.add_parser(
        "webhook-kubeconfig",
        help="the kubeconfig for kube-apiserver --audit-webhook-config-file",
        description=_WEBHOOK_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--url",
        required=True,
        help="https URL of logwarden's audit webhook (https://HOST:PORT/audit)",
    )
    p.add_argument("--ca", metavar="FILE", help="PEM CA certificate(s) that signed logwarden's")
    p.add_argument("--client-cert", metavar="FILE", help="PEM client certificate of the apiserver")
    p.add_argument("--client-key", metavar="FILE", help="PEM private key of --client-cert")
    p.add_argument("--token-file", metavar="FILE", help="file holding a bearer token")
    _add_output(p)
    p.set_defaults(run=_webhook)


def _path(value: str | None) -> Path | None:
    return Path(value) if value is not None else None


def _policy(args: argparse.Namespace) -> int:
    text = audit_policy(
        logging_namespaces=args.logging_namespace, keep_system_reads=args.keep_system_reads
    )
    write_output(text, args.output, private=False)
    return 0


def _webhook(args: argparse.Namespace) -> int:
    creds = WebhookCredentials(
        ca=_path(args.ca),
        client_cert=_path(args.client_cert),
        client_key=_path(args.client_key),
        token_file=_path(args.token_file),
    )
    text = webhook_kubeconfig(args.url, creds)
    write_output(text, args.output, private=True)
    return 0


def write_output(text: str, output: str | None, *, private: bool) -> None:
    """Write `text` to stdout, or to the file `output` (mode 0600 when `private`)."""
    if output is None:
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    mode = 0o600 if private else 0o644
    try:
        fd = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            if private:
                os.fchmod(out.fileno(), mode)
            out.write(text)
    except OSError as exc:
        raise UsageError(f"--output {output}: cannot write: {exc.strerror or exc}") from None
    print(f"logwarden: wrote {output}", file=sys.stderr)
