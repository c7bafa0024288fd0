"""`logwarden generate`: configuration that closes K05 gaps, written rather than hand-edited.

    audit_policy         the kube-apiserver audit Policy (--audit-policy-file)
    webhook_kubeconfig   the kubeconfig of the apiserver's audit webhook
                         (--audit-webhook-config-file), pointing at `logwarden run`

Each module returns text; the command (`logwarden.cli.generate`) writes it out.
"""

from __future__ import annotations

from logwarden.generate.audit_policy import audit_policy, policy_rules
from logwarden.generate.webhook_kubeconfig import WebhookCredentials, webhook_kubeconfig

__all__ = ["WebhookCredentials", "audit_policy", "policy_rules", "webhook_kubeconfig"]
