# Weir's everyday commands. `make run` and `make test` are the two that matter; the rest
# are their parts.
SHELL := /bin/bash
CARGO ?= cargo
CLUSTER_DIR := $(CURDIR)/.cluster
TEST_CLUSTER_DIR := $(CURDIR)/.cluster-test
CRD_FILE := crds/microservices.weir.dev.yaml
CHART_CRD_FILE := charts/weir/crds/microservices.weir.dev.yaml

.PHONY: run test lint unit crds crd-check cluster-test tools cluster-up cluster-down build bench

## run: the operator on $KUBECONFIG, or on a local control plane started for it when unset
run: build
	@hack/run.sh

## test: format, lint, unit tests, CRD drift, then cluster tests on a control plane of their own
test: lint unit crd-check cluster-test

build:
	$(CARGO) build --locked --bins

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --locked --all-targets -- -D warnings

unit:
	$(CARGO) test --locked --lib --bins

## crds: regenerate crds/ (and the chart's copy) from the Rust types
crds:
	$(CARGO) run --locked --quiet -- crd > $(CRD_FILE)
	cp $(CRD_FILE) $(CHART_CRD_FILE)

crd-check:
	@$(CARGO) run --locked --quiet -- crd | diff -u $(CRD_FILE) - \
	  || { echo "crds/ is stale: run 'make crds' and commit the result" >&2; exit 1; }
	@diff -u $(CRD_FILE) $(CHART_CRD_FILE) \
	  || { echo "the chart's CRDs differ from crds/: run 'make crds'" >&2; exit 1; }

cluster-test:
	@hack/cluster-test.sh

tools:
	hack/build-tools.sh

cluster-up:
	@hack/cluster-up.sh

cluster-down:
	@hack/cluster-down.sh

## bench: time N Microservices to Ready against the same objects applied directly (N=100)
bench:
	@hack/bench.sh
