"""docs/configuration.md, generated from the schema: every section and field with its type,
default and meaning, after an example file.

Regenerate after changing the schema (a test fails until you do):

    python -m logwarden.config.docs > docs/configuration.md
"""

from __future__ import annotations

import inspect
import json
import sys
from typing import Any

import msgspec

from logwarden.config._types import Field, Spec, fields, is_struct, spec, struct_members, tag_of
from logwarden.config.schema import Config

__all__ = ["EXAMPLE", "render"]

#: The example at the top of the page (a test checks that it loads).
EXAMPLE = """\
# logwarden.yaml: the monitoring service of one cluster
data_dir: /var/lib/logwarden

service:
  listen: 0.0.0.0:9095            # Prometheus scrapes /metrics here
  log_format: json

sources:
  audit:                          # kube-apiserver's --audit-webhook-config-file points here
    type: k8s_audit_webhook
    listen: 0.0.0.0:8443
    tls_cert_file: /etc/logwarden/tls/server.crt
    tls_key_file: /etc/logwarden/tls/server.key
    client_ca_file: /etc/logwarden/tls/apiserver-client-ca.crt
  audit-log:                      # and its --audit-log-path, from the same host
    type: k8s_audit_file
    path: /var/log/kubernetes/audit/audit.log
    silence_after_secs: 600
  events:                         # Kubernetes Events, listed and watched
    type: k8s_events
    in_cluster: true
  pods:                           # every container's log, from kubelet's directory
    type: container_logs
    exclude_namespaces: [kube-system]
  node:                           # the node's journal: kubelet, the runtime, sshd, auditd
    type: journald
    units: [kubelet.service, containerd.service, ssh.service, auditd.service]
  ingress:                        # ingress-nginx's access log
    type: log_file
    path: /var/log/ingress-nginx/access.log
    format: ingress_nginx

redact:
  extra_paths:
    - requestObject.spec.password

ledger:
  anchor: /mnt/worm/logwarden     # write-once storage the sealed segments are copied to
  fsync: always

detect:
  rules: [builtin, falco, sigma, rules/local]   # rules/local: next to this file
  match: all
  suppress_secs: 300

receivers:
  console:
    type: stdout
  archive:
    type: file
    path: /var/log/logwarden/alerts.jsonl
  chat:
    type: slack
    url_file: /etc/logwarden/slack.url     # the incoming-webhook URL is a secret
  oncall:
    type: pagerduty
    routing_key_file: /etc/logwarden/pagerduty.key

alerts:
  route:
    receiver: archive
    group_by: [alertname, namespace]
    group_wait: 30s
    group_interval: 5m
    repeat_interval: 4h
    routes:
      - receiver: console
        continue: true
      - matchers: ['severity=~"critical|high"']
        receiver: chat
        escalation: oncall
  inhibit_rules:
    - source_matchers: ['alertname="Log Source Stopped Sending"']
      target_matchers: ['severity="low"']
      equal: [source]
  escalations:
    oncall:
      levels:
        - receivers: [chat]
          timeout: 15m
        - receivers: [oncall]
          timeout: 30m
      repeat: 1

pipeline:
  queue_events: 100000
  batch_events: 1024
"""

_INTRO = """\
# Configuration

<!-- Generated from src/logwarden/config/schema.py by
     `python -m logwarden.config.docs > docs/configuration.md`: edit the code, not this page. -->

`logwarden run --config logwarden.yaml` reads one YAML file. Without `--config` it runs on
the embedded defaults: one process, the audit webhook on `127.0.0.1:8443` with a
certificate it generates, `/metrics` on `127.0.0.1:9095`, alerts on stdout, the alerts
API on `https://127.0.0.1:9443/api/v1/`, the ledger
under `~/.local/state/logwarden`.

- `logwarden config check FILE` checks a file; `logwarden config show [FILE]` prints the
  configuration that would run, every default written out.
- Every key may be left out (it then has its default) unless it is marked required.
- Unknown keys are errors, and a wrong value is never coerced or ignored: the service
  refuses to start and names every problem at once, each with its line and path:

  ```
  logwarden.yaml:7: sources.audit.listen: expected host:port, got "8443"
  ```
- In paths `~` is expanded; a relative path is relative to the directory of the config
  file.
- Sources and receivers sit under ids you choose (letters, digits, `_`, `.`, `-`); the `type:`
  of each selects what it is.

## Example

```yaml
"""


