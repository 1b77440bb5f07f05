# calico-conformance — every job a user or CI runs. `make help` lists them.
VENV    ?= .venv
PY      := $(VENV)/bin/python
PYTEST  := $(PY) -m pytest
REPORTS ?= reports
CLUSTERS ?= finland,germany,helsinki
CONTEXTS ?=
# Probes in existing namespaces (never Service endpoints: their readiness gate is never set) and the
# positive-control tier (cluster-scoped) are what make a nightly run prove anything; drop them to audit only.
NIGHTLY_FLAGS ?= --probe-existing-namespaces --allow-cluster-scoped

.DEFAULT_GOAL := help
.PHONY: help setup test test-unit test-netns test-plugin test-standin bench-standin static lint typecheck bench mutation conformance nightly clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

$(PY):
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

setup: $(PY) ## create .venv and install the project with its test extras; as root also the netns tools (apt)
	@.ci/system-packages.sh
	$(PY) -m pip install --quiet -e '.[test]'

test: ## the project's own tests (unit, netns dataplane, plugin, cluster stand-in) and the suites on the static target
	$(PYTEST) tests -q -n auto --dist loadgroup
	$(MAKE) --no-print-directory static

test-unit: ## pure unit tests only (no root needed)
	$(PYTEST) tests/unit -q

test-netns: ## the real Linux dataplane tests (root)
	$(PYTEST) tests/netns -q

test-plugin: ## pytester runs of the plugin
	$(PYTEST) tests/plugin -q

test-standin: ## the cluster stand-in alone: its API, pods, and the suites run with --target=kubeconfig against it (root, kubectl)
	$(PYTEST) tests/standin -q

static: ## the user-facing suites with no cluster: the oracle over both reference policy sets
	$(PYTEST) suites --target=static -q --junitxml=$(REPORTS)/static-junit.xml
	$(PYTEST) suites --target=static -q --calico-version 3.27 --report-dir $(REPORTS)/v3.27 --junitxml=$(REPORTS)/v3.27/static-junit.xml

lint: ## ruff
	$(PY) -m ruff check src tests suites fixtures benchmarks conftest.py

typecheck: ## mypy --strict on src/
	$(PY) -m mypy

bench-standin: ## standin_run alone: the reference set on the cluster stand-in, timed (root, kubectl)
	@mkdir -p $(REPORTS)
	$(PY) benchmarks/bench_standin.py

bench: ## benchmarks, standin_run included (about 3 minutes of the total); figures go to reports/bench.json
	@mkdir -p $(REPORTS)
	@for bench in benchmarks/bench_*.py; do echo "== $$bench"; $(PY) $$bench || exit 1; done
	@echo "== $(REPORTS)/bench.json"; cat $(REPORTS)/bench.json

mutation: ## apply the fault catalogue to the reference set: every fault caught, every behaviour-preserving edit passed
	$(PY) -m calico_conformance.mutation

conformance: ## CI gate before customer handover: kind clusters for all three CIDR layouts (needs Docker + kind)
	$(PYTEST) suites --target=kind --clusters=$(CLUSTERS) --junitxml=$(REPORTS)/conformance-junit.xml --alluredir=$(REPORTS)/allure-results

nightly: ## regression against existing clusters: make nightly CONTEXTS="finland=ctx-fi germany=ctx-de"
	@test -n "$(CONTEXTS)" || { echo 'usage: make nightly CONTEXTS="finland=CTX germany=CTX"'; exit 2; }
	$(PYTEST) suites --target=kubeconfig $(foreach c,$(CONTEXTS),--context $(c)) --clusters=$(shell echo "$(foreach c,$(CONTEXTS),$(firstword $(subst =, ,$(c))))" | tr ' ' ',') $(NIGHTLY_FLAGS) --junitxml=$(REPORTS)/nightly-junit.xml --alluredir=$(REPORTS)/allure-results

clean: ## remove generated reports and caches (keeps .venv)
	find $(REPORTS) -mindepth 1 ! -name README.md -exec rm -rf {} +
	rm -rf .pytest_cache .mypy_cache .ruff_cache .hypothesis
