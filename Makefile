# acinode — kubebuilder-style targets. `make` (or `make help`) lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
KUBE_VERSION ?= v1.37.2
CLUSTER_DIR ?= .cluster
CLUSTER := $(PY) tests/controlplane/kubecluster.py --state-dir $(CLUSTER_DIR)
PYTEST_ARGS ?=

##@ General
.PHONY: help
help: ## Show this help.
	@awk 'BEGIN {FS = ":.*##"; printf "Usage: make \033[36m<target>\033[0m\n"} /^[a-zA-Z_0-9-]+:.*?##/ { printf "  \033[36m%-18s\033[0m %s\n", $$1, $$2 } /^##@/ { printf "\n\033[1m%s\033[0m\n", substr($$0, 5) }' $(MAKEFILE_LIST)

##@ Development
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[test]'
	touch $@

.PHONY: install
install: $(VENV)/.installed ## Create the virtualenv and install acinode with its test tools.

.PHONY: lint
lint: install ## ruff, mypy (strict), the import-layer contracts, the REST-path layering check, actionlint.
	$(VENV)/bin/ruff check operator tests bench examples image
	$(VENV)/bin/ruff format --check operator tests bench examples image
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports
	$(PY) -m pytest -q -p no:cacheprovider tests/unit/test_layering.py
	@test -x .cache/bin/actionlint || { echo "actionlint v1.7.12 (Go module proxy) -> .cache/bin"; GOBIN=$(CURDIR)/.cache/bin go install github.com/rhysd/actionlint/cmd/actionlint@v1.7.12; }
	.cache/bin/actionlint

.PHONY: fmt
fmt: install ## Format the code and apply ruff's safe fixes.
	$(VENV)/bin/ruff format operator tests bench
	$(VENV)/bin/ruff check --fix operator tests bench

.PHONY: test
test: install kube ## Run every test: unit, emulator, contract and integration on the real control plane.
	$(PY) -m pytest $(PYTEST_ARGS)

.PHONY: test-unit
test-unit: install ## Run the tests that need no control plane.
	$(PY) -m pytest -m "not cluster" $(PYTEST_ARGS)

##@ Local control plane
.PHONY: kube
kube: install ## Build the control-plane binary (etcd, apiserver, controller-manager, scheduler, kubectl) once.
	$(CLUSTER) build

.PHONY: cluster-up
cluster-up: kube ## Start the local control plane in $(CLUSTER_DIR) and print the KUBECONFIG line.
	$(CLUSTER) up

.PHONY: cluster-down
cluster-down: install ## Stop the local control plane.
	$(CLUSTER) down

.PHONY: kubectl
kubectl: ## Run kubectl against the local control plane: make kubectl ARGS="get nodes".
	@bin/kubectl $(ARGS)

##@ Run
.PHONY: demo
demo: kube ## Run the seed story on the local control plane (virtual node, Deployment, curl, delete).
	$(PY) examples/demo.py

.PHONY: run
run: install ## Run the operator against $$KUBECONFIG (or the local control plane).
	$(VENV)/bin/acinode run $(RUN_ARGS)

.PHONY: emulator
emulator: install ## Run the ACI emulator on loopback.
	$(VENV)/bin/acinode emulator $(EMULATOR_ARGS)

.PHONY: bench
bench: kube ## Run the benchmarks in bench/ and print their JSON summary.
	$(PY) bench/run.py

# The charts of docs/performance.md, from bench/results/: the 1,000-pod peer run if there is one, else the 100-pod
# one, and every status_lag-*.json (one-node runs are drawn). bench/plots.py draws SVG with no plotting library.
PLOTS_PEER ?= $(firstword $(wildcard bench/results/peer-1000.json bench/results/peer-100.json))
PLOTS_STATUS_LAG ?= $(wildcard bench/results/status_lag-*.json)

.PHONY: plots
plots: install ## Draw docs/plots/*.svg from bench/results/ (peer-1000.json or peer-100.json, status_lag-*.json).
	$(PY) bench/plots.py $(if $(PLOTS_PEER),--peer $(PLOTS_PEER)) \
		$(if $(PLOTS_STATUS_LAG),--status-lag $(PLOTS_STATUS_LAG)) --out docs/plots/

# The Helm chart: helm (built from its Go module), chart CRD sync/verify, lint, template, image.
include helm/helm.mk

include image/image.mk

##@ Verification
.PHONY: verify
verify: lint verify-chart-crds helm-lint ## Everything CI checks besides tests: lint, types, import layers, chart CRDs, helm lint.

# Chaos, bad input, HA and security scenarios (make chaos); the short subset runs in make test.
include chaos.mk
include tests/controlplane/worker.mk
