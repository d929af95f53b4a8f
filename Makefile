# Locust Kubernetes Operator — developer entry points.
#   make demo   boots the embedded local cluster and runs a LocustTest through the operator
#   make test   everything CI proves (lint, generated-manifest drift, unit and end-to-end tests)
#   make bench  the operator benchmark at scale (release build, N = 100, 500, 1000); writes docs/performance.md
#   make reliability  the fault tests at full length (50 SIGKILLs, 10 failovers; docs/reliability.md)

SHELL := /usr/bin/env bash
.SHELLFLAGS := -euo pipefail -c
CARGO ?= cargo
export CARGO_TERM_COLOR ?= never

.PHONY: all build tools generate check-manifests fmt lint unit test demo demo-dev cluster bench clean reliability fuzz

all: build

build:
	$(CARGO) build --workspace --bins

## Go tools (etcd, kube-apiserver, controller-manager, scheduler, kwok, opm, operator-sdk, OLM), cached outside the repo.
tools:
	bash olm-tests/tools/build.sh

## Regenerate bundle/, catalog/ and bundle.Dockerfile from the Rust types.
generate:
	$(CARGO) run -q -p manifests-gen -- generate

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
test: lint check-manifests tools build
	LOCUST_REQUIRE_TOOLS=1 $(CARGO) test --workspace -- --test-threads=2

## Boot the local cluster, install the operator through OLM (catalog -> Subscription), run the sample LocustTest, tear down.
demo: tools build
	@echo "make demo: the first run builds the pinned Kubernetes tools from Go modules (see olm-tests/tools/README.md for the measured time); later runs reuse them"
	$(CARGO) run -q -p olm-tests --bin local-cluster -- demo

## Faster path for development: the operator as a local process, no OLM.
demo-dev: tools build
	$(CARGO) run -q -p olm-tests --bin local-cluster -- demo --operator-process

## Just the cluster, until Ctrl-C (prints the KUBECONFIG to use).
cluster: tools
	$(CARGO) run -q -p olm-tests --bin local-cluster -- up

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
