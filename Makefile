# Berth build, run and test entry points. Every tool a target needs is
# installed by the target itself, pinned, through the Go module proxy or
# apt-get, so a fresh machine needs nothing but Go, make and Docker.

SHELL := /bin/bash
GO ?= go
BIN := $(CURDIR)/bin
export PATH := $(BIN):$(PATH)
export GOBIN := $(BIN)

CRANE_VERSION        := v0.22.1
REGCTL_VERSION       := v0.11.7
ORAS_VERSION         := v1.3.6
COSIGN_VERSION       := v3.1.3
STATICCHECK_VERSION  := v0.8.2
MINIO_VERSION        := v0.0.0-20260212201848-7aac2a2c5b7c
NATS_SERVER_VERSION  := v2.15.3
DISTRIBUTION_VERSION := v3.1.2

# Fuzz targets run briefly by `make test`: package:target pairs.
FUZZ_TARGETS := ./blob:FuzzParseContentRange ./blob:FuzzParseDigest \
	./node/api:FuzzParseManifest ./events:FuzzDecode ./fsm/resource:FuzzParseYAML \
	./node/admin:FuzzApply ./node/api:FuzzSplitRoute ./fsm:FuzzCheckSnapshot ./auth:FuzzParseScope \
	./node/api:FuzzRouteKind ./node/access:FuzzParseAuthorization ./node/api:FuzzNames
FUZZTIME ?= 8s
# Fuzzing runs on Go 1.27.3, fetched once through the module proxy (about 10 s,
# 76 MB): Go 1.26's fuzz coordinator can report the end of -fuzztime as a
# failure, "context deadline exceeded" with no failing input (golang/go#75804,
# fixed in 1.27). Everything else builds and tests on the machine's Go.
FUZZ_GO ?= GOTOOLCHAIN=go1.27.3 $(GO)
# apt-get needs root: sudo when make does not run as root.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: all build run test unit e2e fuzz lint imports tools haproxy chromium bench bench-cluster bench-events bench-auth bench-gc bench-mirror clean

all: build

# What `registryd version` and `clusterctl version` print. Override on the
# command line for a release: make build VERSION=v1.2.3. Without git (a
# source tarball) they fall back to "dev" and the toolchain's VCS stamp.
VERSION    ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT     ?= $(shell git rev-parse HEAD 2>/dev/null)
BUILD_DATE ?= $(shell date -u +%Y-%m-%dT%H:%M:%SZ)
BUILDINFO  := github.com/berth-registry/berth/internal/buildinfo
LDFLAGS    := -X $(BUILDINFO).version=$(VERSION) -X $(BUILDINFO).commit=$(COMMIT) -X $(BUILDINFO).date=$(BUILD_DATE)

## build: compile registryd and clusterctl (static) into ./bin, stamped with version, commit and date
build:
	@mkdir -p $(BIN)
	CGO_ENABLED=0 $(GO) build -ldflags '$(LDFLAGS)' -o $(BIN)/registryd ./cmd/registryd
	CGO_ENABLED=0 $(GO) build -ldflags '$(LDFLAGS)' -o $(BIN)/clusterctl ./cmd/clusterctl

## run: the single-node default: local disk under ./data, 127.0.0.1:5000
run: build
	$(BIN)/registryd serve

## test: everything CI runs: tools, build, lint, unit tests, fuzzing, end-to-end tests,
## phase by phase (.ci/test-phases), ending with a summary of each phase
test:
	@./.ci/test-phases

## unit: package tests (fsm, blob, events, node, api, ...), under the race detector
unit:
	$(GO) test -race -count=1 -timeout 15m $$($(GO) list ./... | grep -v /e2e)

