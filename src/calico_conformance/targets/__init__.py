"""Targets: where a reachability matrix comes from (`base`: the types; `registry`: the `--target` table;
`static`: the oracle as a target; the live targets are in `calico_conformance.cluster`)."""
