"""Benchmark: `logwarden scan` on 5,000 generated manifests plus audit policies, against Checkov.

    python bench/scan.py [--manifests N] [--policies P] [--runs R] [--checkov-runs C]

Generates (deterministically, into $TMPDIR/logwarden-bench/scan-N-P/; not bench/.data,
as Checkov silently skips paths under a hidden directory) N manifest files: Deployments
with nginx ConfigMaps (some discarding logs), DaemonSets (log agents), kube-apiserver
static pods with and without audit flags, RBAC Roles and bindings, multi-document files
and `List`s; plus P audit policies (the three reference policies and variations). Then
times, in the same run, each the given number of times, median reported:

* logwarden: `logwarden scan DIR --format json > /dev/null`, the whole command in a fresh
  process (start-up included);
* checkov:   `checkov --directory DIR --framework kubernetes --output json` (all of its
  Kubernetes checks, its normal run), in its own virtual environment;
* checkov-audit: the same restricted to CKV_K8S_91..94 (its audit-logging checks).

It prints seconds for each and logwarden's speed-up over each. The targets of issue 5
are < 5 s for logwarden and >= 10x Checkov.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# not under bench/.data: Checkov skips every path with a hidden (dot) directory in it
CACHE = Path(tempfile.gettempdir()) / "logwarden-bench"
POLICIES = ROOT / "tests" / "fixtures" / "posture" / "policies"
CHECKOV_VERSION = "3.3.30"

_DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
  namespace: {ns}
  labels: {{app: {name}, team: {ns}}}
spec:
  replicas: 2
  selector:
    matchLabels: {{app: {name}}}
  template:
    metadata:
      labels: {{app: {name}}}
    spec:
      containers:
        - name: web
          image: nginx:1.25.{i}
          command: ["/bin/sh", "-c", "{cmd}"]
          ports: [{{containerPort: 80}}]
          volumeMounts:
            - {{name: conf, mountPath: /etc/nginx/conf.d}}
          resources: {{limits: {{cpu: 100m, memory: 128Mi}}}}
      volumes:
        - name: conf
          configMap: {{name: {name}}}
---
apiVersion: v1
kind: ConfigMap
metadata: {{name: {name}, namespace: {ns}}}
data:
  default.conf: |
    server {{
        listen 80;
        access_log {access};
        error_log /dev/stderr warn;
        location / {{ root /usr/share/nginx/html; }}
    }}
"""

_DAEMONSET = """\
apiVersion: apps/v1
kind: DaemonSet
metadata: {{name: {name}, namespace: logging}}
spec:
  selector:
    matchLabels: {{app: {name}}}
  template:
    metadata:
      labels: {{app: {name}}}
    spec:
      tolerations: [{{operator: Exists}}]
      containers:
        - name: agent
          image: cr.fluentbit.io/fluent/fluent-bit:3.0.{i}
          volumeMounts: [{{name: varlog, mountPath: /var/log}}]
      volumes:
        - name: varlog
          hostPath: {{path: /var/log}}
"""

_APISERVER = """\
apiVersion: v1
kind: Pod
metadata:
  name: kube-apiserver-{i}
  namespace: kube-system
  labels: {{component: kube-apiserver}}
spec:
  containers:
    - name: kube-apiserver
      image: registry.k8s.io/kube-apiserver:v1.30.{i}
      command:
        - kube-apiserver
        - --authorization-mode=Node,RBAC
{flags}
      volumeMounts:
        - {{name: k8s, mountPath: /etc/kubernetes, readOnly: true}}
        - {{name: audit, mountPath: /var/log/kubernetes}}
  volumes:
    - name: k8s
      hostPath: {{path: /etc/kubernetes}}
    - name: audit
      hostPath: {{path: /var/log/kubernetes}}
"""

_RBAC = """\
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {{name: role-{i}, namespace: {ns}}}
rules:
  - apiGroups: [""]
    resources: [{res}]
    verbs: [get, list, {verb}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {{name: bind-{i}, namespace: {ns}}}
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: Role, name: role-{i}}}
subjects:
  - {{kind: User, name: user-{i}, apiGroup: rbac.authorization.k8s.io}}
"""

_AUDIT_FLAGS = [
    "",
    "        - --audit-policy-file=/etc/kubernetes/audit-policy.yaml\n"
    "        - --audit-log-path=/var/log/kubernetes/audit.log\n"
    "        - --audit-log-maxage=30\n        - --audit-log-maxbackup=10\n"
    "        - --audit-log-maxsize=100",
    "        - --audit-policy-file=/etc/kubernetes/audit-policy.yaml\n"
    "        - --audit-log-path=/var/log/kubernetes/audit.log\n"
    "        - --audit-log-maxage=7",
]