def render() -> str:
    """The whole page."""
    parts = [_INTRO + EXAMPLE + "```\n", _top_level()]
    for f in fields(Config):
        if is_struct(f.spec.base):
            parts.append(_section(f.name, f.spec.base))
        elif f.spec.origin is dict and struct_members(f.spec.args[1]):
            parts.append(_components(f, struct_members(f.spec.args[1])))
    return "\n".join(parts)


def _top_level() -> str:
    lines = ["## Top level", ""]
    for f in fields(Config):
        if is_struct(f.spec.base) or f.spec.origin is dict:
            lines.append(f"- `{f.name}`: {f.spec.description} See [`{f.name}`](#{f.name}).")
        else:
            lines.append(_field(f))
    return "\n".join(lines) + "\n"


def _section(name: str, cls: type[msgspec.Struct], level: int = 2) -> str:
    """A section, and after it one sub-section per field that is a section (or a list or
    mapping of them) itself."""
    lines = [f"{'#' * level} `{name}`", "", _doc(cls), ""]
    subs = []
    for f in fields(cls):
        inner = _struct_of(f.spec)
        if inner is None:
            lines.append(_field(f))
        elif inner is cls:
            lines.append(f"- `{f.name}` (list of sections like this one): {f.spec.description}")
        else:
            lines.append(f"- `{f.name}`: {f.spec.description} See `{name}.{f.name}` below.")
            subs.append(_section(f"{name}.{f.name}", inner, min(level + 1, 4)))
    return "\n".join([*lines, "", *subs]).rstrip("\n") + "\n"


def _struct_of(s: Spec) -> type[msgspec.Struct] | None:
    """The struct a field holds: itself, or the items of its list or mapping."""
    if is_struct(s.base):
        return s.base  # type: ignore[no-any-return]
    inner = spec(s.args[-1]) if s.origin in (list, dict) and s.args else None
    return inner.base if inner is not None and is_struct(inner.base) else None


def _components(f: Field, members: tuple[type[msgspec.Struct], ...]) -> str:
    lines = [f"## `{f.name}`", "", f.spec.description, ""]
    names = ", ".join(f"`{tag_of(m)}`" for m in members)
    lines += [f"Types: {names}.", ""]
    for cls in members:
        lines += [f"### `type: {tag_of(cls)}`", "", _doc(cls), ""]
        lines += [_field(field) for field in fields(cls) if field.name != "type"]
        lines.append("")
    return "\n".join(lines)


def _doc(cls: type[msgspec.Struct]) -> str:
    return inspect.cleandoc(cls.__doc__ or "")


def _field(f: Field) -> str:
    when = "**required**" if f.required else f"default {_default(f)}"
    return f"- `{f.name}` ({_type(f.spec)}, {when}): {f.spec.description}"


def _default(f: Field) -> str:
    meta = f.spec.meta
    if meta is not None and meta.extra and "default" in meta.extra:
        return f"`{meta.extra['default']}`"
    value = f.default
    if value is None:
        return "none"
    if isinstance(value, float):
        return f"`{value:g}`"
    shown = f"`{json.dumps(msgspec.to_builtins(value))}`"
    if isinstance(value, int) and f.name.endswith("_bytes") and value >= 1 << 20:
        shown += f" ({value / (1 << 20):g} MiB)"
    return shown


def _type(s: Spec) -> str:
    name = _base_type(s)
    meta = s.meta
    if meta is not None:
        for attr, sign in (("gt", ">"), ("ge", "≥"), ("lt", "<"), ("le", "≤")):
            bound = getattr(meta, attr)
            if bound is not None:
                name += f" {sign} {bound}"
    return f"{name}, optional" if s.optional else name


def _base_type(s: Spec) -> str:
    if s.check is not None:
        return s.check.expected.removeprefix("a ").removeprefix("an ")
    names: dict[Any, str] = {str: "string", int: "integer", float: "number", bool: "boolean"}
    if s.base in names:
        return names[s.base]
    if s.origin is list:
        return f"list of ({_type(spec(s.args[0]))})"
    if s.origin is dict:
        return f"mapping of ({_type(spec(s.args[0]))}) to ({_type(spec(s.args[1]))})"
    values = " or ".join(json.dumps(a) for a in s.args)
    return values if len(s.args) > 1 else f"{values} (the only one so far)"


if __name__ == "__main__":
    sys.stdout.write(render())
