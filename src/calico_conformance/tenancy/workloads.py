"""The layout's namespaces and workloads as oracle endpoints of one cluster: namespaces and pods with IPs.

The static target evaluates these pods, the reproduce scenarios list them, and live targets deploy one
probe pod per workload with the same names and labels, so a flow `royal-bank/ledger -> platform/log-
collector` means the same thing everywhere. Addresses are deterministic (the n-th workload of the layout
gets the n-th address after `FIRST_HOST_OFFSET` in the cluster's pod subnet), so a reproduce scenario
written by one run is read the same way by the next. A workload that runs as its own service account
(a probe-surface stranger) brings that ServiceAccount, labels included: policies can read them.
"""

from __future__ import annotations

from calico_conformance.oracle.model import ContainerPort, IPNetwork, Namespace, Pod, ServiceAccount
from calico_conformance.tenancy.layout import TenancyLayout, Workload
from calico_conformance.tenancy.model import DEFAULT_SERVICE_ACCOUNT

# Skip the first addresses of the pod subnet: the kind nodes' own tunnel and block addresses live there
# on a live cluster, and a scenario that looks like one is easier to read.
FIRST_HOST_OFFSET = 10


def layout_namespaces(layout: TenancyLayout) -> tuple[Namespace, ...]:
    """Every namespace of the layout and the outsider, labelled as the API server would."""
    return tuple(Namespace(namespace.name, namespace.labels, namespace.location) for namespace in layout.all_namespaces)


def container_ports(layout: TenancyLayout, workload: Workload) -> tuple[ContainerPort, ...]:
    """The workload's declared ports (named, as policies may select them by name) plus the canary ports.

    Probe servers listen on the canary ports too: a canary that nobody listens on would answer a leak
    with a reset, which is no proof either way.
    """
    declared = tuple(ContainerPort(service.port, service.protocol, service.name) for service in workload.ports)
    canaries = tuple(
        ContainerPort(service.port, service.protocol)
        for service in layout.canary_services
        if service not in workload.ports
    )
    return declared + canaries


def layout_pods(layout: TenancyLayout, pod_subnet: IPNetwork) -> tuple[Pod, ...]:
    """One pod per layout workload, named after it, with a deterministic address in `pod_subnet`."""
    workloads = layout.all_workloads
    if FIRST_HOST_OFFSET + len(workloads) >= pod_subnet.num_addresses:
        raise ValueError(f"pod subnet {pod_subnet} is too small for {len(workloads)} layout workloads")
    return tuple(
        Pod(
            name=workload.name,
            namespace=workload.namespace,
            ip=pod_subnet.network_address + FIRST_HOST_OFFSET + index,
            labels=workload.labels,
            service_account=workload.service_account,
            ports=container_ports(layout, workload),
            location=workload.location,
        )
        for index, workload in enumerate(workloads)
    )


def layout_service_accounts(layout: TenancyLayout) -> tuple[ServiceAccount, ...]:
    """The ServiceAccount of every workload that runs as another account than `default`, with its labels:
    the oracle gives its pods `pcsa.<key>` labels from them, and live targets create them."""
    accounts: dict[tuple[str, str], ServiceAccount] = {}
    for workload in layout.all_workloads:
        if workload.service_account != DEFAULT_SERVICE_ACCOUNT:
            accounts.setdefault(
                (workload.namespace, workload.service_account),
                ServiceAccount(workload.service_account, workload.namespace, workload.service_account_labels),
            )
    return tuple(accounts.values())
