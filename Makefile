# Weir's everyday commands. `make run` and `make test` are the two that matter; the rest
# are their parts.
SHELL := /bin/bash
CARGO ?= cargo
CLUSTER_DIR := $(CURDIR)/.cluster
TEST_CLUSTER_DIR := $(CURDIR)/.cluster-test
# Weir's CRDs by plural: `weir crd <plural>` prints crds/<plural>.weir.dev.yaml.
CRD_KINDS := microservices metrictemplates

.PHONY: run test lint unit crds crd-check image-check image cluster-test tools cluster-up cluster-down build release bench chaos fuzz

## run: the operator on $KUBECONFIG, or on a local control plane started for it when unset
run: build
	@hack/run.sh

## test: format, lint, unit tests, CRD drift, then cluster tests on a control plane of their own
test: lint unit crd-check image-check image cluster-test

build:
	$(CARGO) build --locked --bins

## release: the operator binary exactly as the Dockerfile builds it
release:
	$(CARGO) build --release --locked --bin weir

## image: the operator image (localhost/weir:dev) with buildah, from the release binary
image: release
	@hack/image.sh

# The public build compiles in the image: its build step stays the `release` target's command.
image-check:
	@grep -qxF 'RUN cargo build --release --locked --bin weir' Dockerfile \
	  || { echo "Dockerfile: its build step must be the 'release' target's command" >&2; exit 1; }
	@grep -qxF 'ENTRYPOINT ["/usr/local/bin/weir", "run"]' Dockerfile \
	  || { echo "Dockerfile: the entrypoint must be exec-form 'weir run'" >&2; exit 1; }

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) fmt --manifest-path fuzz/Cargo.toml -- --check
	$(CARGO) clippy --locked --all-targets -- -D warnings
	CARGO_TARGET_DIR=$(CURDIR)/target $(CARGO) clippy --locked --manifest-path fuzz/Cargo.toml --all-targets -- -D warnings

unit:
	$(CARGO) test --locked --lib --bins --examples
	@# The fuzz targets' bodies over their corpus, on stable (fuzz/ is a crate of its own).
	CARGO_TARGET_DIR=$(CURDIR)/target $(CARGO) test --locked --manifest-path fuzz/Cargo.toml

## crds: regenerate crds/ (and the chart's copy) from the Rust types
crds:
	@for kind in $(CRD_KINDS); do \
	  $(CARGO) run --locked --quiet -- crd $$kind > crds/$$kind.weir.dev.yaml; \
	  cp crds/$$kind.weir.dev.yaml charts/weir/crds/; \
	done
	hack/gen-reference.py

crd-check:
	@for kind in $(CRD_KINDS); do \
	  $(CARGO) run --locked --quiet -- crd $$kind | diff -u crds/$$kind.weir.dev.yaml - \
	    || { echo "crds/ is stale: run 'make crds' and commit the result" >&2; exit 1; }; \
	  diff -u crds/$$kind.weir.dev.yaml charts/weir/crds/$$kind.weir.dev.yaml \
	    || { echo "the chart's CRDs differ from crds/: run 'make crds'" >&2; exit 1; }; \
	done
	@hack/gen-reference.py --check

cluster-test:
	@hack/cluster-test.sh

tools:
	hack/build-tools.sh

cluster-up:
	@hack/cluster-up.sh

cluster-down:
	@hack/cluster-down.sh

## chaos: the fault-injection tests in their long form, on a control plane of their own
chaos:
	@hack/chaos.sh

## fuzz: every fuzz target under libFuzzer for FUZZ_SECONDS each (nightly toolchain)
fuzz:
	@hack/fuzz.sh

## bench: time N Microservices to Ready against the same objects applied directly (N=100)
bench:
	@hack/bench.sh
