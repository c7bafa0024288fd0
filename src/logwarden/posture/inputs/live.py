"""The live input: a cluster read through the official `kubernetes` client, read-only.

Only list calls are made (GET): nodes; the pods of kube-system (where a self-managed
cluster's kube-apiserver static pods show their flags); DaemonSets with their status;
Deployments and StatefulSets (to find monitoring); Roles, ClusterRoles and their bindings;
Ingresses; ConfigMaps of known logging components (by label); PrometheusRules when the
CRD exists. Responses are read as the API's own JSON (`_preload_content=False`), so the
checks see the same camelCase objects as in manifests. A call that fails (forbidden, not
found, unreachable) is reported as ``live: what: reason`` and counted; the scan goes on.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from logwarden.errors import InputError
from logwarden.posture.apiserver import apiservers
from logwarden.posture.inputs.documents import unpack_object
from logwarden.posture.inputs.nginx import NginxParser
from logwarden.posture.model import Inventory, K8sObject, LiveCluster

__all__ = ["collect_live"]

_TIMEOUT = 30
_LOGGING_APPS = "ingress-nginx,fluent-bit,fluentd,vector,promtail,falco,logwarden"
_PROVIDER_LABELS = (
    ("eks.amazonaws.com/", "eks"),
    ("kubernetes.azure.com/", "aks"),
    ("cloud.google.com/gke-", "gke"),
)


def _provider(nodes: list[dict[str, Any]]) -> str | None:
    for node in nodes:
        labels = (node.get("metadata") or {}).get("labels") or {}
        for prefix, provider in _PROVIDER_LABELS:
            if any(str(k).startswith(prefix) for k in labels):
                return provider
    return None


def collect_live(inv: Inventory, kubeconfig: str | None, context: str | None) -> None:
    """Read the cluster of `context` in `kubeconfig` (defaults as kubectl's) into `inv`."""
    from kubernetes import client
    from kubernetes import config as kube_config
    from kubernetes.config.config_exception import ConfigException

    config: Any = kube_config  # its loaders are untyped
    try:
        _, active = config.list_kube_config_contexts(config_file=kubeconfig)
        api = config.new_client_from_config(config_file=kubeconfig, context=context)
    except (ConfigException, OSError, ValueError, TypeError) as exc:
        raise InputError(f"kubeconfig: {exc}") from exc
    name = context or (active or {}).get("name", "") or "current-context"
    core = client.CoreV1Api(api)
    apps = client.AppsV1Api(api)
    rbac = client.RbacAuthorizationV1Api(api)
    net = client.NetworkingV1Api(api)
    custom = client.CustomObjectsApi(api)
    fetch = _Fetcher(inv)
    nodes = fetch.items("nodes", core.list_node)
    calls: list[tuple[str, Callable[..., Any], dict[str, Any]]] = [
        ("pods in kube-system", core.list_namespaced_pod, {"namespace": "kube-system"}),
        ("daemonsets", apps.list_daemon_set_for_all_namespaces, {}),
        ("deployments", apps.list_deployment_for_all_namespaces, {}),
        ("statefulsets", apps.list_stateful_set_for_all_namespaces, {}),
        ("clusterroles", rbac.list_cluster_role, {}),
        ("clusterrolebindings", rbac.list_cluster_role_binding, {}),
        ("roles", rbac.list_role_for_all_namespaces, {}),
        ("rolebindings", rbac.list_role_binding_for_all_namespaces, {}),
        ("ingresses", net.list_ingress_for_all_namespaces, {}),
        (
            "configmaps of logging components",
            core.list_config_map_for_all_namespaces,
            {"label_selector": f"app.kubernetes.io/name in ({_LOGGING_APPS})"},
        ),
    ]
    nginx = NginxParser()
    try:
        for label, call, kwargs in calls:
            for obj in fetch.objects(label, call, **kwargs):
                unpack_object(obj, inv, nginx)
        rules = fetch.objects(
            "prometheusrules",
            custom.list_cluster_custom_object,
            group="monitoring.coreos.com",
            version="v1",
            plural="prometheusrules",
            missing_ok=True,
        )
        inv.objects.extend(rules)
    finally:
        nginx.close()
    # visible: a kube-apiserver pod among what the API returned (a self-managed cluster)
    visible = any(s.source.file is None for s in apiservers(inv))
    inv.live = LiveCluster(name, nodes, _provider(nodes), control_plane_visible=visible)


class _Fetcher:
    """Makes list calls and turns their JSON into objects; reports what fails."""

    def __init__(self, inv: Inventory) -> None:
        self.inv = inv

    def _call(
        self, label: str, call: Callable[..., Any], missing_ok: bool = False, **kwargs: Any
    ) -> dict[str, Any] | None:
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        try:
            resp = call(_preload_content=False, _request_timeout=_TIMEOUT, **kwargs)
            data = json.loads(resp.data)
        except ApiException as exc:
            if missing_ok and exc.status == 404:
                return None
            self.inv.rejects.report(f"live: {label}", f"{exc.status} {exc.reason}".strip())
            return None
        except (HTTPError, OSError, ValueError) as exc:
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            self.inv.rejects.report(f"live: {label}", f"cannot read: {reason}")
            return None
        return data if isinstance(data, dict) else None

    def items(self, label: str, call: Callable[..., Any], **kwargs: Any) -> list[dict[str, Any]]:
        data = self._call(label, call, **kwargs)
        items = data.get("items") if data else None
        return [i for i in items or [] if isinstance(i, dict)]

    def objects(
        self, label: str, call: Callable[..., Any], missing_ok: bool = False, **kwargs: Any
    ) -> list[K8sObject]:
        data = self._call(label, call, missing_ok, **kwargs)
        if not data:
            return []
        kind = str(data.get("kind", "")).removesuffix("List")
        api_version = str(data.get("apiVersion", ""))
        out = []
        for item in data.get("items") or []:
            if not isinstance(item, dict):
                continue
            meta = item.get("metadata") or {}
            out.append(
                K8sObject(
                    data=item,
                    kind=str(item.get("kind") or kind),
                    api_version=str(item.get("apiVersion") or api_version),
                    name=str(meta.get("name", "")),
                    namespace=str(meta.get("namespace") or ""),
                )
            )
        return out
