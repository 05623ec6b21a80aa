# Helm chart targets (the images: image/image.mk). Included from the top-level Makefile (`include helm/helm.mk`), which
# defines PY, VENV, PYTEST_ARGS and the `install` target used here.

CHART_DIR := helm/acinode
CHART_CRDS := $(notdir $(wildcard crds/*.yaml))
HELMBIN := $(PY) tests/helm/helmbin.py
# helm keeps its caches and repositories config away from the user's own helm setup.
HELM_ENV := HELM_CACHE_HOME=$(CURDIR)/.cache/helm/home/cache HELM_CONFIG_HOME=$(CURDIR)/.cache/helm/home/config \
	HELM_DATA_HOME=$(CURDIR)/.cache/helm/home/data

##@ Helm chart
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
