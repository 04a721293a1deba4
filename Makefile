# vmoperator — every tool is pinned in a module under test/tools and built into bin/.
SHELL := /usr/bin/env bash -o pipefail -o errexit -c

BIN          := $(CURDIR)/bin
CONTROLLER_GEN := $(BIN)/controller-gen
ETCD         := $(BIN)/etcd
KUBE_APISERVER := $(BIN)/kube-apiserver
KUBE_CONTROLLER_MANAGER := $(BIN)/kube-controller-manager
HELM         := $(BIN)/helm
CONTROL_PLANE := $(ETCD) $(KUBE_APISERVER) $(KUBE_CONTROLLER_MANAGER)

# Upstream API packages whose CRDs the test control plane installs.
THIRD_PARTY_APIS := kubevirt.io/api/core/v1;kubevirt.io/api/instancetype/v1beta1;kubevirt.io/containerized-data-importer-api/pkg/apis/core/v1beta1;github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1;github.com/nmstate/kubernetes-nmstate/api/v1;github.com/nmstate/kubernetes-nmstate/api/v1beta1
# Files `make generate manifests` writes; `make verify` checks they are current.
GENERATED := api/v1alpha1/zz_generated.deepcopy.go deploy/crds deploy/rbac test/crds

.DEFAULT_GOAL := help

##@ General

.PHONY: help
help: ## Show the targets.
	@awk 'BEGIN {FS = ":.*##"; printf "Usage: make <target>\n"} \
		/^[a-zA-Z_0-9-]+:.*?##/ { printf "  \033[36m%-14s\033[0m %s\n", $$1, $$2 } \
		/^##@/ { printf "\n\033[1m%s\033[0m\n", substr($$0, 5) }' $(MAKEFILE_LIST)

##@ Development

.PHONY: generate
generate: $(CONTROLLER_GEN) ## Generate deepcopy code for api/.
	$(CONTROLLER_GEN) object paths=./api/...

.PHONY: manifests
manifests: $(CONTROLLER_GEN) ## Generate our CRDs (deploy/crds), the RBAC roles of both components (deploy/rbac) and the third-party CRDs for tests (test/crds).
	$(CONTROLLER_GEN) crd:crdVersions=v1 paths=./api/... output:crd:dir=deploy/crds
	$(CONTROLLER_GEN) rbac:roleName=vmop-controller paths=./controller/... output:rbac:dir=deploy/rbac/controller
	$(CONTROLLER_GEN) rbac:roleName=vmop-agent paths=./agent/... output:rbac:dir=deploy/rbac/agent
	tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && \
	$(CONTROLLER_GEN) crd:crdVersions=v1,maxDescLen=0,allowDangerousTypes=true 'paths=$(THIRD_PARTY_APIS)' output:crd:dir=$$tmp && \
	go run ./test/crds/postprocess -in $$tmp -out test/crds

.PHONY: verify
verify: ## Fail when generated files are stale, code is not gofmt'ed, or go vet complains.
	@before=$$(find $(GENERATED) -type f | sort | xargs sha256sum); \
	$(MAKE) --no-print-directory generate manifests >/dev/null; \
	after=$$(find $(GENERATED) -type f | sort | xargs sha256sum); \
	if [ "$$before" != "$$after" ]; then \
		echo "generated files were stale (now regenerated; review and commit):"; \
		diff <(echo "$$before") <(echo "$$after") || true; exit 1; fi
	@unformatted=$$(gofmt -l $$(git ls-files '*.go')); \
	if [ -n "$$unformatted" ]; then echo "not gofmt'ed: $$unformatted"; exit 1; fi
	go vet ./...
	go mod tidy -diff

.PHONY: dev
dev: $(CONTROL_PLANE) ## Bring up the local environment (control plane, simulator, controller, three nodes with agents); Ctrl-C tears it down. Needs root.
	go build -o $(BIN)/vmop-agent ./cmd/vmop-agent
	go run ./test/devenv/vmop-dev

.PHONY: build
build: ## Build vmop-controller and vmop-agent into bin/.
	go build -o $(BIN)/ ./cmd/...

##@ Test

.PHONY: test
test: $(CONTROL_PLANE) $(BIN)/promtool $(HELM) $(CONTROLLER_GEN) ## Run every test: builds what the tests need into bin/ first (control plane, promtool, helm, controller-gen), then runs unit, integration and e2e tests and test-kernel.
	KUBEBUILDER_ASSETS=$(BIN) go test -count=1 ./...
	$(MAKE) --no-print-directory test-kernel

.PHONY: test-kernel
test-kernel: ## Run the kernelvm-tagged agent tests (VLAN, vlan_filtering, bond, dummy, OVS) in Debian's kernel under qemu; downloads cached in bin/kernelvm.
	test/kernelvm/run.sh

.PHONY: promtool
promtool: $(BIN)/promtool ## Unpack promtool from Debian's prometheus package into bin/ (the agent's metrics test runs `promtool check metrics` with it).

$(BIN)/promtool:
	tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && \
	compgen -G '/var/lib/apt/lists/*_Packages*' >/dev/null || apt-get update && \
	(cd "$$tmp" && apt-get download prometheus >/dev/null && dpkg -x prometheus_*.deb root) && \
	cp "$$tmp/root/usr/bin/promtool" $@

.PHONY: measure-idle
measure-idle: $(CONTROL_PLANE) ## Measure the agent's idle RSS and CPU over VMOP_MEASURE_IDLE (default 60s); prints numbers, asserts nothing.
	KUBEBUILDER_ASSETS=$(BIN) go test -count=1 -tags measure -run TestIdleFootprint -v ./cmd/vmop-agent/

.PHONY: bench
bench: ## Run the benchmarks (placement over 1,000 and 10,000 nodes) and print their numbers.
	go test -run '^$$' -bench . -benchmem ./controller/placement/

.PHONY: controlplane
controlplane: $(CONTROL_PLANE) ## Build etcd, kube-apiserver and kube-controller-manager into bin/ (cached).

##@ Tools (built from the pinned modules in test/tools; rebuilt only when those change)

$(CONTROLLER_GEN): test/tools/codegen/go.mod test/tools/codegen/go.sum
	cd test/tools/codegen && go build -o $@ sigs.k8s.io/controller-tools/cmd/controller-gen

$(ETCD): test/tools/etcd/go.mod test/tools/etcd/go.sum
	cd test/tools/etcd && go build -o $@ go.etcd.io/etcd/server/v3

$(KUBE_APISERVER): test/tools/kube/go.mod test/tools/kube/go.sum
	cd test/tools/kube && go build -o $@ k8s.io/kubernetes/cmd/kube-apiserver

$(HELM): test/tools/helm/go.mod test/tools/helm/go.sum
	cd test/tools/helm && go build -o $@ helm.sh/helm/v3/cmd/helm

$(KUBE_CONTROLLER_MANAGER): test/tools/kube/go.mod test/tools/kube/go.sum
	cd test/tools/kube && go build -o $@ k8s.io/kubernetes/cmd/kube-controller-manager
