"""The fault catalogue: realistic mistakes in the reference set, each one the suites exist to catch.

Every fault here changes what the policy set, layout or register *does* (a fault with no observable
effect, such as breaking one side of a flow the other side already denies, proves nothing and is left
out). Each names the suite modules that must fail on it. The first eleven are the issue's list; the rest
are mistakes seen in real policy reviews: a debugging allow-all left behind, DNS over TCP forgotten, a
port typo in an exception, a namespace provisioned without its default-deny, kube-dns's upstream rule
opened to every port, ICMP, a port nobody declares (22/TCP), a label or a service account no probe
carried allowed between tenants, royal-bank reaching the internet on 443 or a public resolver directly,
a partner network on the internet admitted into royal-bank, and a duplicated key in the layout.

Then one fault of each place issue 11 found the probes never looked (one workload opened to the outside,
one workload's egress to the outsider, a port past the layout's, a selector that lost its namespace, a
security-tier guardrail lost behind a later tier's deny, a default-deny written as a doNotTrack policy
felix never gives a pod), and the behaviour-preserving edits (`must_pass`) the suites must not fail on:
rules reordered without overlap, a policy renamed within its tier, a namespace selected by its name label,
a workload pinned to its service account, a named port in place of a number.
"""

from __future__ import annotations

from collections.abc import Callable

from calico_conformance.mutation.runner import Fault
from calico_conformance.mutation.workspace import Document, Workspace, insert_after_block
from calico_conformance.oracle.errors import Location

_REGISTERED: list[Fault] = []

ISOLATION = "test_royal_bank_isolation"
DEFAULT_DENY = "test_default_deny"
DNS = "test_dns_egress"
TIERS = "test_tier_ordering"
CIDR = "test_cidr_allocation"
MTU = "test_mtu"


def fault(
    name: str, description: str, *catchers: str
) -> Callable[[Callable[[Workspace], Location | None]], Callable[[Workspace], Location | None]]:
    """Register the decorated edit as a fault of the catalogue."""

    def register(apply: Callable[[Workspace], Location | None]) -> Callable[[Workspace], Location | None]:
        _REGISTERED.append(Fault(name, description, apply, catchers))
        return apply

    return register


def _rules(document: Document, direction: str) -> list[Document]:
    rules: list[Document] = document["spec"][direction]
    return rules


# --- the list ---------------------------------------------------------------------------------


@fault("royal-bank-default-deny-removed", "royal-bank has no default-deny-all NetworkPolicy", DEFAULT_DENY)
def _remove_royal_bank_default_deny(workspace: Workspace) -> None:
    workspace.remove("NetworkPolicy", "default-deny-all", "royal-bank")


@fault(
    "royal-bank-allow-all-ingress",
    "a NetworkPolicy in royal-bank allows every ingress",
    DEFAULT_DENY,
    ISOLATION,
)
def _add_allow_all_ingress(workspace: Workspace) -> None:
    workspace.add(
        "90-allow-all-ingress.yaml",
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": "allow-all-ingress", "namespace": "royal-bank"},
            "spec": {"podSelector": {}, "policyTypes": ["Ingress"], "ingress": [{}]},
        },
    )


def _widen_to_every_port(document: Document, direction: str) -> None:
    for rule in _rules(document, direction):
        if rule["action"] == "Allow":
            rule["destination"].pop("ports")


@fault(
    "exception-widened-to-every-port",
    "the royal-bank -> log-collector exception allows every TCP port, on both sides",
    ISOLATION,
)
def _widen_exception(workspace: Workspace) -> None:
    workspace.edit(
        "NetworkPolicy",
        "application.allow-logging",
        "royal-bank",
        lambda p: _widen_to_every_port(p, "egress"),
    )
    workspace.edit(
        "NetworkPolicy",
        "application.accept-logging",
        "platform",
        lambda p: _widen_to_every_port(p, "ingress"),
    )


def _select_unlabelled_namespace(policy: Document) -> None:
    for rule in _rules(policy, "egress"):
        if rule["action"] == "Allow":
            rule["destination"]["namespaceSelector"] = 'name == "platform"'  # the runbook's original bug


@fault(
    "exception-selects-unlabelled-namespace",
    'the exception\'s namespaceSelector is name == "platform", a label no namespace has',
    ISOLATION,
)
def _break_exception_selector(workspace: Workspace) -> None:
    workspace.edit("NetworkPolicy", "application.allow-logging", "royal-bank", _select_unlabelled_namespace)


