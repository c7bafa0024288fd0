"""Check group 4, workloads that throw their logs away: the seed's exploit.

Looked at: nginx `access_log off|/dev/null` and `error_log /dev/null|off` in nginx files, in
nginx configs kept in ConfigMaps and in ingress-nginx snippets; ingress-nginx's own
switches (`disable-access-log`, `disable-http-access-log`, `disable-stream-access-log`,
`access-log-path`, `http-access-log-path` or `stream-access-log-path` set to /dev/null,
the Ingress annotation `enable-access-log: "false"`, and the F5 NGINX Ingress
Controller's `access-log-off`); containers whose command sends stdout or stderr to
/dev/null; logs written to files on an emptyDir that nothing else reads; Docker's `none`
log driver (daemon.json, docker-compose, `--log-driver none`); and images whose
Dockerfile bakes any of this in (a COPY of such an nginx config, /dev/null log links).
An nginx log switched off inside a `location` block (typically a health check) silences
one path, not the server: it is reported at low severity. As nginx reads them, several
`access_log`s on one level all write, so one to /dev/null beside one that writes
somewhere is not reported, while `access_log off` cancels them all; `error_log off` is not
a switch but a file named `off` inside the container, and is reported.
"""

from __future__ import annotations

import fnmatch
import glob
import os
import re
from collections.abc import Iterator
from typing import Any

from logwarden.posture.checks.base import Check
from logwarden.posture.inputs.dockerfile import copy_sources
from logwarden.posture.model import Directive, Inventory, NginxConfig, Where, pod_specs
from logwarden.records import Finding

__all__ = ["CHECKS", "GROUP", "discarding_directives", "run"]

GROUP = "discarded-logs"

_WHY_ACCESS = (
    "Every request to this server, including an attacker's probing, leaves no access log: "
    "`kubectl logs` and every log pipeline see nothing (this is the K05 seed's exploit)."
)
NGINX_ACCESS = Check(
    "LW-DISCARD-001",
    GROUP,
    "nginx access log discarded",
    "high",
    _WHY_ACCESS,
    "Write the access log to the container's stdout: `access_log /dev/stdout;` (or "
    "`access_log /dev/stdout main;` to keep the format), as the official nginx image does.",
)
NGINX_ERROR = Check(
    "LW-DISCARD-002",
    GROUP,
    "nginx error log discarded",
    "high",
    "Errors, denied requests and upstream failures are written nowhere, so the traces of "
    "an attack on this server (and of its failures) are lost.",
    "Write the error log to stderr: `error_log /dev/stderr warn;`.",
)
INGRESS = Check(
    "LW-DISCARD-003",
    GROUP,
    "ingress-nginx access log disabled",
    "high",
    "The ingress controller is where requests enter the cluster: with its access log off "
    "there is no network log of who reached which service (K05's network logs).",
    'Remove `disable-access-log: "true"` / `enable-access-log: "false"` and keep '
    "access-log-path on the controller's stdout (its default).",
)
DEV_NULL_COMMAND = Check(
    "LW-DISCARD-004",
    GROUP,
    "Container output sent to /dev/null",
    "high",
    "What the process writes to stdout/stderr is what `kubectl logs` and node log agents "
    "collect; redirected to /dev/null it never reaches them.",
    "Remove the redirection; if the output is too noisy, lower the application's log "
    "level instead of discarding the stream.",
)
EMPTYDIR_LOGS = Check(
    "LW-DISCARD-005",
    GROUP,
    "Logs written to files on an emptyDir",
    "medium",
    "Log files on an emptyDir volume are invisible to `kubectl logs` and to node log "
    "agents (which read container stdout), and vanish with the pod.",
    "Log to stdout/stderr, or add a sidecar that tails the files to stdout (or ships "
    "them) by mounting the same volume.",
)
DOCKER_NONE = Check(
    "LW-DISCARD-006",
    GROUP,
    "Docker log driver none",
    "high",
    "With the `none` log driver Docker keeps no container output at all: `docker logs` is "
    "empty and nothing can ship it.",
    "Use the default `json-file` (or `local`, `journald`, `fluentd`) driver: "
    '`"log-driver": "json-file"`.',
)
IMAGE_DISCARDS = Check(
    "LW-DISCARD-007",
    GROUP,
    "Image built to discard logs",
    "high",
    "The image bakes the discarding in: every container started from it throws its logs "
    "away, whatever the Kubernetes manifests say.",
    "Fix the copied configuration (see the finding on that file) or link log files to "
    "/dev/stdout and /dev/stderr instead of /dev/null.",
)