def generate(n: int, policies: int) -> Path:
    out = CACHE / f"scan-{n}-{policies}"
    if out.exists():
        return out
    tmp = out.with_suffix(".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    rng = random.Random(5)
    for i in range(n):
        ns = f"team-{i % 40}"
        sub = tmp / "manifests" / ns
        sub.mkdir(parents=True, exist_ok=True)
        pick = i % 20
        if pick < 14:
            access = rng.choice(["/dev/stdout", "/dev/stdout", "/dev/stdout", "off", "/dev/null"])
            cmd = "nginx -g 'daemon off;'" + (" > /dev/null" if rng.random() < 0.05 else "")
            text = _DEPLOYMENT.format(name=f"web-{i}", ns=ns, i=i % 9, access=access, cmd=cmd)
        elif pick < 16:
            text = _DAEMONSET.format(name=f"agent-{i}", i=i % 9)
        elif pick < 18:
            flags = rng.choice(_AUDIT_FLAGS)
            text = _APISERVER.format(i=i % 9, flags=flags).replace("\n\n", "\n")
        else:
            res = rng.choice(['"events"', '"pods/log"', '"pods"'])
            verb = rng.choice(["delete", "watch"])
            text = _RBAC.format(i=i, ns=ns, res=res, verb=verb)
        (sub / f"m{i:05d}.yaml").write_text(text)
    pol = tmp / "policies"
    pol.mkdir(parents=True)
    sources = sorted(POLICIES.glob("*.yaml"))
    for j in range(policies):
        text = sources[j % len(sources)].read_text()
        if j >= len(sources):  # variations: drop a rule's stages, widen a None rule
            text = text.replace('omitStages:\n  - "RequestReceived"', "omitStages: []", 1)
        (pol / f"policy-{j:03d}.yaml").write_text(text)
    tmp.rename(out)
    return out


def checkov_executable() -> Path:
    if os.environ.get("LOGWARDEN_CHECKOV"):
        return Path(os.environ["LOGWARDEN_CHECKOV"])
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    venv = cache / "logwarden" / f"checkov-{CHECKOV_VERSION}"
    exe = venv / "bin" / "checkov"
    if not exe.exists():
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
        pip = str(venv / "bin" / "pip")
        subprocess.run([pip, "install", "-q", f"checkov=={CHECKOV_VERSION}"], check=True)
    return exe


def timed(cmd: list[str], ok: tuple[int, ...] = (0,)) -> float:
    start = time.perf_counter()
    done = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    elapsed = time.perf_counter() - start
    if done.returncode not in ok:
        sys.exit(f"failed ({done.returncode}): {' '.join(cmd)}")
    return elapsed


def median_of(cmd: list[str], runs: int, ok: tuple[int, ...]) -> float:
    return statistics.median(timed(cmd, ok) for _ in range(runs))


def checkov_resources(cmd: list[str]) -> tuple[int, int]:
    """How many resources Checkov scanned and how many checks failed (a sanity check that
    it really read the files)."""
    done = subprocess.run(cmd, capture_output=True, check=False)
    reports = json.loads(done.stdout)
    reports = reports if isinstance(reports, list) else [reports]
    count = sum(r.get("summary", {}).get("resource_count", 0) for r in reports)
    failed = sum(r.get("summary", {}).get("failed", 0) for r in reports)
    return count, failed


def logwarden_findings(cmd: list[str]) -> int:
    done = subprocess.run(cmd, capture_output=True, check=False)
    return len(json.loads(done.stdout))


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--manifests", type=int, default=5000)
    ap.add_argument("--policies", type=int, default=30)
    ap.add_argument("--runs", type=int, default=5, help="runs of logwarden (median)")
    ap.add_argument("--checkov-runs", type=int, default=3, help="runs of each Checkov (median)")
    args = ap.parse_args()

    data = generate(args.manifests, args.policies)
    files = sum(1 for _ in data.rglob("*.yaml"))
    lw = [sys.executable, "-m", "logwarden", "scan", str(data), "--format", "json"]
    ck = [str(checkov_executable()), "--directory", str(data), "--framework", "kubernetes"]
    ck += ["--output", "json", "--skip-download"]
    ck_audit = [*ck, "--check", "CKV_K8S_91,CKV_K8S_92,CKV_K8S_93,CKV_K8S_94"]

    print(f"workload: {args.manifests:,} manifests + {args.policies} policies ({files:,} files)")
    print(f"          in {data}")
    resources, failed = checkov_resources(ck)
    if resources == 0:
        sys.exit("checkov scanned no resources: the comparison would be meaningless")
    print(
        f"logwarden: {logwarden_findings(lw):,} findings; checkov: {resources:,} resources, "
        f"{failed:,} failed checks"
    )
    ours = median_of(lw, args.runs, (0,))
    print(f"logwarden scan:       {ours:7.2f} s  (median of {args.runs})")
    full = median_of(ck, args.checkov_runs, (0, 1))
    print(f"checkov (kubernetes): {full:7.2f} s  (median of {args.checkov_runs})")
    audit = median_of(ck_audit, args.checkov_runs, (0, 1))
    print(f"checkov (91-94 only): {audit:7.2f} s  (median of {args.checkov_runs})")
    print(f"speed-up: {full / ours:.1f}x Checkov, {audit / ours:.1f}x Checkov restricted to 91-94")
    verdict = "met" if ours < 5 and audit / ours >= 10 else "NOT met"
    print(f"targets (< 5 s, >= 10x Checkov): {verdict}")


if __name__ == "__main__":
    main()