@fault("dns-egress-removed", "no policy allows egress to kube-dns", DNS)
def _remove_dns_egress(workspace: Workspace) -> None:
    workspace.remove("GlobalNetworkPolicy", "platform.allow-cluster-dns")


def _dns_to_anywhere(policy: Document) -> None:
    for rule in _rules(policy, "egress"):
        if rule["action"] == "Allow":
            rule["destination"] = {"ports": rule["destination"]["ports"]}


@fault("dns-to-any-destination", "DNS egress allowed to any destination on port 53", DNS)
def _widen_dns(workspace: Workspace) -> None:
    workspace.edit("GlobalNetworkPolicy", "platform.allow-cluster-dns", None, _dns_to_anywhere)


def _drop_pass_rules(policy: Document) -> None:
    for direction in ("ingress", "egress"):
        policy["spec"][direction] = [rule for rule in _rules(policy, direction) if rule["action"] != "Pass"]


@fault(
    "security-tier-pass-removed",
    "the security tier's policies no longer end in Pass: everything they do not deny is denied",
    DNS,
    ISOLATION,
)
def _remove_security_pass(workspace: Workspace) -> None:
    changed = workspace.edit_all(lambda d: (d.get("spec") or {}).get("tier") == "security", _drop_pass_rules)
    if not changed:
        raise LookupError("no policy in tier security")


def _set_order(order: int) -> Callable[[Document], None]:
    def change(tier: Document) -> None:
        tier["spec"]["order"] = order

    return change


@fault("tier-orders-swapped", "tiers security and application swap their orders (100 <-> 300)", TIERS)
def _swap_tiers(workspace: Workspace) -> None:
    workspace.edit("Tier", "security", None, _set_order(300))
    workspace.edit("Tier", "application", None, _set_order(100))


def _pod_subnet(subnet: str) -> Callable[[Document], None]:
    def change(config: Document) -> None:
        config["networking"]["podSubnet"] = subnet

    return change


@fault("overlapping-pod-cidr", "germany's podSubnet 10.244.128.0/17 overlaps finland's 10.244.0.0/16", CIDR)
def _overlap_pod_cidr(workspace: Workspace) -> None:
    workspace.edit_kind_config("germany", _pod_subnet("10.244.128.0/17"))


def _calico_mtu(cluster: str, mtu: int) -> Callable[[Document], None]:
    def change(layout: Document) -> None:
        layout["clusters"][cluster]["calicoMtu"] = mtu

    return change


@fault("vxlan-mtu-1500", "finland's Installation sets MTU 1500 for VXLAN on a 1500-byte network", MTU)
def _full_size_mtu(workspace: Workspace) -> None:
    workspace.edit_layout(_calico_mtu("finland", 1500))


@fault(
    "duplicate-destination-key",
    "allow-logging's egress rule has a second destination: key (YAML would silently keep the last one)",
)
def _duplicate_destination(workspace: Workspace) -> Location:
    path, _ = workspace.find("NetworkPolicy", "application.allow-logging", "royal-bank")
    return insert_after_block(path, "destination:", "destination: {}")


# --- our own -----------------------------------------------------------------------------------------


@fault(
    "debug-allow-all-left-behind",
    "a GlobalNetworkPolicy allowing everything, first in tier security (a debugging policy left behind)",
    ISOLATION,
    DEFAULT_DENY,
)
def _add_debug_allow_all(workspace: Workspace) -> None:
    workspace.add(
        "05-debug-allow-all.yaml",
        {
            "apiVersion": "projectcalico.org/v3",
            "kind": "GlobalNetworkPolicy",
            "metadata": {"name": "security.debug-allow-all"},
            "spec": {
                "tier": "security",
                "order": 1,
                "selector": "all()",
                "types": ["Ingress", "Egress"],
                "ingress": [{"action": "Allow"}],
                "egress": [{"action": "Allow"}],
            },
        },
    )


def _drop_tcp_rules(policy: Document) -> None:
    policy["spec"]["egress"] = [rule for rule in _rules(policy, "egress") if rule.get("protocol") != "TCP"]


@fault("dns-over-tcp-forgotten", "DNS egress allows 53/UDP only: large answers (TCP fallback) fail", DNS)
def _forget_dns_tcp(workspace: Workspace) -> None:
    workspace.edit("GlobalNetworkPolicy", "platform.allow-cluster-dns", None, _drop_tcp_rules)


def _exception_port(port: int) -> Callable[[Document], None]:
    def change(policy: Document) -> None:
        for rule in _rules(policy, "egress"):
            if rule["action"] == "Allow":
                rule["destination"]["ports"] = [port]

    return change


