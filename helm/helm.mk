# Helm chart and operator image targets. Included from the top-level Makefile (`include helm/helm.mk`), which
# defines PY, VENV, PYTEST_ARGS and the `install` target used here.

CHART_DIR := helm/acinode
CHART_CRDS := $(notdir $(wildcard crds/*.yaml))
HELMBIN := $(PY) tests/helm/helmbin.py
# helm keeps its caches and repositories config away from the user's own helm setup.
HELM_ENV := HELM_CACHE_HOME=$(CURDIR)/.cache/helm/home/cache HELM_CONFIG_HOME=$(CURDIR)/.cache/helm/home/config \
	HELM_DATA_HOME=$(CURDIR)/.cache/helm/home/data
IMAGE ?= acinode:$(shell sed -n 's/^appVersion: *"\{0,1\}\([^"]*\)"\{0,1\}/\1/p' $(CHART_DIR)/Chart.yaml)
CONTAINER_ENGINE ?=

##@ Helm chart and image
.PHONY: helm
helm: install ## Build helm from its pinned Go module (tests/helm/go.mod) once, and print its path.
	@$(HELMBIN)

.PHONY: update-chart-crds
update-chart-crds: ## Copy the CRDs from crds/ (the single source) into the chart.
	cp $(addprefix crds/,$(CHART_CRDS)) $(CHART_DIR)/crds/

.PHONY: verify-chart-crds
verify-chart-crds: ## Fail when the chart's CRDs differ from crds/ (fix: make update-chart-crds).
	@status=0; for crd in $(CHART_CRDS); do \
		diff -u crds/$$crd $(CHART_DIR)/crds/$$crd || { echo "$(CHART_DIR)/crds/$$crd differs from crds/$$crd: run make update-chart-crds" >&2; status=1; }; \
	done; exit $$status

.PHONY: helm-lint
helm-lint: install verify-chart-crds ## helm lint --strict the chart (default values and the documented variants).
	@helm=$$($(HELMBIN)) && \
	$(HELM_ENV) $$helm lint --strict $(CHART_DIR) && \
	$(HELM_ENV) $$helm lint --strict $(CHART_DIR) --set emulator.enabled=true && \
	$(HELM_ENV) $$helm lint --strict $(CHART_DIR) --set azure.identity=workloadIdentity \
		--set azure.workloadIdentity.clientId=00000000-0000-0000-0000-000000000001

.PHONY: helm-template
helm-template: install ## Render the chart with default values (ARGS="--set emulator.enabled=true" for others).
	@helm=$$($(HELMBIN)) && $(HELM_ENV) $$helm template acinode $(CHART_DIR) --namespace acinode-system $(ARGS)

.PHONY: test-helm
test-helm: install kube ## Chart tests: lint/template variants; install, RBAC, seed story and fail-over on the control plane.
	$(PY) -m pytest tests/helm $(wildcard tests/e2e/test_helm*.py) $(PYTEST_ARGS)

.PHONY: image
image: ## Build the operator image $(IMAGE) with docker or podman (CONTAINER_ENGINE=… to choose).
	@engine="$(CONTAINER_ENGINE)"; \
	if [ -z "$$engine" ]; then \
		for candidate in docker podman; do \
			if command -v $$candidate >/dev/null 2>&1 && $$candidate info >/dev/null 2>&1; then engine=$$candidate; break; fi; \
		done; \
	fi; \
	if [ -z "$$engine" ]; then \
		echo "make image: no container engine available (docker or podman, with a running engine); nothing built." >&2; \
		exit 1; \
	fi; \
	echo "$$engine build -t $(IMAGE) ."; \
	$$engine build --build-arg VERSION=$(lastword $(subst :, ,$(IMAGE))) -t $(IMAGE) .