CHECKS = (
    NGINX_ACCESS,
    NGINX_ERROR,
    INGRESS,
    DEV_NULL_COMMAND,
    EMPTYDIR_LOGS,
    DOCKER_NONE,
    IMAGE_DISCARDS,
)

_REDIRECT = re.compile(r"(?:^|[\s;&|(])(&|[12])?>>?\s*/dev/null\b")
_LOG_LINK = re.compile(r"\bln((?:\s+-[-\w]+)+)\s+/dev/null\s+(\S*log\S*)")
#: where images keep nginx configuration (/etc/nginx, openresty's and bitnami's nginx/conf)
_NGINX_CONF_DIR = re.compile(r"^/etc/nginx(/|$)|/nginx/conf(/|$)|/conf\.d/?$")
_NGINX_DISCARD_LINE = re.compile(
    r"""^\s*(?:access_log|error_log)\s+["']?(?:off|/dev/null)["']?\s*[;\s]"""
)
_LOG_PATH = re.compile(r"(^|/)(var/log|logs?)(/|$)")


def discarding_directives(cfg: NginxConfig) -> Iterator[tuple[Directive, Check]]:
    """The directives of `cfg` that throw logs away, with the check each one fails.

    As nginx reads them: several `access_log`s on one level all write, so one to
    /dev/null beside one that writes somewhere discards nothing, while `access_log off`
    cancels every `access_log` of its level. `error_log off` is not a switch: it writes to
    a file named `off`, inside the container, where no log agent reads it."""
    writing = {
        d.block
        for d in cfg.directives
        if d.name == "access_log" and d.args and d.args[0] not in ("off", "/dev/null")
    }
    for d in cfg.directives:
        target = d.args[0] if d.args else ""
        if d.name == "access_log" and (
            target == "off" or (target == "/dev/null" and d.block not in writing)
        ):
            yield d, NGINX_ACCESS
        elif d.name == "error_log" and target in ("/dev/null", "off"):
            yield d, NGINX_ERROR


def run(inv: Inventory) -> Iterator[Finding]:
    baked: dict[str, list[Directive]] = {}  # nginx files a Dockerfile may copy: what discards
    for cfg in inv.nginx:
        found = list(discarding_directives(cfg))
        if found and cfg.origin == "file" and cfg.file is not None:
            baked[os.path.realpath(cfg.file)] = [d for d, _ in found]
        for d, check in found:
            where = Where(cfg.file, d.line, cfg.object)
            inside = f" (in {cfg.object})" if cfg.object else ""
            if d.name == "error_log" and d.args[0] == "off":
                inside += " (not a switch: nginx writes a file named 'off')"
            if "location" in d.context:
                # one path only (often a health check): a blind spot, not a silenced server
                yield check.at(
                    where,
                    f"{d.name} {' '.join(d.args)} inside a location block{inside}: requests "
                    "to that location leave no trace",
                    severity="low",
                )
            else:
                yield check.at(where, f"{d.name} {' '.join(d.args)}{inside}")
    yield from _ingress(inv)
    yield from _containers(inv)
    yield from _docker(inv)
    yield from _dockerfiles(inv, baked)


