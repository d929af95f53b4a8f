# Locust Kubernetes Operator — developer entry points.
#   make demo   boots the embedded local cluster with a real node and runs real Locust tests through the operator
#   make test   everything CI proves (lint, generated-manifest drift, unit and end-to-end tests)
#   make bench  the operator benchmark at scale (release build, N = 100, 500, 1000); writes docs/performance.md
#   make reliability  the fault tests at full length (50 SIGKILLs, 10 failovers; docs/reliability.md)

SHELL := /usr/bin/env bash
.SHELLFLAGS := -euo pipefail -c
CARGO ?= cargo
export CARGO_TERM_COLOR ?= never

.PHONY: all build tools images generate check-manifests fmt lint unit test demo demo-dev cluster bench clean reliability fuzz

all: build

build:
	$(CARGO) build --workspace --bins

## Go tools (etcd, kube-apiserver, controller-manager, scheduler, kwok, opm, operator-sdk, OLM, and the real
## node's kubelet, kube-proxy, containerd, runc, CNI plugins, CoreDNS), cached outside the repo; installs the
## few Debian packages Go cannot replace (olm-tests/tools/host-packages.sh).
tools:
	bash olm-tests/tools/build.sh

## Container images for the real node (pause, Locust, HTTP target, operator), built without a daemon as OCI
## archives, cached outside the repo (olm-tests/images/README.md).
images: tools
	bash olm-tests/images/build.sh

## Regenerate bundle/, catalog/, bundle.Dockerfile and docs/api.md from the Rust types.
generate:
	$(CARGO) run -q -p manifests-gen -- generate
	UPDATE_API_DOC=1 $(CARGO) test -q -p locust-k8s-operator --test api_reference

## Fail if the committed bundle/catalog differ from what the generator produces.
check-manifests:
	$(CARGO) run -q -p manifests-gen -- check

fmt:
	$(CARGO) fmt --all

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

unit:
	$(CARGO) test --workspace --lib --bins

## The README's test command, and what CI runs.
test: lint check-manifests tools images build
	LOCUST_REQUIRE_TOOLS=1 $(CARGO) test --workspace -- --test-threads=2

## Boot the local cluster with a real node, install the operator through OLM (catalog -> Subscription -> operator pods),
## run the sample LocustTest and a threshold-breaking copy in real containers, tear down.
demo: tools images build
	$(CARGO) run -q -p olm-tests --bin local-cluster -- demo

## Faster path for development: the operator as a process in the cluster's network namespace, no OLM.
demo-dev: tools images build
	$(CARGO) run -q -p olm-tests --bin local-cluster -- demo --operator-process

## Just the cluster (kwok nodes and the real node), until Ctrl-C (prints the KUBECONFIG to use).
cluster: tools images
	$(CARGO) run -q -p olm-tests --bin local-cluster -- up --real-node

## Benchmark the release-built operator on fresh local clusters (about 15 minutes;
## not part of `make test`, whose bench_smoke test runs it at N = 20).
bench: tools
	$(CARGO) build --release -p locust-k8s-operator
	$(CARGO) run --release -q -p olm-tests --bin bench -- --release --sizes 100,500,1000 --out docs/performance.md

clean:
	$(CARGO) clean

## The fault tests at full length (CI runs them shorter): 50 SIGKILLs of the operator, 10 leader failovers.
reliability: tools build
	LOCUST_REQUIRE_TOOLS=1 LOCUST_SOAK_KILLS=50 LOCUST_FAILOVER_TRIALS=10 \
	  $(CARGO) test -p olm-tests --test reliability_soak --test reliability_faults --test reliability_sandbox \
	  -- --test-threads=2 --nocapture 2>&1 | tee target/reliability.log | grep -E '^(FIGURE|test |SKIP)|test result|^Error'

## Fuzz every parser of untrusted input, FUZZ_SECONDS (default 20) per target, with nightly (docs/fuzzing.md).
fuzz:
	bash operator/fuzz/run.sh $(or $(FUZZ_SECONDS),20)
