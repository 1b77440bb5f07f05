"""`calico-conformance lint`: policy mistakes found with the oracle, before they reach a cluster."""