@fault(
    "exception-port-typo",
    "royal-bank's logging egress names 9200 (the admin port) instead of 5044",
    ISOLATION,
)
def _typo_exception_port(workspace: Workspace) -> None:
    workspace.edit("NetworkPolicy", "application.allow-logging", "royal-bank", _exception_port(9200))


@fault(
    "customer-b-default-deny-missing", "customer-b was provisioned without its default-deny-all", DEFAULT_DENY
)
def _remove_customer_b_default_deny(workspace: Workspace) -> None:
    workspace.remove("NetworkPolicy", "default-deny-all", "customer-b")


def _upstream_every_port(policy: Document) -> None:
    for rule in _rules(policy, "egress"):
        if rule["action"] == "Allow":
            rule.pop("destination", None)


@fault(
    "kube-dns-upstream-every-port",
    "kube-dns may reach any address on any port, not only 53 and 6443",
    DEFAULT_DENY,
)
def _open_kube_dns_egress(workspace: Workspace) -> None:
    workspace.edit("GlobalNetworkPolicy", "platform.kube-dns", None, _upstream_every_port)


@fault(
    "icmp-between-customers",
    "a GlobalNetworkPolicy first in tier security lets customer namespaces ping each other (no port opened)",
    ISOLATION,
    DEFAULT_DENY,
)
def _allow_icmp_between_customers(workspace: Workspace) -> None:
    workspace.add("05-allow-ping.yaml", _security_allow("allow-ping", {"action": "Allow", "protocol": "ICMP"}))


def _security_allow(name: str, rule: Document, egress_rule: Document | None = None) -> Document:
    """A GlobalNetworkPolicy first in tier security, allowing `rule` both ways between customers (or
    `rule` in and `egress_rule` out, when a peer must be named on each side)."""
    return {
        "apiVersion": "projectcalico.org/v3",
        "kind": "GlobalNetworkPolicy",
        "metadata": {"name": f"security.{name}"},
        "spec": {
            "tier": "security",
            "order": 1,
            "namespaceSelector": 'tenancy.golem-trust.io/role == "customer"',
            "selector": "all()",
            "types": ["Ingress", "Egress"],
            "ingress": [rule],
            "egress": [egress_rule or rule],
        },
    }


@fault(
    "ssh-between-customers",
    "customer namespaces may reach each other on 22/TCP, a port no workload declares and no canary probes",
    ISOLATION,
    DEFAULT_DENY,
)
def _allow_ssh_between_customers(workspace: Workspace) -> None:
    rule = {"action": "Allow", "protocol": "TCP", "destination": {"ports": [22]}}
    workspace.add("05-allow-ssh.yaml", _security_allow("allow-ssh", rule))


@fault(
    "debug-label-between-customers",
    'pods labelled debug == "true" may reach each other across customers (a label no layout workload carries)',
    ISOLATION,
)
def _allow_debuggers_between_customers(workspace: Workspace) -> None:
    peer = {"selector": 'debug == "true"'}
    inbound, outbound = {"action": "Allow", "source": peer}, {"action": "Allow", "destination": peer}
    workspace.add("05-debuggers.yaml", _security_allow("debuggers", inbound, outbound))


@fault(
    "batch-account-between-customers",
    "pods running as service account batch may reach each other across customers (every probe ran as default)",
    ISOLATION,
    DEFAULT_DENY,
)
def _allow_batch_between_customers(workspace: Workspace) -> None:
    peer = {"serviceAccounts": {"names": ["batch"]}}
    inbound, outbound = {"action": "Allow", "source": peer}, {"action": "Allow", "destination": peer}
    workspace.add("05-batch-jobs.yaml", _security_allow("batch-jobs", inbound, outbound))


def _royal_bank_egress(name: str, rule: Document) -> Document:
    return {
        "apiVersion": "projectcalico.org/v3",
        "kind": "NetworkPolicy",
        "metadata": {"name": f"application.{name}", "namespace": "royal-bank"},
        "spec": {
            "tier": "application",
            "order": 50,
            "selector": "all()",
            "types": ["Egress"],
            "egress": [rule],
        },
    }


@fault("royal-bank-https-to-internet", "royal-bank may reach any address outside on 443/TCP", DEFAULT_DENY)
def _royal_bank_https_out(workspace: Workspace) -> None:
    rule = {"action": "Allow", "protocol": "TCP", "destination": {"nets": ["0.0.0.0/0"], "ports": [443]}}
    workspace.add("45-internet.yaml", _royal_bank_egress("internet", rule))