#: ingress-nginx ConfigMap keys (and the F5 NGINX Ingress Controller's `access-log-off`)
#: that discard a log, with the severity: `stream` is TCP/UDP proxying only
_INGRESS_SWITCHES = (
    ("disable-access-log", "true", "high"),
    ("enable-access-log", "false", "high"),  # the annotation's name, also seen as a key
    ("disable-http-access-log", "true", "high"),
    ("disable-stream-access-log", "true", "medium"),
    ("access-log-off", "true", "high"),
    ("access-log-path", "/dev/null", "high"),
    ("http-access-log-path", "/dev/null", "high"),
    ("stream-access-log-path", "/dev/null", "medium"),
    ("error-log-path", "/dev/null", "high"),
)
#: what Go's strconv.ParseBool reads, as both controllers parse their booleans
_GO_BOOL = {
    **dict.fromkeys(("1", "t", "T", "TRUE", "true", "True"), "true"),
    **dict.fromkeys(("0", "f", "F", "FALSE", "false", "False"), "false"),
}


def _setting(value: object) -> str:
    text = str(value).strip()
    return _GO_BOOL.get(text, text)


def _ingress(inv: Inventory) -> Iterator[Finding]:
    for obj in inv.of_kind("ConfigMap"):
        data = obj.data.get("data")
        if not isinstance(data, dict):
            continue
        for key, bad, severity in _INGRESS_SWITCHES:
            if key in data and _setting(data[key]) == bad:
                yield INGRESS.at(
                    obj.where(("data", key)),
                    f'{key}: "{data[key]}" in {obj.ref}',
                    severity=severity,
                )
    for obj in inv.of_kind("Ingress"):
        meta = obj.data.get("metadata") or {}
        annotations = meta.get("annotations") if isinstance(meta, dict) else None
        key = "nginx.ingress.kubernetes.io/enable-access-log"
        if isinstance(annotations, dict) and _setting(annotations.get(key, "")) == "false":
            yield INGRESS.at(
                obj.where(("metadata", "annotations", key)), f'{key}: "{annotations[key]}"'
            )


def _strings(container: dict[str, Any]) -> Iterator[tuple[str, tuple[str, int]]]:
    for key in ("command", "args"):
        values = container.get(key)
        if isinstance(values, list):
            for i, value in enumerate(values):
                if isinstance(value, str):
                    yield value, (key, i)


def _redirect_severity(text: str) -> str | None:
    found = [m.group(1) or "1" for m in _REDIRECT.finditer(text)]
    if not found:
        return None
    if "&" in found or "1" in found:
        return "high"
    return "medium"  # stderr only


def _containers(inv: Inventory) -> Iterator[Finding]:
    for obj, spec, base in pod_specs(inv.objects):
        containers = [c for c in spec.get("containers") or [] if isinstance(c, dict)]
        for i, container in enumerate(containers):
            for text, (key, j) in _strings(container):
                severity = _redirect_severity(text)
                if severity:
                    path = (*base, "containers", i, key, j)
                    yield DEV_NULL_COMMAND.at(
                        obj.where(path),
                        f"container {container.get('name', i)!r} runs {text.strip()!r}",
                        severity=severity,
                    )
        yield from _emptydir(obj, spec, base, containers)


def _emptydir(
    obj: Any, spec: dict[str, Any], base: tuple[Any, ...], containers: list[Any]
) -> Iterator[Finding]:
    empty = {
        v.get("name") for v in spec.get("volumes") or [] if isinstance(v, dict) and "emptyDir" in v
    }
    if not empty:
        return
    users: dict[Any, int] = {}
    for container in containers + [
        c for c in spec.get("initContainers") or [] if isinstance(c, dict)
    ]:
        for m in {
            m.get("name") for m in container.get("volumeMounts") or [] if isinstance(m, dict)
        }:
            users[m] = users.get(m, 0) + 1
    for i, container in enumerate(containers):
        for j, mount in enumerate(container.get("volumeMounts") or []):
            if not isinstance(mount, dict) or mount.get("name") not in empty:
                continue
            path = str(mount.get("mountPath", ""))
            if _LOG_PATH.search(path.lstrip("/")) and users.get(mount["name"], 0) < 2:
                yield EMPTYDIR_LOGS.at(
                    obj.where((*base, "containers", i, "volumeMounts", j)),
                    f"container {container.get('name', i)!r} writes logs under {path} on "
                    f"emptyDir volume {mount['name']!r}, which no other container reads",
                )


