"""Dataplane tests on a real Linux lab of network namespaces (root)."""
