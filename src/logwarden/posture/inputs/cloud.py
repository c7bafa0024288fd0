"""Managed clusters' logging settings from the clouds' own JSON and from Terraform.

JSON, as the clouds' CLIs print it:

* EKS: `aws eks describe-cluster` (``{"cluster": {..., "logging": {"clusterLogging": [...]}}}``);
* AKS: `az aks show` (the cluster) and `az monitor diagnostic-settings list --resource ID`
  (a list, or ``{"value": [...]}``, of settings with their `logs` categories);
* GKE: `gcloud container clusters describe --format=json` (`loggingService`, `loggingConfig`).

Terraform (`.tf`, parsed by python-hcl2): `aws_eks_cluster.enabled_cluster_log_types`,
`azurerm_kubernetes_cluster` with `azurerm_monitor_diagnostic_setting` (its `enabled_log`
and `log` blocks, and `dynamic` ones iterating over a literal list), and
`google_container_cluster.logging_service` / `logging_config`. A value Terraform computes
(`var.log_types`, a `for_each` over a variable) is not in the file: it is noted, and the
setting is not judged on it.
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


def _line_of(text: str, pattern: str, start: int = 0, end: int | None = None) -> int | None:
    m = re.compile(pattern, re.MULTILINE).search(text, start, len(text) if end is None else end)
    return text.count("\n", 0, m.start()) + 1 if m else None


#: the next top-level block (unindented, opening a brace: not a `provider = ...` argument)
_TOP_BLOCK = re.compile(
    r"^(?:resource|data|module|variable|output|locals|provider|terraform|moved|import|check|"
    r"removed)\b[^=\n]*\{",
    re.MULTILINE,
)


def _block_span(text: str, rtype: str, name: str) -> tuple[int, int]:
    """Where the block of resource `rtype.name` starts, and where the next block does."""
    m = re.search(rf'^\s*resource\s+"{rtype}"\s+"{re.escape(name)}"', text, re.MULTILINE)
    start = m.start() if m else 0
    after = _TOP_BLOCK.search(text, m.end()) if m else None
    return start, after.start() if after else len(text)


def _expression(value: Any) -> bool:
    """A value Terraform computes (`var.x`, `local.y`, a function): unknown to the scan."""
    return isinstance(value, str) and "${" in value


#: `toset([...])` / `tolist([...])` of literal strings, the usual `for_each`
_LITERAL_SET = re.compile(r'^\$\{to(?:set|list)\(\[((?:\s*"[^"$]*"\s*,?)*)\]\)\}$')


def _literal_list(value: Any) -> list[str] | None:
    """The strings of a literal list (or `toset([...])` of literal strings); None when
    Terraform computes them."""
    if isinstance(value, list):
        return None if any(_expression(v) for v in value) else [str(v) for v in value]
    if isinstance(value, str) and (m := _LITERAL_SET.match(value)):
        return re.findall(r'"([^"]*)"', m.group(1))
    return None


def from_terraform(path: str, text: str, data: dict[str, Any], inv: Inventory) -> None:
    """Add the managed clusters and diagnostic settings declared in one `.tf` file. A
    setting Terraform computes (`var.x`, a function of other resources) is noted and not
    judged: its value is not in the file."""
    for block in data.get("resource") or []:
        for rtype, named in (block or {}).items():
            for name, body in (named or {}).items():
                if isinstance(body, dict):
                    _tf_resource(path, text, rtype, name, body, inv)


def _tf_resource(
    path: str, text: str, rtype: str, name: str, body: dict[str, Any], inv: Inventory
) -> None:
    start, end = _block_span(text, rtype, name)
    head = _line_of(text, r"^", start) or 1
    obj = f"{rtype}.{name}"

    def where(attr: str) -> Where:
        return Where(path, _line_of(text, rf"^\s*{attr}\b", start, end) or head, obj)

    def computed(attr: str) -> None:
        inv.notes.append(
            f"{path}:{where(attr).line}: {obj}.{attr} is computed by Terraform: what it "
            "sets is not in the file, and not judged"
        )

    errors = inv.rejects.count
    found: CloudDoc | None = None
    if rtype == "aws_eks_cluster":
        attr = "enabled_cluster_log_types"
        raw = body.get(attr)
        types = _literal_list(raw)
        if types is None and (_expression(raw) or isinstance(raw, list)):
            computed(attr)
            return
        if types is None:  # unset (no log types), or of a wrong type (reported)
            types = _expect(raw, list, where(attr), f"{obj}.{attr}", inv) or []
        found = CloudDoc("eks", obj, where(attr), {"enabled_types": set(types)})
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
        dynamic = _dynamic_categories(body.get("dynamic"))
        unknown = dynamic is None or any(_expression(c) for c in categories)
        if unknown:
            computed("dynamic" if dynamic is None else "category")
        categories = {c for c in categories | (dynamic or set()) if not _expression(c)}
        target = str(body.get("target_resource_id", ""))
        m = re.search(r"azurerm_kubernetes_cluster\.([\w-]+)", target)
        facts = {"categories": categories, "cluster": m.group(1) if m else "", "unknown": unknown}
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


def _dynamic_categories(dynamic: Any) -> set[str] | None:
    """The categories of `dynamic "enabled_log"` (and `"log"`) blocks that iterate over a
    literal list; None when one of them takes its categories from something computed."""
    categories: set[str] = set()
    for block in dynamic if isinstance(dynamic, list) else []:
        for key, spec in (block if isinstance(block, dict) else {}).items():
            if key not in ("enabled_log", "log") or not isinstance(spec, dict):
                continue
            items = _literal_list(spec.get("for_each"))
            iterator = str(spec.get("iterator") or key)
            contents = spec.get("content")
            for content in contents if isinstance(contents, list) else []:
                if not isinstance(content, dict) or content.get("enabled", True) is False:
                    continue
                for attr in ("category", "category_group"):
                    value = content.get(attr)
                    if value is None:
                        continue
                    if not _expression(value):
                        categories.add(str(value))
                    elif value == f"${{{iterator}.value}}" and items is not None:
                        categories.update(items)
                    else:
                        return None
    return categories
