# nodenet — run `make help` for the targets.
SHELL := /usr/bin/env bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

OUT        ?= $(CURDIR)/_output
BIN        := $(OUT)/bin
TOOLS      := $(OUT)/tools
DAEMONS    := routerd proxyd firewalld
# Every module of the workspace, as package patterns (go.work makes one build).
PKGS       := ./api/... ./internal/... ./routerd/... ./proxyd/... ./firewalld/... ./test/...
VERSION    ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT     ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
LDFLAGS    := -X github.com/nodenet/nodenet/internal/version.Version=$(VERSION) \
              -X github.com/nodenet/nodenet/internal/version.Commit=$(COMMIT)
GOTEST     ?= go test
export GOWORK := $(CURDIR)/go.work

.PHONY: help
help: ## Show this help.
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-14s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: build
build: ## Build the three daemons into _output/bin.
	go build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/ $(foreach d,$(DAEMONS),./$(d)/cmd/$(d))

.PHONY: test
test: ## Unit tests of every module (no root needed).
	$(GOTEST) -race -count=1 $(PKGS)

.PHONY: test-all
test-all: deps verify test ## Everything CI runs: install deps, verify, all test layers.

.PHONY: deps
deps: ## Install what the tests need (idempotent; Debian packages need root).
	./hack/install-deps.sh

.PHONY: tools
tools: ## Build the pinned code generators and linters into _output/tools.
	cd tools && GOWORK=off go build -o $(TOOLS)/ google.golang.org/protobuf/cmd/protoc-gen-go google.golang.org/grpc/cmd/protoc-gen-go-grpc honnef.co/go/tools/cmd/staticcheck
	cd tools/buf && GOWORK=off go build -o $(TOOLS)/ github.com/bufbuild/buf/cmd/buf

.PHONY: generate
generate: tools ## Regenerate the API's Go code and go.work.
	./hack/update-go-work.sh
	./hack/generate-api.sh $(TOOLS) api

.PHONY: lint
lint: tools ## go vet, staticcheck and buf lint.
	go vet $(PKGS)
	$(TOOLS)/staticcheck $(PKGS)
	cd api && $(TOOLS)/buf lint

.PHONY: verify
verify: tools lint ## Fail when generated code, go.work, go.mod files or formatting are stale.
	./hack/verify.sh $(TOOLS)

.PHONY: clean
clean: ## Remove build output.
	rm -rf $(OUT)

.PHONY: demo
demo: build ## Run the local demo (today: the three daemons of one node, with live status).
	./hack/demo.sh
