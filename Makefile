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
# Build tags of the root-only layers: kernel (host kernel, network
# namespaces) and vm (inside the VM with Debian's kernel). lint checks them all.
LINT_TAGS  := kernel,vm
# The end-to-end layer: e2e (host side) and e2eguest (inside the VM).
E2E_TAGS   := e2e e2eguest
VERSION    ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT     ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
LDFLAGS    := -X github.com/nodenet/nodenet/internal/version.Version=$(VERSION) \
              -X github.com/nodenet/nodenet/internal/version.Commit=$(COMMIT)
GOTEST     ?= go test
# Images: every timestamp in them is the commit time, so a rebuild of the
# same commit gives the same digests. REGISTRY=host[:port]/path pushes.
SOURCE_DATE_EPOCH ?= $(shell git log -1 --format=%ct 2>/dev/null || echo 0)
REGISTRY   ?=
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
	cd deploy/imagebuild && GOWORK=off $(GOTEST) -count=1 -timeout 30m ./...

.PHONY: chart
# Helm runs as a library (helm.sh/helm/v3 in test/chart/go.mod, a module outside
# the workspace: Helm's dependencies must not raise the daemons'); no helm binary.
# `cd test/chart && GOWORK=off go test . -update` rewrites the golden renders and test/controlplane/rbac.yaml.
chart: controlplane ## Helm chart: lint and render every daemon subset in both layouts against golden files, guards, RBAC golden, one-daemon upgrade, server-side dry run.
	cd test/chart && GOWORK=off $(GOTEST) -count=1 .

.PHONY: cni-plugins
cni-plugins: ## Build the CNI plugins the test pods are attached with (once; cached outside the repo).
	./hack/build-cni-plugins.sh >/dev/null

.PHONY: vm-assets
vm-assets: ## Fetch Debian's kernel and build the VM's initramfs (once; cached outside the repo).
	./hack/vm-assets.sh >/dev/null

.PHONY: test-kernel
# test/policy runs firewalld against a real control plane (built once, cached).
test-kernel: cni-plugins controlplane ## Root tests on the host kernel, in throwaway network namespaces.
	$(GOTEST) -tags kernel -count=1 ./test/netns/... ./proxyd/... ./firewalld/... ./routerd/... ./test/policy/... ./test/routing/...

.PHONY: vmexec
vmexec: ## Build the VM runner used as `go test -exec`.
	go build -o $(BIN)/vmexec ./test/cmd/vmexec

.PHONY: test-vm
# The netns topology runs here too: Debian's kernel has SCTP, the host's not.
test-vm: vm-assets cni-plugins vmexec ## Tests needing IPVS, IPIP, dummy or SCTP, inside a VM booting Debian's kernel.
	$(GOTEST) -tags kernel,vm -exec $(BIN)/vmexec -count=1 ./test/vm/... ./test/netns/... ./proxyd/... ./firewalld/... ./routerd/internal/routes/

.PHONY: bench
bench: vm-assets vmexec controlplane cni-plugins ## Benchmarks at cluster scale: numbers are printed, never asserted (kernel parts need root).
	$(GOTEST) -run '^$$' -bench . -benchtime 3x ./proxyd/internal/controller/ ./proxyd/internal/nft/ ./firewalld/internal/nft/ ./firewalld/internal/policy/ ./firewalld/internal/controller/
	$(GOTEST) -tags kernel -run '^$$' -bench . -benchtime 1x ./proxyd/internal/vip/ ./proxyd/internal/nft/ ./firewalld/internal/nft/ ./firewalld/internal/policy/ ./routerd/internal/routes/
	$(GOTEST) -tags vm -exec $(BIN)/vmexec -run '^$$' -bench . -benchtime 1x -timeout 30m ./proxyd/internal/ipvs/
	$(GOTEST) -tags kernel -run '^$$' -bench Convergence5k -benchtime 1x ./test/routing/

.PHONY: e2e
e2e: controlplane cni-plugins vm-assets ## End to end in a VM (Debian's kernel) against a real control plane on the host: proxyd alone, and routerd + proxyd + firewalld on three nodes.
	$(GOTEST) -tags e2e -count=1 -v ./test/e2e/...

.PHONY: controlplane
controlplane: ## Build kube-apiserver, kube-controller-manager and etcd once (cached outside the repo).
	./hack/build-controlplane.sh >/dev/null

.PHONY: test-all
# The cached builds come first, so no go test waits on one (or times out).
test-all: deps controlplane cni-plugins vm-assets verify test chart test-kernel test-vm e2e demo-check ## Everything CI runs: install deps, verify, all test layers, and the demo (shown, then stopped both ways).

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
	go vet -tags $(LINT_TAGS) $(PKGS)
	$(TOOLS)/staticcheck $(PKGS)
	$(TOOLS)/staticcheck -tags $(LINT_TAGS) $(PKGS)
	for t in $(E2E_TAGS); do go vet -tags $$t ./test/e2e/... && $(TOOLS)/staticcheck -tags $$t ./test/e2e/...; done
	cd api && $(TOOLS)/buf lint
	cd deploy/imagebuild && GOWORK=off go vet ./... && GOWORK=off $(TOOLS)/staticcheck ./...
	cd test/chart && GOWORK=off go vet ./... && GOWORK=off $(TOOLS)/staticcheck ./...

.PHONY: verify
verify: tools lint ## Fail when generated code, go.work, go.mod files or formatting are stale.
	./hack/verify.sh $(TOOLS)

.PHONY: images
# The image builder has its own module outside the workspace (as tools/ has):
# go-containerregistry's dependencies must not raise the daemons' versions.
images: ## Images of the daemons (linux/amd64, linux/arm64) as OCI layouts in _output/images/<daemon>; REGISTRY=host/path also pushes.
	cd deploy/imagebuild && GOWORK=off go build -o $(TOOLS)/ .
	$(TOOLS)/imagebuild -repo $(CURDIR) -version $(VERSION) -commit $(COMMIT) \
		-source-date-epoch $(SOURCE_DATE_EPOCH) -out $(OUT)/images $(if $(REGISTRY),-registry $(REGISTRY))

.PHONY: clean
clean: ## Remove build output.
	rm -rf $(OUT)

.PHONY: demo
# NODENET_DEMO_HOLD=0 ends it once shown (a script's check), cleaning up as Ctrl-C does.
demo: deps controlplane cni-plugins vm-assets ## The local demo: a real control plane, 3 nodes with the three daemons in a VM; shows BGP routes, IPVS, round robin, NodePort, NetworkPolicy, then runs until Ctrl-C.
	./hack/demo.sh

.PHONY: demo-check
demo-check: deps controlplane cni-plugins vm-assets ## Check make demo without a terminal: shown then stopped (NODENET_DEMO_HOLD=0), and stopped by Ctrl-C, nothing left.
	./hack/check-demo.sh
