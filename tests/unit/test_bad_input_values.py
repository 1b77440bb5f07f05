"""Values Kubernetes or Calico refuse are refused here too, at their line, instead of silently read.

Each expected behaviour is taken from the pinned upstream validators, cited where the loader implements
it (oracle/loader_document.py, loader_calico_rules.py): libcalico-go `lib/validator/v3/validator.go` and
`api/pkg/lib/numorstring/port.go` at v3.27.5 and v3.31.7, the Calico API server's policy storage, and
Go's regexp and `net.ParseCIDR` semantics. Line numbers expected here are counted in the texts below.
"""

from __future__ import annotations

from ipaddress import ip_network

import pytest

from calico_conformance.oracle.errors import LocatedError, Location
from calico_conformance.oracle.loader import load_manifest_text
from calico_conformance.oracle.model import ResourceSet

GNP = """\
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata:
  name: default.allow-web
spec:
  order: {order}
  selector: app == 'web'
  ingress:
    - action: Allow
      protocol: TCP
      source:
        nets: [{net}]
      destination:
        ports: [{port}]
"""


def gnp(order: str = "100", net: str = "10.0.0.0/8", port: str = "80") -> str:
    return GNP.format(order=order, net=net, port=port)


def refused(text: str, calico_version: str = "3.31") -> LocatedError:
    with pytest.raises(LocatedError) as caught:
        load_manifest_text(text, "p.yaml", calico_version=calico_version)
    return caught.value


def loaded(text: str, calico_version: str = "3.31") -> ResourceSet:
    return load_manifest_text(text, "p.yaml", calico_version=calico_version)


# --- orders are finite numbers ---------------------------------------------------------------------------


@pytest.mark.parametrize("order", [".nan", ".NaN", ".inf", "-.inf", "+.Inf"])
def test_a_non_finite_policy_order_is_refused_at_its_line(order: str) -> None:
    error = refused(gnp(order=order))
    assert error.location == Location("p.yaml", 6)
    assert "spec.order: must be a finite number" in error.why


@pytest.mark.parametrize("order", [".nan", ".inf"])
def test_a_non_finite_tier_order_is_refused_at_its_line(order: str) -> None:
    tier = f"apiVersion: projectcalico.org/v3\nkind: Tier\nmetadata: {{name: security}}\nspec:\n  order: {order}\n"
    error = refused(tier)
    assert error.location == Location("p.yaml", 5)
    assert "must be a finite number" in error.why


def test_an_order_too_large_for_a_float_is_refused() -> None:
    error = refused(gnp(order="1" + "0" * 400))
    assert error.location == Location("p.yaml", 6)
    assert "too large" in error.why


# --- a trailing newline (YAML block scalar) is not part of a valid name ---------------------------------

K8S_POLICY = """\
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: {name}
  namespace: {namespace}
  labels:
    team: {label}
spec:
  podSelector: {{}}
"""


@pytest.mark.parametrize(
    ("field", "line", "why"),
    [
        ("name", 4, "invalid name 'deny\\n'"),
        ("namespace", 5, "invalid namespace 'shop\\n'"),
        ("label", 7, "invalid value 'web\\n' for label 'team'"),
    ],
)
def test_a_block_scalar_with_its_trailing_newline_is_refused(field: str, line: int, why: str) -> None:
    values = {"name": "deny", "namespace": "shop", "label": "web"}
    indent = " " * (6 if field == "label" else 4)  # deeper than the key
    values[field] = f"|\n{indent}{values[field]}"  # `|` keeps the final newline: the value is "deny\n"
    text = K8S_POLICY.format(**values)
    error = refused(text)
    assert why in error.why
    assert error.location == Location("p.yaml", line)  # the key's line


def test_a_label_key_with_a_trailing_newline_is_refused() -> None:
    text = K8S_POLICY.format(name="deny", namespace="shop", label="web").replace(
        "    team: web", '    "team\\n": web'
    )
    assert "invalid label key 'team\\n'" in refused(text).why


# --- digits are ASCII digits -------------------------------------------------------------------------------


@pytest.mark.parametrize("port", ['"\uff18\uff10"', '"\u00b2"', '"8\uff10:90"', '"80:9\u0660"'])
def test_a_calico_port_with_non_ascii_digits_is_refused_with_its_line(port: str) -> None:
    error = refused(gnp(port=port))
    assert error.location == Location("p.yaml", 14)
    assert "invalid port" in error.why


def test_a_kubernetes_port_with_full_width_digits_is_refused() -> None:
    text = K8S_POLICY.format(name="deny", namespace="shop", label="web") + (
        '  ingress:\n    - ports:\n        - port: "\uff18\uff10"\n'
    )
    error = refused(text)
    assert error.location == Location("p.yaml", 12)


# --- CIDRs: zones, bare addresses, host bits ---------------------------------------------------------------


