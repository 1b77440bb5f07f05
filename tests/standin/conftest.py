"""Fixtures of the cluster stand-in tests: an API server on 127.0.0.1 (no root needed) and, as root,
a whole stand-in cluster whose pods are network namespaces (`standin_cluster`).

Every server and namespace is torn down in the fixture's finally, so nothing here outlives a test.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from standin_apiserver import CONTEXT, ApiOnly, StandinApi, StandinHttpServer, write_kubeconfig
from standin_cluster import StandinCluster
from standin_cluster import standin_cluster as build_cluster
from standin_served import ServedApi
from standin_store import ObjectStore

from calico_conformance.probe.netns_lab import missing_requirements


@pytest.fixture
def standin_api(tmp_path: Path) -> Iterator[ApiOnly]:
    """A stand-in API server (discovery from the pinned release's served resources) and its kubeconfig."""
    api = StandinApi(ServedApi.load(), ObjectStore())
    server = StandinHttpServer(api)
    server.start()
    kubeconfig = tmp_path / "kubeconfig"
    write_kubeconfig(str(kubeconfig), server.url, CONTEXT)
    try:
        yield ApiOnly(api, server, kubeconfig)
    finally:
        server.stop()


@pytest.fixture
def standin_cluster(tmp_path: Path) -> Iterator[StandinCluster]:
    """A whole stand-in cluster (pods are network namespaces); needs root, `ip` and `nft`."""
    reason = missing_requirements()
    if reason is not None:
        pytest.skip(f"the cluster stand-in: {reason}")
    with build_cluster(tmp_path) as cluster:
        yield cluster
