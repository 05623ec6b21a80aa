# Chaos, bad input, HA and security (issue 10): included by the Makefile (`include chaos.mk`).
# `make test` runs the short CI subset of tests/chaos; `make chaos` runs every scenario and prints the table.
CHAOS_SCALE ?= 40
CHAOS_RESULTS ?= $(abspath .cache/chaos-results.jsonl)

##@ Reliability
.PHONY: chaos
chaos: install kube ## Run every chaos scenario (faults, outages, bad input, HA, security, trust); print the invariant table (< 90 min).
	@rm -f $(CHAOS_RESULTS); status=0; \
	ACINODE_CHAOS_LONG=1 ACINODE_CHAOS_SCALE=$(CHAOS_SCALE) ACINODE_CHAOS_RESULTS=$(CHAOS_RESULTS) \
		timeout 5400 $(PY) -m pytest -q -rfE $(PYTEST_ARGS) tests/chaos || status=$$?; \
	ACINODE_CHAOS_RESULTS=$(CHAOS_RESULTS) $(PY) -c 'import sys; sys.path.insert(0, "tests"); \
		from chaos import invariants; print(invariants.table(invariants.read_results()))'; \
	exit $$status
