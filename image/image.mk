# Images built without a container engine (image/build.py): Debian packages + acinode's wheel and its pinned
# dependencies, written as a reproducible OCI archive that `ctr images import` loads. Included from the Makefile.

##@ Images (no container engine)
IMAGE_ARCH ?= $(shell dpkg --print-architecture 2>/dev/null || echo amd64)
IMAGE_VERSION := $(shell sed -n 's/^appVersion: *"\{0,1\}\([^"]*\)"\{0,1\}/\1/p' helm/acinode/Chart.yaml)
# The chart's default image (values.yaml image.repository); the archive carries this name for containerd.
IMAGE_NAME ?= ghcr.io/acinode/acinode:$(IMAGE_VERSION)
IMAGE_ARCHIVE ?= dist/acinode-image.oci.tar
TEST_IMAGE_NAME ?= ghcr.io/acinode/acinode-test:$(IMAGE_VERSION)
TEST_IMAGE_ARCHIVE ?= dist/acinode-test-image.oci.tar
IMAGE_BUILD := $(PY) image/build.py

.PHONY: image-deps
image-deps: ## Install the Debian tools image/build.py needs (dpkg-deb, chroot, apt, the archive keyring) when missing.
	@missing=""; \
	command -v dpkg-deb >/dev/null || missing="$$missing dpkg"; \
	command -v chroot >/dev/null || [ -x /usr/sbin/chroot ] || missing="$$missing coreutils"; \
	command -v apt-get >/dev/null || missing="$$missing apt"; \
	[ -f /usr/share/keyrings/debian-archive-keyring.gpg ] || missing="$$missing debian-archive-keyring"; \
	if [ -n "$$missing" ]; then echo "image-deps: apt-get install$$missing" >&2; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >&2; fi

.PHONY: image
image: install image-deps ## Build the operator image (OCI archive $(IMAGE_ARCHIVE), no container engine); prints its digest last.
	@$(IMAGE_BUILD) build operator --arch $(IMAGE_ARCH) --name $(IMAGE_NAME) --out $(IMAGE_ARCHIVE)

.PHONY: test-image
test-image: install image-deps ## Build the seed's test-pod image (Debian with bash and curl) as $(TEST_IMAGE_ARCHIVE).
	@$(IMAGE_BUILD) build test --arch $(IMAGE_ARCH) --name $(TEST_IMAGE_NAME) --out $(TEST_IMAGE_ARCHIVE)

.PHONY: image-check
image-check: install image-deps ## Build the operator image twice from HEAD's sources; fail unless both digests match.
	@ref=$$(git rev-parse HEAD); \
	one=$$($(IMAGE_BUILD) build operator --arch $(IMAGE_ARCH) --name $(IMAGE_NAME) --git-ref $$ref --out .cache/image/check-1.oci.tar | tail -n1); \
	two=$$($(IMAGE_BUILD) build operator --arch $(IMAGE_ARCH) --name $(IMAGE_NAME) --git-ref $$ref --out .cache/image/check-2.oci.tar | tail -n1); \
	echo "first:  $$one"; echo "second: $$two"; \
	if [ "$$one" != "$$two" ]; then echo "image-check: the two builds differ" >&2; exit 1; fi; \
	cmp .cache/image/check-1.oci.tar .cache/image/check-2.oci.tar || exit 1; \
	echo "image-check: reproducible ($$ref)"; \
	$(IMAGE_BUILD) inspect .cache/image/check-1.oci.tar --expect-user 65532:65532 || exit 1; \
	if [ "$(IMAGE_ARCH)" = "$$(dpkg --print-architecture)" ]; then \
		chroot --userspec=65532:65532 .cache/image/rootfs/operator-$(IMAGE_ARCH) /usr/bin/acinode --version || exit 1; fi

.PHONY: image-lock
image-lock: install image-deps ## Re-resolve the image inputs: Debian packages (image/lock/) and PyPI wheels (image/requirements.lock).
	$(IMAGE_BUILD) lock operator
	$(IMAGE_BUILD) lock test
	$(IMAGE_BUILD) lock python
