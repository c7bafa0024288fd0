"""Managed clusters' logging settings from the clouds' own JSON and from Terraform.

JSON, as the clouds' CLIs print it:

* EKS: `aws eks describe-cluster` (``{"cluster": {..., "logging": {"clusterLogging": [...]}}}``);
* AKS: `az aks show` (the cluster) and `az monitor diagnostic-settings list --resource ID`
  (a list, or ``{"value": [...]}``, of settings with their `logs` categories);
* GKE: `gcloud container clusters describe --format=json` (`loggingService`, `loggingConfig`).

Terraform (`.tf`, parsed by python-hcl2): `aws_eks_cluster.enabled_cluster_log_types`,
`azurerm_kubernetes_cluster` with `azurerm_monitor_diagnostic_setting`, and
`google_container_cluster.logging_service` / `logging_config`.
"""

from __future__ import annotations

import re
from typing import Any

from logwarden.posture.inputs.shapes import field_name
from logwarden.posture.model import CloudDoc, Inventory, Located, Where

__all__ = ["classify", "classify_list", "from_terraform"]

_A: dict[type, str] = {list: "a list", dict: "a mapping"}


def _expect(value: Any, kind: type, where: Where, name: str, inv: Inventory) -> Any:
    """`value` when it is a `kind` or absent; otherwise None, reported as file:line: field."""
    if value is None or isinstance(value, kind):
        return value
    place = f"{where.file}:{where.line}" if where.line else str(where.file)
    inv.rejects.report(place, f"{name}: expected {_A[kind]}, got {type(value).__name__}")
    return None


def _field(
    value: Any, kind: type, doc: Located, path: tuple[str | int, ...], inv: Inventory
) -> Any:
    return _expect(value, kind, doc.where(path), field_name(path), inv)


def classify(doc: Located, inv: Inventory) -> None:
    """Add `doc` to `inv.cloud` when it is one of the clouds' cluster descriptions."""
    data = doc.data
    if isinstance(data.get("value"), list):
        classify_list(Located(data["value"], doc.file, _child(doc, "value")), inv)
        return
    cluster = data.get("cluster") if isinstance(data.get("cluster"), dict) else None
    if cluster is not None and ("logging" in cluster or ":eks:" in str(cluster.get("arn", ""))):
        _eks(cluster, doc, ("cluster",), inv)
    elif "logging" in data and ":eks:" in str(data.get("arn", "")):
        _eks(data, doc, (), inv)
    elif str(data.get("type", "")).lower() == "microsoft.containerservice/managedclusters":
        inv.cloud.append(
            CloudDoc("aks", str(data.get("name", "")), doc.where(("name",)), {"id": data.get("id")})
        )
    elif _is_diagnostic_setting(data):
        _aks_setting(data, doc.where(), inv)
    elif "loggingService" in data or (
        "loggingConfig" in data and ("selfLink" in data or "nodePools" in data)
    ):
        errors = inv.rejects.count
        base: tuple[str, ...] = ("loggingConfig",)
        config = _field(data.get("loggingConfig"), dict, doc, base, inv) or {}
        part = _field(config.get("componentConfig"), dict, doc, (*base, "componentConfig"), inv)
        path = (*base, "componentConfig", "enableComponents")
        components = _field((part or {}).get("enableComponents"), list, doc, path, inv)
        if inv.rejects.count > errors:  # a field of the wrong type: reported, not judged
            return
        path = ("loggingConfig",) if "loggingConfig" in data else ("loggingService",)
        inv.cloud.append(
            CloudDoc(
                "gke",
                str(data.get("name", "")),
                doc.where(path),
                {"logging_service": data.get("loggingService"), "components": components},
            )
        )


def classify_list(doc: Located, inv: Inventory) -> None:
    """A JSON list at the top of a file: diagnostic settings as `az` prints them."""
    for i, item in enumerate(doc.data):
        if isinstance(item, dict) and _is_diagnostic_setting(item):
            _aks_setting(item, doc.where((i,)), inv)


def _child(doc: Located, key: str) -> Any:
    node = doc.node
    if node is None:
        return None
    for k, v in getattr(node, "value", []):
        if getattr(k, "value", None) == key:
            return v
    return None


def _eks(cluster: dict[str, Any], doc: Located, base: tuple[str, ...], inv: Inventory) -> None:
    errors = inv.rejects.count
    enabled: set[str] = set()
    logging = _field(cluster.get("logging"), dict, doc, (*base, "logging"), inv)
    path = (*base, "logging", "clusterLogging")
    entries = _field((logging or {}).get("clusterLogging"), list, doc, path, inv)
    for i, entry in enumerate(entries or []):
        if isinstance(entry, dict) and entry.get("enabled"):
            types = _field(entry.get("types"), list, doc, (*path, i, "types"), inv)
            enabled.update(str(t) for t in types or [])
    if inv.rejects.count > errors:  # a field of the wrong type: reported, not judged
        return
    name = str(cluster.get("name", ""))
    path = (*base, "logging") if isinstance(logging, dict) else base
    inv.cloud.append(CloudDoc("eks", name, doc.where(path), {"enabled_types": enabled}))