## fuzz: each fuzz target for $(FUZZTIME), on $(FUZZ_GO); a Fuzz function missing from FUZZ_TARGETS is an error.
## Minimizing a new input is capped at 10 runs: on a loaded machine, shrinking a
## large snapshot seed outlasted -fuzztime and failed the run with no finding.
fuzz:
	@missing=$$(git ls-files '*_test.go' | xargs grep -hoE '^func Fuzz[A-Za-z0-9_]+' | sed 's/^func //' | sort -u | \
		while read f; do case " $(FUZZ_TARGETS) " in *":$$f "*) ;; *) echo "$$f";; esac; done); \
	if [ -n "$$missing" ]; then echo "add to FUZZ_TARGETS in the Makefile:" $$missing; exit 1; fi
	@set -e; for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; name=$${t##*:}; \
		echo "fuzz $$pkg $$name ($(FUZZTIME))"; \
		$(FUZZ_GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 10x $$pkg; \
	done

## e2e: real binaries driven by crane, regctl, oras, cosign, docker, clusterctl, MinIO and HAProxy.
## The whole cluster suite then runs again with TLS everywhere (BERTH_E2E_TLS=1:
## HTTPS for clients and HAProxy, mutual TLS between nodes, every client
## trusting a per-cluster CA). The two long GC race tests (about 7 minutes
## together, about GC, not transport) run in the plain pass only; every other
## cluster test runs both ways.
e2e: tools build
	BERTH_BIN=$(BIN) $(GO) test -count=1 -timeout 40m -v ./e2e/... 2>&1 | tee e2e.log | grep -E '^ *(=== RUN|--- |PASS|FAIL|ok|panic)|FAILOVER|ACKNOWLEDGED' ; test $${PIPESTATUS[0]} -eq 0
	@echo '== e2e/cluster again with TLS everywhere (BERTH_E2E_TLS=1) ==' | tee -a e2e.log
	BERTH_E2E_TLS=1 BERTH_BIN=$(BIN) $(GO) test -count=1 -timeout 30m -v -skip 'TestGCClusterUnderConcurrentPushes|TestGCClusterLeaderFailover' ./e2e/cluster 2>&1 | tee -a e2e.log | grep -E '^ *(=== RUN|--- |PASS|FAIL|ok|panic)|FAILOVER|ACKNOWLEDGED' ; test $${PIPESTATUS[0]} -eq 0

## lint: gofmt, go vet and staticcheck must be clean; imports point one way
lint: $(BIN)/staticcheck imports
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "not gofmt'ed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(BIN)/staticcheck ./...

# Which internal packages each top-level package may import (docs/architecture.md).
# A package may always import its own subpackages.
ALLOWED_IMPORTS := events: fsm:events blob: node:events,fsm,blob,auth,gc,replication \
	auth:fsm,events gc:fsm,events,blob replication:events,blob cmd:* e2e: internal:

## imports: fail on an import that points the wrong way
imports:
	@$(GO) list -f '{{.ImportPath}} {{join .Imports " "}}' ./... | sed 's#github.com/berth-registry/berth/##g' | \
	awk -v rules="$(ALLOWED_IMPORTS)" 'BEGIN { n = split(rules, r, " "); for (i = 1; i <= n; i++) { split(r[i], kv, ":"); allow[kv[1]] = "," kv[2] "," } } \
	{ split($$1, p, "/"); top = p[1]; if (!(top in allow)) { print "unknown top-level package " $$1; bad = 1; next } \
	  for (i = 2; i <= NF; i++) { if ($$i ~ /\./ || $$i !~ /^(events|fsm|blob|node|auth|gc|replication|cmd|e2e|internal)(\/|$$)/) continue; \
	    split($$i, q, "/"); dep = q[1]; if (dep == top || allow[top] == ",*," || index(allow[top], "," dep ",")) continue; \
	    print $$1 " must not import " $$i; bad = 1 } } END { exit bad }'

## tools: pinned crane, regctl, oras, cosign, staticcheck, MinIO, nats-server and CNCF Distribution (push and proxy e2e, benchmarks) into ./bin; HAProxy and Chromium from Debian
tools: $(BIN)/crane $(BIN)/regctl $(BIN)/oras $(BIN)/cosign $(BIN)/staticcheck $(BIN)/minio $(BIN)/nats-server $(BIN)/registry haproxy chromium

$(BIN)/crane:
	$(GO) install github.com/google/go-containerregistry/cmd/crane@$(CRANE_VERSION)
$(BIN)/regctl:
	$(GO) install github.com/regclient/regclient/cmd/regctl@$(REGCTL_VERSION)
# oras and cosign drive the token flow in e2e/single/auth_test.go.
$(BIN)/oras:
	$(GO) install oras.land/oras/cmd/oras@$(ORAS_VERSION)
$(BIN)/cosign:
	@echo "building cosign $(COSIGN_VERSION) (a few minutes, once)"
	$(GO) install github.com/sigstore/cosign/v3/cmd/cosign@$(COSIGN_VERSION)
$(BIN)/staticcheck:
	$(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
# MinIO builds from source in a few minutes; static so it runs FROM scratch.
$(BIN)/minio:
	@echo "building MinIO $(MINIO_VERSION) from source (a few minutes, once)"
	CGO_ENABLED=0 $(GO) install github.com/minio/minio@$(MINIO_VERSION)
# The same nats-server release Berth embeds (go.mod), for e2e's external
# three-node JetStream cluster.
$(BIN)/nats-server:
	CGO_ENABLED=0 $(GO) install github.com/nats-io/nats-server/v2@$(NATS_SERVER_VERSION)
haproxy:
	@command -v haproxy >/dev/null || { echo "installing haproxy from Debian$(if $(SUDO), (apt-get needs root: using sudo))"; \
		$(SUDO) apt-get update && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y haproxy; }
# Headless Chromium loads the web console's pages in e2e (console_test.go).
chromium:
	@command -v chromium >/dev/null || { echo "installing chromium from Debian$(if $(SUDO), (apt-get needs root: using sudo))"; \
		$(SUDO) apt-get update && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y chromium; }

## bench: Berth against CNCF Distribution $(DISTRIBUTION_VERSION), side by side (see BENCHMARKS.md)
bench: build $(BIN)/registry
	$(GO) build -o $(BIN)/berth-bench ./cmd/berth-bench
	$(BIN)/berth-bench limits --dir $(CURDIR)
	$(BIN)/berth-bench compare --berth $(BIN)/registryd --distribution $(BIN)/registry \
		--rounds 3 --duration 5s --markdown bench-results.md --json bench-results.json
	$(BIN)/berth-bench scale --repos 100000 --tags-per-repo 10

## bench-cluster: 3 Berth nodes on MinIO behind HAProxy against Distribution on the same MinIO
bench-cluster: build tools $(BIN)/registry
	$(GO) build -o $(BIN)/berth-bench ./cmd/berth-bench
	$(BIN)/berth-bench compare-cluster --berth $(BIN)/registryd --distribution $(BIN)/registry \
		--minio $(BIN)/minio --haproxy $$(command -v haproxy) \
		--rounds 3 --duration 5s --markdown bench-cluster-results.md --json bench-cluster-results.json

## bench-gc: GC over 100k blobs in 10k repositories (mark, sweep, memory) on the filesystem and MinIO; push-small with and without GC running
bench-gc: build $(BIN)/minio
	$(GO) build -o $(BIN)/berth-bench ./cmd/berth-bench
	$(BIN)/berth-bench gc --repos 10000 --blobs-per-repo 10 --drivers filesystem,s3 --minio $(BIN)/minio \
		--berth $(BIN)/registryd --rounds 3 --duration 5s --json bench-gc-results.json

## bench-events: one node: push-small without and with a webhook, outbox events/s, push-to-webhook latency
bench-events: build
	$(GO) build -o $(BIN)/berth-bench ./cmd/berth-bench
	$(BIN)/berth-bench events --berth $(BIN)/registryd --rounds 3 --duration 5s --json bench-events-results.json

## bench-auth: one node with auth.mode off against one with it on: manifest-head and push-small through the token flow
bench-auth: build
	$(GO) build -o $(BIN)/berth-bench ./cmd/berth-bench
	$(BIN)/berth-bench auth-ab --berth $(BIN)/registryd --workload manifest-head,push-small \
		--rounds 3 --duration 5s --json bench-auth-results.json

## bench-mirror: an origin and a mirror on one machine: 200 pushes at full speed, lag from the origin's 201 to pullability at the mirror
bench-mirror: build
	$(GO) build -o $(BIN)/berth-bench ./cmd/berth-bench
	$(BIN)/berth-bench mirror --berth $(BIN)/registryd --pushes 200 --concurrency 4 --json bench-mirror-results.json

$(BIN)/registry:
	$(GO) install github.com/distribution/distribution/v3/cmd/registry@$(DISTRIBUTION_VERSION)

clean:
	rm -rf $(BIN) e2e.log bench-results.md bench-results.json bench-cluster-results.* bench-events-results.json bench-auth-results.json bench-gc-results.json bench-mirror-results.json