def _docker(inv: Inventory) -> Iterator[Finding]:
    for doc in inv.daemon_json:
        if str(doc.data.get("log-driver", "")).lower() == "none":
            yield DOCKER_NONE.at(doc.where(("log-driver",)), '"log-driver": "none" in daemon.json')
    for doc in inv.compose:
        for name, service in doc.data["services"].items():
            logging = service.get("logging") if isinstance(service, dict) else None
            if isinstance(logging, dict) and str(logging.get("driver", "")).lower() == "none":
                yield DOCKER_NONE.at(
                    doc.where(("services", name, "logging", "driver")),
                    f"service {name!r} uses logging driver none",
                )
    for hit in inv.texts:
        if hit.kind == "log-driver-none":
            yield DOCKER_NONE.at(Where(hit.file, hit.line), hit.text)


def _dockerfiles(inv: Inventory, discarding: dict[str, list[Directive]]) -> Iterator[Finding]:
    for df in inv.dockerfiles:
        for ins in df.instructions:
            where = Where(df.file, ins.line)
            body = [(ins.body_line + i, text) for i, text in enumerate(ins.heredoc)]
            if ins.name in ("COPY", "ADD"):
                for src, bad in _copied(df.file, ins.value, discarding):
                    lines = ", ".join(f"{d.name} {' '.join(d.args)} (line {d.line})" for d in bad)
                    yield IMAGE_DISCARDS.at(where, f"{ins.name} {src} bakes in {lines}")
                for line, text in body:  # a configuration written by a here-document
                    if _NGINX_DISCARD_LINE.search(text):
                        yield IMAGE_DISCARDS.at(
                            Where(df.file, line), f"{ins.name} here-document: {text.strip()}"
                        )
            elif ins.name == "RUN":
                for line, text in [(ins.line, ins.value), *body]:
                    for target in _log_links(text):
                        yield IMAGE_DISCARDS.at(
                            Where(df.file, line), f"links {target} to /dev/null"
                        )
            elif ins.name in ("CMD", "ENTRYPOINT") and (severity := _redirect_severity(ins.value)):
                yield DEV_NULL_COMMAND.at(
                    where, f"{ins.name} {ins.value.strip()}", severity=severity
                )


def _log_links(text: str) -> Iterator[str]:
    """The log files `text` links to /dev/null with `ln -s` (`-sf`, `-s -f`, `--symbolic`)."""
    for m in _LOG_LINK.finditer(text):
        options = m.group(1).split()
        if any(o == "--symbolic" or (not o.startswith("--") and "s" in o) for o in options):
            yield m.group(2)


def _copied(
    dockerfile: str, value: str, discarding: dict[str, list[Directive]]
) -> Iterator[tuple[str, list[Directive]]]:
    """The discarding nginx files a COPY or ADD takes into the image: a file by its path,
    and, when the destination is nginx's, the files of a directory or glob."""
    parsed = copy_sources(value)
    if parsed is None:
        return
    sources, destination = parsed
    whole = _NGINX_CONF_DIR.search(destination) is not None  # a directory or glob, too
    roots = []
    here = os.path.dirname(os.path.realpath(dockerfile))
    for _ in range(4):  # the build context is the Dockerfile's directory or an ancestor
        roots.append(here)
        here = os.path.dirname(here)
    for src in sources:
        if "\x00" in src:
            continue  # not a path: the Dockerfile is broken, and Docker says so
        for root in roots:
            full = os.path.realpath(os.path.join(root, src))
            if full in discarding:
                yield src, discarding[full]
                break
            if not whole:
                continue
            if glob.has_magic(src):
                pattern = os.path.normpath(os.path.join(root, src))
                matched = sorted(k for k in discarding if fnmatch.fnmatchcase(k, pattern))
            elif os.path.isdir(full):
                matched = sorted(k for k in discarding if k.startswith(full + os.sep))
            else:
                continue
            for key in matched:
                yield os.path.relpath(key, root), discarding[key]
            if matched:
                break
