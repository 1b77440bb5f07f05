"""Mutation testing of the suites: proof that they catch what they exist to catch (`make mutation`).

`python -m calico_conformance.mutation` copies the reference inputs (policy set, tenancy layout, cluster
register) to a temporary directory once per fault of the catalogue, applies the fault to the copy, runs
every suite on the static target over it and prints a table: fault, tests that failed, caught or missed.
The unmutated copy runs first and must pass. The exit status is 0 only when the baseline passes and
every fault is caught.

* `catalogue.py` — the faults;
* `workspace.py` — the copy and the structural (and, for duplicate keys, textual) edits;
* `runner.py` — one pytest process per fault, the verdict and the table;
* `__main__.py` — the command line.
"""