def _props(data: dict[str, Any]) -> dict[str, Any]:
    props = data.get("properties")
    return props if isinstance(props, dict) else data


def _is_diagnostic_setting(data: dict[str, Any]) -> bool:
    if "diagnosticsettings" in str(data.get("type", "")).lower():
        return True
    props = _props(data)
    logs = props.get("logs")
    return isinstance(logs, list) and any(
        isinstance(entry, dict) and ("category" in entry or "categoryGroup" in entry)
        for entry in logs
    )


def _aks_setting(data: dict[str, Any], where: Where, inv: Inventory) -> None:
    props = _props(data)
    categories: set[str] = set()
    logs = _expect(props.get("logs"), list, where, "logs", inv)
    if props.get("logs") is not None and logs is None:  # reported, not judged
        return
    for entry in logs or []:
        if isinstance(entry, dict) and entry.get("enabled", True):
            for key in ("category", "categoryGroup"):
                if entry.get(key):
                    categories.add(str(entry[key]))
    target = str(data.get("id", "")).split("/providers/microsoft.insights", 1)[0]
    target = target.split("/providers/Microsoft.Insights", 1)[0]
    cluster = target.rsplit("/", 1)[-1] if "managedclusters" in target.lower() else ""
    inv.cloud.append(
        CloudDoc(
            "aks-diagnostics",
            str(data.get("name", "")),
            where,
            {"categories": categories, "cluster": cluster},
        )
    )


def _line_of(text: str, pattern: str, start: int = 0) -> int | None:
    m = re.compile(pattern, re.MULTILINE).search(text, start)
    return text.count("\n", 0, m.start()) + 1 if m else None


def _block_start(text: str, rtype: str, name: str) -> int:
    m = re.search(rf'^\s*resource\s+"{rtype}"\s+"{re.escape(name)}"', text, re.MULTILINE)
    return m.start() if m else 0


def from_terraform(path: str, text: str, data: dict[str, Any], inv: Inventory) -> None:
    """Add the managed clusters and diagnostic settings declared in one `.tf` file."""
    for block in data.get("resource") or []:
        for rtype, named in (block or {}).items():
            for name, body in (named or {}).items():
                if isinstance(body, dict):
                    _tf_resource(path, text, rtype, name, body, inv)


def _tf_resource(
    path: str, text: str, rtype: str, name: str, body: dict[str, Any], inv: Inventory
) -> None:
    start = _block_start(text, rtype, name)
    head = _line_of(text, r"^", start) or 1
    obj = f"{rtype}.{name}"

    def where(attr: str) -> Where:
        return Where(path, _line_of(text, rf"^\s*{attr}\b", start) or head, obj)

    errors = inv.rejects.count
    found: CloudDoc | None = None
    if rtype == "aws_eks_cluster":
        attr = "enabled_cluster_log_types"
        types = _expect(body.get(attr), list, where(attr), f"{obj}.{attr}", inv)
        found = CloudDoc("eks", obj, where(attr), {"enabled_types": {str(t) for t in types or []}})
    elif rtype == "azurerm_kubernetes_cluster":
        found = CloudDoc("aks", name, Where(path, head, obj), {"id": f"{obj}.id"})
    elif rtype == "azurerm_monitor_diagnostic_setting":
        categories: set[str] = set()
        for key in ("enabled_log", "log"):
            for entry in _expect(body.get(key), list, where(key), f"{obj}.{key}", inv) or []:
                if isinstance(entry, dict) and entry.get("enabled", True) is not False:
                    for attr in ("category", "category_group"):
                        if entry.get(attr):
                            categories.add(str(entry[attr]))
        target = str(body.get("target_resource_id", ""))
        m = re.search(r"azurerm_kubernetes_cluster\.([\w-]+)", target)
        facts = {"categories": categories, "cluster": m.group(1) if m else ""}
        found = CloudDoc("aks-diagnostics", obj, Where(path, head, obj), facts)
    elif rtype == "google_container_cluster":
        config = body.get("logging_config")
        components = None
        if isinstance(config, list) and config and isinstance(config[0], dict):
            components = config[0].get("enable_components")
        attr = "logging_config" if config is not None else "logging_service"
        facts = {"logging_service": body.get("logging_service"), "components": components}
        found = CloudDoc("gke", obj, where(attr), facts)
    if found is not None and inv.rejects.count == errors:  # a bad field: reported, not judged
        inv.cloud.append(found)
