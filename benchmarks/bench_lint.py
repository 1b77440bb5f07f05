"""How long `calico-conformance lint` takes on a generated 2,000-policy set with its tenancy layout.

The promise (issue 6): a 2,000-policy set lints in under 10 s on a 2-core machine, so a policy pull
request gets its findings while the author still waits. The generated set is shaped like the reference
set, scaled: 60 customer namespaces besides royal-bank, platform and kube-system, each default-deny, each
isolated in tier security, DNS in tier platform, and application-tier policies that allow workloads of
a namespace to talk to each other on ports of their own (every one a distinct port, the worst case for
the transports the linter samples). Run with `make bench` (or directly). Prints the figures, merges them
under "lint" into reports/bench.json (`policies`, `wall_s`, `findings`) and exits 1 above the bound.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from calico_conformance.lint.runner import lint
from figures import record

REFERENCE = Path(__file__).resolve().parents[1] / "policies" / "reference"
POLICIES = 2_000
CUSTOMERS = 60  # besides royal-bank
MAX_WALL_SECONDS = 10.0  # issue 6: "runs on a 2,000-policy set in under 10 seconds"

LAYOUT_HEAD = """\
apiVersion: calico-conformance/v1
kind: TenancyLayout
sentinel:
  name: sentinel
  labels: {app: sentinel}
  ports: [{port: 8080, protocol: TCP, name: http}]
canary:
  ports: [{port: 9999, protocol: TCP}, {port: 9999, protocol: UDP}]
  outside: [192.0.2.10]
outsider: conformance-outsider
dns:
  server: {namespace: kube-system, workload: kube-dns}
  ports: [{port: 53, protocol: UDP}, {port: 53, protocol: TCP}]
  otherServers: [192.0.2.53]
tiers: [security, platform, application]
clusters:
  finland: {networkMtu: 1500, calicoMtu: 1450}
exceptions:
  - name: kube-dns-upstream
    from: {namespace: kube-system, workload: kube-dns}
    to: {outside: true}
    ports: [{port: 53, protocol: UDP}, {port: 53, protocol: TCP}, {port: 6443, protocol: TCP}]
    why: kube-dns forwards to the upstream resolvers and watches the Kubernetes API
namespaces:
  - name: platform
    role: platform
    labels: {tenancy.golem-trust.io/role: platform}
    resolvesDns: true
  - name: kube-system
    role: system
    labels: {tenancy.golem-trust.io/role: system}
    workloads:
      - name: kube-dns
        labels: {k8s-app: kube-dns}
        ports: [{port: 53, protocol: UDP, name: dns}, {port: 53, protocol: TCP, name: dns-tcp}]
"""

CUSTOMER = """\
  - name: {name}
    role: customer
    labels: {{tenancy.golem-trust.io/role: customer}}
    resolvesDns: true
    workloads:
      - name: web
        labels: {{app: web}}
        ports: [{{port: 8443, protocol: TCP, name: https}}]
      - name: worker
        labels: {{app: worker}}
        ports: [{{port: 7000, protocol: TCP, name: jobs}}]
"""

DEFAULT_DENY = """\
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {{name: default-deny-all, namespace: {namespace}}}
spec: {{podSelector: {{}}, policyTypes: [Ingress, Egress]}}
"""

ISOLATION = """\
---
apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {{name: security.isolate-tenant, namespace: {namespace}}}
spec:
  tier: security
  order: 100
  selector: all()
  types: [Ingress, Egress]
  ingress:
    - action: Deny
      source:
        namespaceSelector: tenancy.golem-trust.io/role == "customer" && kubernetes.io/metadata.name != "{namespace}"
    - action: Pass
  egress:
    - action: Deny
      destination:
        namespaceSelector: tenancy.golem-trust.io/role == "customer" && kubernetes.io/metadata.name != "{namespace}"
    - action: Pass
"""

# Both sides of a flow inside one namespace, on a port of its own; the namespace's last one passes on.
APPLICATION = """\
---
apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {{name: application.worker-to-web-{index}, namespace: {namespace}}}
spec:
  tier: application
  order: {index}
  selector: app == "worker" || app == "web"
  types: [Ingress, Egress]
  ingress:
    - action: Allow
      protocol: TCP
      source:
        selector: app == "worker"
      destination:
        selector: app == "web"
        ports: [{port}]
  egress:
    - action: Allow
      protocol: TCP
      source:
        selector: app == "worker"
      destination:
        selector: app == "web"
        ports: [{port}]
{last}"""
PASS_ON = "    - action: Pass\n"


def write_policy_set(directory: Path) -> tuple[Path, int]:
    """The layout and the manifests; returns the layout path and the number of policies written."""
    customers = ["royal-bank", *(f"tenant-{index:02d}" for index in range(1, CUSTOMERS + 1))]
    layout = directory / "tenancy.yaml"
    layout.write_text(LAYOUT_HEAD + "".join(CUSTOMER.format(name=name) for name in customers))
    for name in ("00-tiers.yaml", "30-platform-dns.yaml"):  # tiers and DNS as the reference has them
        (directory / name).write_text((REFERENCE / name).read_text())
    namespaces = [*customers, "platform", "kube-system"]
    documents = [DEFAULT_DENY.format(namespace=namespace) for namespace in namespaces]
    documents += [ISOLATION.format(namespace=namespace) for namespace in customers]
    count = len(documents) + 2  # the two DNS policies
    per_namespace = -(-(POLICIES - count) // len(customers))
    port = 20_000
    for namespace in customers:
        for index in range(1, per_namespace + 1):
            if count == POLICIES:
                break
            port += 1
            last = PASS_ON if index == per_namespace else ""
            documents.append(APPLICATION.format(namespace=namespace, index=index, port=port, last=last))
            count += 1
    (directory / "50-generated.yaml").write_text("".join(documents))
    return layout, count


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="bench-lint-") as temporary:
        directory = Path(temporary)
        layout, policies = write_policy_set(directory)
        started = time.perf_counter()
        report = lint(
            [
                directory / "00-tiers.yaml",
                directory / "30-platform-dns.yaml",
                directory / "50-generated.yaml",
            ],
            layout_path=layout,
        )
        wall = time.perf_counter() - started
    figures = {"policies": policies, "wall_s": round(wall, 2), "findings": len(report.findings)}
    for name, value in figures.items():
        print(f"{name:12} {value:>10}")
    for finding in report.findings[:5]:
        print(f"  {finding.as_text()[:160]}")
    record("lint", figures)
    if wall >= MAX_WALL_SECONDS:
        print(f"FAIL: linting {policies} policies took {wall:.1f} s, the bound is {MAX_WALL_SECONDS:.0f} s")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