@fault(
    "internet-into-royal-bank",
    "a NetworkPolicy admits 203.0.113.0/24 (a partner network on the internet) into royal-bank on every port",
    DEFAULT_DENY,
)
def _internet_into_royal_bank(workspace: Workspace) -> None:
    workspace.add(
        "45-partner-ingress.yaml",
        {
            "apiVersion": "projectcalico.org/v3",
            "kind": "NetworkPolicy",
            "metadata": {"name": "application.partner-ingress", "namespace": "royal-bank"},
            "spec": {
                "tier": "application",
                "order": 50,
                "selector": "all()",
                "types": ["Ingress"],
                "ingress": [{"action": "Allow", "source": {"nets": ["203.0.113.0/24"]}}],
            },
        },
    )


@fault("dns-to-public-resolver", "royal-bank may query 8.8.8.8 directly on 53/UDP (a DNS exfiltration path)", DNS)
def _royal_bank_public_dns(workspace: Workspace) -> None:
    rule = {"action": "Allow", "protocol": "UDP", "destination": {"nets": ["8.8.8.8/32"], "ports": [53]}}
    workspace.add("45-public-dns.yaml", _royal_bank_egress("public-dns", rule))


@fault("layout-duplicate-key", "royal-bank's resolvesDns is given twice in the tenancy layout")
def _duplicate_layout_key(workspace: Workspace) -> Location:
    return insert_after_block(workspace.inputs.layout, "resolvesDns: true", "resolvesDns: false")


# --- where the probes used to never look (issue 11) -------------------------------------------------


def _royal_bank_ledger(name: str, types: list[str], **rules: list[Document]) -> Document:
    """A NetworkPolicy in royal-bank's application tier that selects the ledger alone, not every pod."""
    return {
        "apiVersion": "projectcalico.org/v3",
        "kind": "NetworkPolicy",
        "metadata": {"name": f"application.{name}", "namespace": "royal-bank"},
        "spec": {"tier": "application", "order": 50, "selector": 'app == "ledger"', "types": types, **rules},
    }


OUTSIDER_NAMESPACE = {"namespaceSelector": 'kubernetes.io/metadata.name == "conformance-outsider"'}


@fault(
    "ledger-open-to-the-outside",
    "royal-bank's ledger alone (not the namespace) admits the outsider namespace and 192.0.2.0/24 (class 1)",
    DEFAULT_DENY,
)
def _ledger_open_to_the_outside(workspace: Workspace) -> None:
    ingress = [
        {"action": "Allow", "source": {"nets": ["192.0.2.0/24"]}},
        {"action": "Allow", "source": OUTSIDER_NAMESPACE},
    ]
    workspace.add("45-ledger-partners.yaml", _royal_bank_ledger("ledger-partners", ["Ingress"], ingress=ingress))


@fault(
    "ledger-egress-to-the-outsider",
    "royal-bank's ledger alone may send to the outsider namespace, a namespace no customer owns (class 2)",
    DEFAULT_DENY,
)
def _ledger_egress_to_the_outsider(workspace: Workspace) -> None:
    egress = [{"action": "Allow", "destination": OUTSIDER_NAMESPACE}]
    workspace.add("45-ledger-out.yaml", _royal_bank_ledger("ledger-out", ["Egress"], egress=egress))


def _exception_range(policy: Document, direction: str) -> None:
    for rule in _rules(policy, direction):
        if rule["action"] == "Allow":
            rule["destination"]["ports"] = ["5044:5045"]


@fault(
    "exception-one-port-too-many",
    "the logging exception is written as the range 5044:5045 on both sides: the port past the layout's (class 3)",
    ISOLATION,
)
def _exception_one_port_too_many(workspace: Workspace) -> None:
    workspace.edit("NetworkPolicy", "application.allow-logging", "royal-bank", lambda p: _exception_range(p, "egress"))
    workspace.edit("NetworkPolicy", "application.accept-logging", "platform", lambda p: _exception_range(p, "ingress"))


def _dns_without_namespace(policy: Document) -> None:
    for rule in _rules(policy, "egress"):
        if rule["action"] == "Allow":
            rule["destination"].pop("namespaceSelector")


@fault(
    "dns-destination-loses-its-namespace",
    'DNS egress goes to k8s-app == "kube-dns" in any namespace: a pod elsewhere with that label answers (class 4)',
    DNS,
    DEFAULT_DENY,
)
def _dns_destination_loses_its_namespace(workspace: Workspace) -> None:
    workspace.edit("GlobalNetworkPolicy", "platform.allow-cluster-dns", None, _dns_without_namespace)


