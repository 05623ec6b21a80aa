# The local control plane's opt-in worker node (docs/worker-node.md) and the seed's story with the operator in
# the cluster. Included from the top-level Makefile.
#
#   make cluster-up WORKER=1    control plane + worker node (kubelet, kube-proxy, containerd; needs root and
#                               apt-get install containerd runc containernetworking-plugins iproute2 iptables)
#   make cluster-down           stops the worker too (when one runs), then the control plane
#   make demo-helm              helm install with dist/acinode-image.oci.tar (make image), the seed's story

WORKER ?=
WORKERNODE := $(PY) tests/controlplane/workernode.py

# With WORKER=1 (or while a worker node runs in $(CLUSTER_DIR)), `make kube/cluster-up/cluster-down` go through
# workernode.py, which runs kubecluster.py for the control plane first and then the worker. Without, unchanged.
ifneq ($(or $(filter 1 yes true,$(WORKER)),$(wildcard $(CLUSTER_DIR)/worker/pids.json)),)
CLUSTER := $(WORKERNODE) --with-control-plane --state-dir $(CLUSTER_DIR)
endif

##@ Worker node (opt-in)
.PHONY: worker-check
worker-check: install ## Say whether this machine can run the worker node (root, Linux, Debian's packages).
	$(WORKERNODE) check

.PHONY: worker-build
worker-build: install ## Build the kubelet/kube-proxy binary, the pause and netcheck images (once).
	$(WORKERNODE) build

.PHONY: worker-up
worker-up: worker-build ## Start a worker node beside a running control plane ($(CLUSTER_DIR)).
	$(WORKERNODE) --state-dir $(CLUSTER_DIR) up

.PHONY: worker-down
worker-down: install ## Stop the worker node and remove its namespaces, mounts and cgroups.
	$(WORKERNODE) --state-dir $(CLUSTER_DIR) down

.PHONY: worker-status
worker-status: install ## The worker node's processes.
	$(WORKERNODE) --state-dir $(CLUSTER_DIR) status

.PHONY: worker-import
worker-import: install ## Load OCI archives into the worker's containerd: make worker-import ARCHIVES="dist/x.oci.tar".
	$(WORKERNODE) --state-dir $(CLUSTER_DIR) import $(ARCHIVES)

.PHONY: demo-helm
demo-helm: install ## The seed's story with the operator installed by helm on the worker node (after cluster-up WORKER=1, make image).
	$(PY) tests/controlplane/demo_helm.py --state-dir $(CLUSTER_DIR) $(DEMO_HELM_ARGS)