@pytest.mark.parametrize("net", ["fe80::1%eth0/64", "fe80::%1/64"])
def test_an_ipv6_zone_in_a_rule_net_is_refused(net: str) -> None:
    error = refused(gnp(net=f'"{net}"'))
    assert error.location == Location("p.yaml", 12)
    assert "zone" in error.why


def test_an_ipv6_zone_in_an_ip_block_is_refused() -> None:
    text = K8S_POLICY.format(name="deny", namespace="shop", label="web") + (
        "  ingress:\n    - from:\n        - ipBlock: {cidr: 'fe80::%eth0/64'}\n"
    )
    assert "zone" in refused(text).why


def test_a_bare_address_in_a_rule_net_is_refused_as_calico_validate_rule_does() -> None:
    # validateRule parses rule nets with cnet.ParseCIDR (validator.go v3.31.7 line 1359, v3.27.5
    # line 1221): "invalid CIDR" for an address without a prefix length
    for version in ("3.27", "3.31"):
        text = (
            gnp(net="10.64.3.1")
            if version == "3.31"
            else gnp(net="10.64.3.1").replace("default.allow", "allow")
        )
        error = refused(text.replace("  order: 100\n", ""), calico_version=version)
        assert "write 10.64.3.1/32" in error.why, version


@pytest.mark.parametrize("net", ["10.0.0.1/8", "192.168.1.7/24", '"2001:db8::1/64"'])
def test_a_rule_net_with_host_bits_is_refused_as_validate_ip_network_does(net: str) -> None:
    error = refused(gnp(net=net))
    assert error.location == Location("p.yaml", 12)
    assert "host bits are set" in error.why


def test_a_strictly_masked_rule_net_loads() -> None:
    (policy,) = loaded(gnp(net="10.64.0.0/16")).policies
    assert policy.ingress[0].source.nets == (ip_network("10.64.0.0/16"),)


NETWORK_SET = """\
apiVersion: projectcalico.org/v3
kind: {kind}
metadata:
  name: partners
{namespace}spec:
  nets: [{nets}]
"""


@pytest.mark.parametrize(
    ("kind", "namespace"), [("NetworkSet", "  namespace: shop\n"), ("GlobalNetworkSet", "")]
)
def test_a_network_set_takes_a_bare_address_as_its_host_route(kind: str, namespace: str) -> None:
    # field tag `cidr` -> validateCIDR -> ParseCIDROrIP: an address is its /32 or /128
    text = NETWORK_SET.format(kind=kind, namespace=namespace, nets='10.64.3.1, "2001:db8::7", 10.1.2.3/8')
    (network_set,) = loaded(text).network_sets
    assert network_set.nets == (
        ip_network("10.64.3.1/32"),
        ip_network("2001:db8::7/128"),
        ip_network("10.0.0.0/8"),  # not strictly masked there: host bits are masked off
    )


def test_a_network_set_net_with_a_zone_is_refused() -> None:
    text = NETWORK_SET.format(kind="GlobalNetworkSet", namespace="", nets='"fe80::1%eth0"')
    error = refused(text)
    assert error.location == Location("p.yaml", 6)
    assert "zone" in error.why


# --- knp.default. names --------------------------------------------------------------------------------------


def test_a_calico_network_policy_named_like_a_kubernetes_one_says_the_api_server_refuses_it() -> None:
    text = (
        "apiVersion: projectcalico.org/v3\nkind: NetworkPolicy\n"
        "metadata: {name: knp.default.deny-all, namespace: shop}\nspec: {selector: all()}\n"
    )
    error = refused(text)
    assert error.location == Location("p.yaml", 3)
    assert "The Calico API server (kubectl apply) refuses to create" in error.why
    assert "calicoctl would accept it" in error.why
    assert "networking.k8s.io/v1 NetworkPolicy named 'deny-all'" in error.why


# --- a catch-all notNets (validator.go v3.31.7 lines 1357-1373; absent in v3.27.5) ------------------------


@pytest.mark.parametrize("net", ["0.0.0.0/0", '"::/0"', '"0::/0"'])
def test_a_catch_all_not_nets_is_refused_for_331(net: str) -> None:
    text = gnp().replace("        nets: [10.0.0.0/8]", f"        notNets: [{net}]")
    error = refused(text, calico_version="3.31")
    assert error.location == Location("p.yaml", 12)
    assert "excludes every address" in error.why


def test_a_catch_all_not_nets_loads_for_327_which_has_no_such_check() -> None:
    text = gnp().replace("        nets: [10.0.0.0/8]", "        notNets: [0.0.0.0/0]")
    text = text.replace("default.allow-web", "allow-web").replace("  order: 100\n", "")
    (policy,) = loaded(text, calico_version="3.27").policies
    assert policy.ingress[0].source.not_nets == (ip_network("0.0.0.0/0"),)
