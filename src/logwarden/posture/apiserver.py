"""kube-apiserver and kubelet settings, wherever the inputs hold them.

A kube-apiserver is a container that runs the `kube-apiserver` binary (by its command,
its first argument or its image) in any pod-bearing object, usually the static pod
manifest `/etc/kubernetes/manifests/kube-apiserver.yaml`, or the `apiServer` section of a
kubeadm `ClusterConfiguration` (`extraArgs` as a map, v1beta3, or a list, v1beta4). Flags
are read from `command` and `args` together, as ``--flag=value`` or ``--flag value``, and
from shell strings (``sh -c "kube-apiserver --flag=value"``).
"""

from __future__ import annotations

import shlex
from collections.abc import Iterator
from typing import Any

from logwarden.posture.model import ApiServer, Inventory, K8sObject, pod_specs

__all__ = ["KUBEADM_MOUNTS", "apiservers", "flags_of", "kubelet_settings"]

#: the host paths kubeadm always mounts into its kube-apiserver static pod
KUBEADM_MOUNTS = {
    "/etc/kubernetes/pki": "hostPath",
    "/etc/ssl/certs": "hostPath",
    "/etc/ca-certificates": "hostPath",
    "/usr/share/ca-certificates": "hostPath",
    "/usr/local/share/ca-certificates": "hostPath",
    "/etc/pki": "hostPath",
}


def _tokens(container: dict[str, Any]) -> Iterator[tuple[str, tuple[str, int]]]:
    for key in ("command", "args"):
        values = container.get(key)
        if not isinstance(values, list):
            continue
        for i, value in enumerate(values):
            if not isinstance(value, str):
                continue
            if " " in value.strip() and ("--" in value or "kube-" in value):
                try:
                    parts = shlex.split(value)
                except ValueError:
                    parts = value.split()
                for part in parts:
                    yield part, (key, i)
            else:
                yield value, (key, i)


def flags_of(
    container: dict[str, Any], binary: str
) -> tuple[bool, dict[str, str], dict[str, tuple[str, int]]]:
    """Whether `container` runs `binary`, and its ``--flags`` with where each one is."""
    tokens = list(_tokens(container))
    runs = any(t.rsplit("/", 1)[-1] == binary for t, _ in tokens) or (
        binary in str(container.get("image", "")) and not container.get("command")
    )
    flags: dict[str, str] = {}
    where: dict[str, tuple[str, int]] = {}
    for i, (token, pos) in enumerate(tokens):
        if not token.startswith("--"):
            continue
        name, eq, value = token[2:].partition("=")
        following = tokens[i + 1][0] if i + 1 < len(tokens) else None
        if not eq and following is not None and (following == "-" or following[:1] != "-"):
            value = following  # `--flag value`; `-` is a value (stdout), not a flag
        flags[name] = value
        where[name] = pos
    return runs, flags, where


def apiservers(inv: Inventory) -> list[ApiServer]:
    """Every kube-apiserver configuration in the inputs."""
    out: list[ApiServer] = []
    for obj, spec, base in pod_specs(inv.objects):
        volumes = {
            v.get("name"): next((k for k in v if k != "name"), "")
            for v in spec.get("volumes") or []
            if isinstance(v, dict)
        }
        for i, container in enumerate(spec.get("containers") or []):
            if not isinstance(container, dict):
                continue
            runs, flags, where = flags_of(container, "kube-apiserver")
            if not runs:
                continue
            cpath = (*base, "containers", i)
            mounts = {
                str(m.get("mountPath", "")).rstrip("/") or "/": volumes.get(m.get("name"), "")
                for m in container.get("volumeMounts") or []
                if isinstance(m, dict)
            }
            out.append(
                ApiServer(
                    source=obj,
                    flags=flags,
                    flag_paths={k: (*cpath, *v) for k, v in where.items()},
                    base_path=cpath,
                    mounts=mounts,
                )
            )
    for obj in inv.of_kind("ClusterConfiguration"):
        server = _kubeadm(obj)
        if server is not None:
            out.append(server)
    return out


def _kubeadm(obj: K8sObject) -> ApiServer | None:
    section = obj.data.get("apiServer")
    section = section if isinstance(section, dict) else {}
    raw = section.get("extraArgs")
    flags: dict[str, str] = {}
    paths: dict[str, tuple[str | int, ...]] = {}  # flag -> path in the object
    if isinstance(raw, dict):
        for k, v in raw.items():
            flags[str(k)] = str(v)
            paths[str(k)] = ("apiServer", "extraArgs", str(k))
    elif isinstance(raw, list):
        for i, item in enumerate(raw):
            if isinstance(item, dict) and "name" in item:
                flags[str(item["name"])] = str(item.get("value", ""))
                paths[str(item["name"])] = ("apiServer", "extraArgs", i)
    mounts = dict(KUBEADM_MOUNTS)
    for vol in section.get("extraVolumes") or []:
        if isinstance(vol, dict) and vol.get("mountPath"):
            mounts[str(vol["mountPath"]).rstrip("/")] = "hostPath"
    base = ("apiServer",) if "apiServer" in obj.data else ()
    return ApiServer(obj, flags, paths, base, mounts)


def kubelet_settings(
    inv: Inventory,
) -> Iterator[tuple[K8sObject, str, Any, tuple[str | int, ...]]]:
    """(object, setting, value, path) for the kubelet's event settings in the inputs:
    `KubeletConfiguration` fields and kubeadm's `kubeletExtraArgs`, as config names."""
    for obj in inv.of_kind("KubeletConfiguration"):
        for key in ("eventRecordQPS", "eventBurst"):
            if key in obj.data:
                yield obj, key, obj.data[key], (key,)
    for obj in inv.of_kind("InitConfiguration", "JoinConfiguration"):
        reg = obj.data.get("nodeRegistration")
        args = reg.get("kubeletExtraArgs") if isinstance(reg, dict) else None
        pairs: list[tuple[str, Any, tuple[str | int, ...]]] = []
        if isinstance(args, dict):
            pairs = [(str(k), v, (str(k),)) for k, v in args.items()]
        elif isinstance(args, list):
            pairs = [
                (str(a.get("name")), a.get("value"), (i,))
                for i, a in enumerate(args)
                if isinstance(a, dict)
            ]
        for name, value, sub in pairs:
            if name in ("event-qps", "event-burst"):
                key = "eventRecordQPS" if name == "event-qps" else "eventBurst"
                path = ("nodeRegistration", "kubeletExtraArgs", *sub)
                yield obj, key, value, path