def _drop_deny_rules(policy: Document) -> None:
    for direction in ("ingress", "egress"):
        policy["spec"][direction] = [rule for rule in _rules(policy, direction) if rule["action"] != "Deny"]


@fault(
    "security-guardrail-removed",
    "the security tier no longer denies other customers; the Kubernetes default-deny still does, so no flow "
    "changes, but isolation now hangs on a later tier (class 5)",
    ISOLATION,
)
def _remove_security_guardrail(workspace: Workspace) -> None:
    changed = workspace.edit_all(lambda d: (d.get("spec") or {}).get("tier") == "security", _drop_deny_rules)
    if not changed:
        raise LookupError("no policy in tier security")


@fault(
    "royal-bank-default-deny-as-untracked",
    "royal-bank's default-deny is a doNotTrack GlobalNetworkPolicy, which felix never applies to pods (class 7)",
    DEFAULT_DENY,
)
def _royal_bank_default_deny_untracked(workspace: Workspace) -> None:
    workspace.remove("NetworkPolicy", "default-deny-all", "royal-bank")
    workspace.add(
        "10-royal-bank-untracked-deny.yaml",
        {
            "apiVersion": "projectcalico.org/v3",
            "kind": "GlobalNetworkPolicy",
            "metadata": {"name": "royal-bank-default-deny"},
            "spec": {
                "namespaceSelector": 'kubernetes.io/metadata.name == "royal-bank"',
                "selector": "all()",
                "applyOnForward": True,
                "doNotTrack": True,
                "types": ["Ingress", "Egress"],
            },
        },
    )


# --- behaviour-preserving edits: the suites must pass on each -----------------------------------------


def must_pass(
    name: str, description: str
) -> Callable[[Callable[[Workspace], None]], Callable[[Workspace], None]]:
    """Register the decorated edit as one that changes no behaviour: every suite must still pass."""

    def register(apply: Callable[[Workspace], None]) -> Callable[[Workspace], None]:
        _REGISTERED.append(Fault(name, description, apply, (), must_pass=True))
        return apply

    return register


@must_pass("dns-rules-reordered", "the UDP and TCP DNS egress rules swap places (they never overlap)")
def _reorder_dns_rules(workspace: Workspace) -> None:
    def swap(policy: Document) -> None:
        egress = _rules(policy, "egress")
        egress[0], egress[1] = egress[1], egress[0]

    workspace.edit("GlobalNetworkPolicy", "platform.allow-cluster-dns", None, swap)


@must_pass("logging-policy-renamed", "application.allow-logging is renamed application.ship-logs, same tier and order")
def _rename_logging_policy(workspace: Workspace) -> None:
    def rename(policy: Document) -> None:
        policy["metadata"]["name"] = "application.ship-logs"

    workspace.edit("NetworkPolicy", "application.allow-logging", "royal-bank", rename)


@must_pass(
    "dns-clients-by-namespace-name",
    "DNS egress selects its client namespaces by kubernetes.io/metadata.name instead of the role label",
)
def _dns_clients_by_name(workspace: Workspace) -> None:
    def by_name(policy: Document) -> None:
        names = ", ".join(f'"{name}"' for name in ("royal-bank", "customer-a", "customer-b", "platform"))
        policy["spec"]["namespaceSelector"] = f"kubernetes.io/metadata.name in {{{names}}}"

    workspace.edit("GlobalNetworkPolicy", "platform.allow-cluster-dns", None, by_name)


@must_pass("dns-pinned-to-coredns", "DNS egress also requires the server to run as service account coredns")
def _pin_dns_to_coredns(workspace: Workspace) -> None:
    def pin(policy: Document) -> None:
        for rule in _rules(policy, "egress"):
            if rule["action"] == "Allow":
                rule["destination"]["serviceAccounts"] = {"names": ["coredns"]}

    workspace.edit("GlobalNetworkPolicy", "platform.allow-cluster-dns", None, pin)


@must_pass("logging-by-named-port", "the logging exception names the collector's port beats instead of 5044")
def _logging_by_named_port(workspace: Workspace) -> None:
    def named(direction: str) -> Callable[[Document], None]:
        def change(policy: Document) -> None:
            for rule in _rules(policy, direction):
                if rule["action"] == "Allow":
                    rule["destination"]["ports"] = ["beats"]

        return change

    workspace.edit("NetworkPolicy", "application.allow-logging", "royal-bank", named("egress"))
    workspace.edit("NetworkPolicy", "application.accept-logging", "platform", named("ingress"))


CATALOGUE: tuple[Fault, ...] = tuple(_REGISTERED)
