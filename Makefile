# Berth build, run and test entry points. Every tool a target needs is
# installed by the target itself, pinned, through the Go module proxy or
# apt-get, so a fresh machine needs nothing but Go and make.

SHELL := /bin/bash
GO ?= go
BIN := $(CURDIR)/bin
export PATH := $(BIN):$(PATH)
export GOBIN := $(BIN)

CRANE_VERSION       := v0.22.1
REGCTL_VERSION      := v0.11.7
STATICCHECK_VERSION := v0.8.2

.PHONY: all build run test unit e2e fuzz lint tools clean

all: build

## build: compile registryd and clusterctl into ./bin
build:
	@mkdir -p $(BIN)
	CGO_ENABLED=0 $(GO) build -o $(BIN)/registryd ./cmd/registryd
	CGO_ENABLED=0 $(GO) build -o $(BIN)/clusterctl ./cmd/clusterctl

## run: the single-node default: local disk under ./data, embedded NATS, 127.0.0.1:5000
run: build
	$(BIN)/registryd serve

## tools: pinned crane, regctl and staticcheck into ./bin
tools: $(BIN)/crane $(BIN)/regctl $(BIN)/staticcheck

$(BIN)/crane:
	$(GO) install github.com/google/go-containerregistry/cmd/crane@$(CRANE_VERSION)
$(BIN)/regctl:
	$(GO) install github.com/regclient/regclient/cmd/regctl@$(REGCTL_VERSION)
$(BIN)/staticcheck:
	$(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
