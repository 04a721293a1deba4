# vmoperator — every tool is pinned in a module under test/tools and built into bin/.
SHELL := /usr/bin/env bash -o pipefail -o errexit -c

BIN          := $(CURDIR)/bin
CONTROLLER_GEN := $(BIN)/controller-gen
ETCD         := $(BIN)/etcd
KUBE_APISERVER := $(BIN)/kube-apiserver
KUBE_CONTROLLER_MANAGER := $(BIN)/kube-controller-manager
HELM         := $(BIN)/helm
GOLANGCI_LINT := $(BIN)/golangci-lint
KUBEVIRT_ADMIT := $(BIN)/kubevirt-admit
# Defined before any rule names them: make expands prerequisites as it reads.
CNI_PLUGINS  := $(BIN)/cni/bridge $(BIN)/cni/macvlan
CONTROL_PLANE := $(ETCD) $(KUBE_APISERVER) $(KUBE_CONTROLLER_MANAGER)
# The oldest Kubernetes the chart's kubeVersion admits (test/tools/kube-oldest)
# gets a directory of its own: its kube-apiserver and kube-controller-manager,
# links to bin/etcd and bin/helm, so KUBEBUILDER_ASSETS=$(OLDEST_ASSETS) points
# the unchanged tests at it.
OLDEST_ASSETS := $(BIN)/kube-1.32
OLDEST_CONTROL_PLANE := $(OLDEST_ASSETS)/kube-apiserver $(OLDEST_ASSETS)/kube-controller-manager $(OLDEST_ASSETS)/etcd $(OLDEST_ASSETS)/helm

# Upstream API packages whose CRDs the test control plane installs.
THIRD_PARTY_APIS := kubevirt.io/api/core/v1;kubevirt.io/api/instancetype/v1beta1;kubevirt.io/containerized-data-importer-api/pkg/apis/core/v1beta1;github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1;github.com/nmstate/kubernetes-nmstate/api/v1;github.com/nmstate/kubernetes-nmstate/api/v1beta1;github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1
# Go module dirs make lint checks, each with ./... and the one .golangci.yml.
LINT_MODULES := .
# Files `make generate manifests` writes; `make verify` checks they are current.
GENERATED := api/v1alpha1/zz_generated.deepcopy.go deploy/crds deploy/rbac deploy/dashboards test/crds

# Deploying to the cluster of the current kubeconfig ($KUBECONFIG or ~/.kube/config).
KUBECTL      ?= kubectl
NAMESPACE    ?= vmop-system
RELEASE      ?= vmop
# Extra flags: `make run RUN_ARGS=--allow-emulation`, `make deploy HELM_ARGS='--set controller.replicas=1'`,
# `make undeploy UNDEPLOY_ARGS=--no-hooks`.
RUN_ARGS      ?=
HELM_ARGS     ?=
UNDEPLOY_ARGS ?=
# Images: IMG_REGISTRY/vmop-controller:VERSION and IMG_REGISTRY/vmop-agent:VERSION,
# the names the chart pulls (its image.registry default, and its appVersion as the tag).
DOCKER       ?= docker
IMG_REGISTRY ?= registry.local/vmoperator
# VERSION defaults to the chart's appVersion, also where it is set but empty.
ifeq ($(strip $(VERSION)),)
override VERSION := $(shell awk '/^appVersion:/ { gsub(/"/, "", $$2); print $$2 }' deploy/chart/Chart.yaml)
endif

.DEFAULT_GOAL := help

##@ General

.PHONY: help
help: ## Show the targets.
	@awk 'BEGIN {FS = ":.*##"; printf "Usage: make <target>\n"} \
		/^[a-zA-Z_0-9-]+:.*?##/ { printf "  \033[36m%-14s\033[0m %s\n", $$1, $$2 } \
		/^##@/ { printf "\n\033[1m%s\033[0m\n", substr($$0, 5) }' $(MAKEFILE_LIST)

##@ Development

.PHONY: generate
generate: $(CONTROLLER_GEN) ## Generate deepcopy code for api/ and the Grafana dashboards (deploy/dashboards, from build/dashboards).
	$(CONTROLLER_GEN) object paths=./api/...
	go run ./build/dashboards -out deploy/dashboards

.PHONY: manifests
manifests: $(CONTROLLER_GEN) ## Generate our CRDs (deploy/crds), the RBAC roles of both components (deploy/rbac) and the third-party CRDs for tests (test/crds).
	$(CONTROLLER_GEN) crd:crdVersions=v1 paths=./api/... output:crd:dir=deploy/crds
	$(CONTROLLER_GEN) rbac:roleName=vmop-controller paths=./controller/... output:rbac:dir=deploy/rbac/controller
	$(CONTROLLER_GEN) rbac:roleName=vmop-agent paths=./agent/... output:rbac:dir=deploy/rbac/agent
	tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && \
	$(CONTROLLER_GEN) crd:crdVersions=v1,maxDescLen=0,allowDangerousTypes=true 'paths=$(THIRD_PARTY_APIS)' output:crd:dir=$$tmp && \
	go run ./test/crds/postprocess -in $$tmp -out test/crds

.PHONY: lint
lint: $(GOLANGCI_LINT) ## Run golangci-lint (.golangci.yml) on the product and its tests, in every module of LINT_MODULES.
	for dir in $(LINT_MODULES); do (cd $$dir && $(GOLANGCI_LINT) run --config $(CURDIR)/.golangci.yml ./...); done

.PHONY: verify
verify: ## Fail when generated files are stale, code is not gofmt'ed, go vet or golangci-lint (make lint) complains.
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
	$(MAKE) --no-print-directory lint

.PHONY: dev
dev: $(CONTROL_PLANE) $(BIN)/prometheus prometheus-web cloud-init ## Bring up the local environment (control plane, simulator, controller, three nodes with agents, Prometheus); Ctrl-C tears it down. Needs root.
	go build -o $(BIN)/vmop-agent ./cmd/vmop-agent
	go run ./test/devenv/vmop-dev

# Debian's Prometheus serves its web pages from /usr/share/prometheus/web,
# a path compiled in, with JavaScript from other packages: only installing the
# package provides them. The API, which the tests use, needs none of it.
.PHONY: prometheus-web
prometheus-web:
	@test -d /usr/share/prometheus/web || { echo "installing Debian's prometheus package for its web UI"; \
		DEBIAN_FRONTEND=noninteractive apt-get install -y prometheus >/dev/null; }

# Debian's cloud-init renders the network-data the operator writes, for a
# Debian and a RHEL-family guest (test/consumers). Installed when missing;
# /etc/cloud/cloud-init.disabled, made first, keeps it from configuring this
# machine at its next boot.
.PHONY: cloud-init
cloud-init:
	@command -v cloud-init >/dev/null || { echo "installing Debian's cloud-init (test/consumers renders network-data with it; disabled at boot)"; \
		mkdir -p /etc/cloud && touch /etc/cloud/cloud-init.disabled && \
		{ compgen -G '/var/lib/apt/lists/*_Packages*' >/dev/null || apt-get update >/dev/null; } && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends cloud-init >/dev/null; }

# Not part of make test: it takes a picture for the README.
.PHONY: screenshot
screenshot: $(CONTROL_PLANE) $(BIN)/prometheus prometheus-web cloud-init ## Bring up the environment, take br-lan down and up, and save Chromium's screenshot of Prometheus' graph of the Carrier panel (docs/images/prometheus-carrier.png). Needs root.
	command -v chromium >/dev/null || apt-get install -y chromium
	go build -o $(BIN)/vmop-agent ./cmd/vmop-agent
	go run ./test/devenv/screenshot -out docs/images/prometheus-carrier.png

.PHONY: build
build: ## Build vmop-controller and vmop-agent into bin/.
	go build -o $(BIN)/ ./cmd/...

##@ Deployment (to the cluster of the current kubeconfig)

.PHONY: install
install: ## Install our CRDs (deploy/crds) with server-side apply.
	$(KUBECTL) apply --server-side -f deploy/crds

# Deleting the profile CRD deletes every profile, and the garbage collector
# then deletes what each profile owns: so uninstall refuses while profiles
# exist, and FORCE=1 says what goes before it deletes.
.PHONY: uninstall
uninstall: ## Delete our CRDs (refuses while VirtualMachineProfiles exist; FORCE=1 deletes them and their VMs too).
	@crd=$$($(KUBECTL) get crd virtualmachineprofiles.vm.example.com --ignore-not-found -o name) || exit 1; \
	profiles=; if [ -n "$$crd" ]; then \
		profiles=$$($(KUBECTL) get virtualmachineprofiles.vm.example.com --all-namespaces \
			-o jsonpath='{range .items[*]}{.metadata.namespace}/{.metadata.name}{"\n"}{end}') || exit 1; \
	fi; \
	if [ -n "$$profiles" ] && [ "$(FORCE)" != 1 ]; then \
		echo "uninstall: refusing: these VirtualMachineProfiles exist, and deleting the CRDs deletes them with their VMs:" >&2; \
		echo "$$profiles" | sed 's/^/  /' >&2; \
		echo "Delete them first, or run 'make uninstall FORCE=1'." >&2; exit 1; \
	fi; \
	if [ -n "$$profiles" ]; then \
		echo "uninstall: FORCE=1: deleting these VirtualMachineProfiles:"; echo "$$profiles" | sed 's/^/  /'; \
		echo "and through their owner references each one's VM, network attachments, cloud-init Secret and"; \
		echo "disks with retainPolicy Delete; Retain disks stay."; \
	fi
	$(KUBECTL) delete --ignore-not-found -f deploy/crds

.PHONY: run
run: ## Run vmop-controller from source, leader election off, plain-HTTP metrics on 127.0.0.1:8080 (--metrics-secure=false: loopback only), probes on :8081 (after make install; more flags in RUN_ARGS).
	go run ./cmd/vmop-controller --leader-elect=false --agent-lease-namespace=$(NAMESPACE) \
		--metrics-secure=false --metrics-bind-address=127.0.0.1:8080 --health-probe-bind-address=:8081 --zap-devel $(RUN_ARGS)

# The namespace is labelled first: the agent uses hostNetwork and a hostPath,
# which Pod Security admits only at "privileged".
.PHONY: deploy
deploy: $(HELM) ## Install or upgrade the chart as release vmop in vmop-system, with the images docker-build makes (more flags in HELM_ARGS).
	$(KUBECTL) create namespace $(NAMESPACE) --dry-run=client -o yaml | $(KUBECTL) apply -f -
	$(KUBECTL) label namespace $(NAMESPACE) --overwrite pod-security.kubernetes.io/enforce=privileged
	$(HELM) upgrade --install $(RELEASE) deploy/chart --namespace $(NAMESPACE) \
		--set image.registry=$(IMG_REGISTRY) --set image.tag=$(VERSION) $(HELM_ARGS)

.PHONY: undeploy
undeploy: $(HELM) ## Uninstall the release; Helm leaves the CRDs (and so every profile) and the namespace (more flags in UNDEPLOY_ARGS).
	$(HELM) uninstall $(RELEASE) --namespace $(NAMESPACE) --ignore-not-found $(UNDEPLOY_ARGS)

##@ Images

.PHONY: images
images: ## Build both images (linux/amd64 and linux/arm64) as OCI archives into bin/images/, without Docker; reproducible (same commit, same digests).
	go run ./build/images -out $(BIN)/images

# The docker CLI alone builds nothing: docker-build and docker-push need an
# engine that answers, and say so in one line where none does.
define require-docker-engine
	@timeout 30 $(DOCKER) info >/dev/null 2>&1 || { \
		echo "$@: no Docker engine answers ('$(DOCKER) info' failed); 'make images' builds both images as OCI archives without one." >&2; exit 1; }
endef

.PHONY: docker-build
docker-build: ## Build IMG_REGISTRY/vmop-controller and vmop-agent, tagged VERSION (default: the chart's appVersion), with a Docker engine.
	$(require-docker-engine)
	$(DOCKER) build -f Dockerfile.controller --build-arg VERSION=$(VERSION) -t $(IMG_REGISTRY)/vmop-controller:$(VERSION) .
	$(DOCKER) build -f Dockerfile.agent --build-arg VERSION=$(VERSION) -t $(IMG_REGISTRY)/vmop-agent:$(VERSION) .

.PHONY: docker-push
docker-push: ## Push both images docker-build made to IMG_REGISTRY.
	$(require-docker-engine)
	$(DOCKER) push $(IMG_REGISTRY)/vmop-controller:$(VERSION)
	$(DOCKER) push $(IMG_REGISTRY)/vmop-agent:$(VERSION)

##@ Test

.PHONY: test
test: $(CONTROL_PLANE) $(OLDEST_CONTROL_PLANE) $(BIN)/promtool $(BIN)/prometheus $(HELM) $(CONTROLLER_GEN) $(CNI_PLUGINS) $(KUBEVIRT_ADMIT) images cloud-init ## Run every test: builds what the tests need into bin/ first (both control planes, promtool, helm, controller-gen, the reference CNI plugins, KubeVirt's admitters, the images; cloud-init is apt-installed when missing), then runs unit, integration and e2e tests, every fuzz target for TEST_FUZZTIME (20 s) each, test-oldest and test-kernel.
	# test/scale's fault tests take about 8 minutes alone on 2 cores, longer
	# beside the other packages: more than go test's default 10-minute limit.
	KUBEBUILDER_ASSETS=$(BIN) go test -count=1 -timeout 30m ./...
	$(MAKE) --no-print-directory fuzz FUZZTIME=$(TEST_FUZZTIME)
	$(MAKE) --no-print-directory test-oldest
	$(MAKE) --no-print-directory test-kernel

# How long make fuzz runs each fuzz target; make test runs each for TEST_FUZZTIME.
TEST_FUZZTIME ?= 20s
FUZZTIME ?= 10m

.PHONY: fuzz
fuzz: $(KUBEVIRT_ADMIT) cloud-init $(ETCD) $(KUBE_APISERVER) ## Run every fuzz target in turn, each for FUZZTIME (default 10m; make test runs each for TEST_FUZZTIME, 20s): the builders against the real consumers (KubeVirt's admitters, cloud-init), the capability-to-label projection against placement, and random profiles through the real kube-apiserver's CRD validation into the builders.
	# go test -fuzz takes one target a run. The default minimisation of every
	# new interesting input (up to 60 s each) would leave little time for new
	# inputs, so each target gets a number of tries worth about a second or
	# less: a run of the consumers' target takes about 0.5 s (two cloud-init
	# renders; 5 tries keep 220 runs a minute instead of 8), of the
	# projection's under 1 ms, of the API's about 6 ms (one dry-run create).
	go test -run '^$$' -fuzz '^FuzzBuiltObjectsPassTheConsumers$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 5x ./controller/desired/
	go test -run '^$$' -fuzz '^FuzzNodeLabels$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 1000x ./controller/placement/
	KUBEBUILDER_ASSETS=$(BIN) go test -run '^$$' -fuzz '^FuzzAdmittedProfilesBuild$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 100x ./test/validation/

.PHONY: test-oldest
test-oldest: $(OLDEST_CONTROL_PLANE) ## Run the CRD validation catalogue and the chart tests (trust boundaries included) on the oldest Kubernetes the chart admits (bin/kube-1.32, with bin/etcd).
	$(OLDEST_ASSETS)/kube-apiserver --version
	KUBEBUILDER_ASSETS=$(OLDEST_ASSETS) go test -count=1 ./test/validation/ ./test/chart/

.PHONY: test-kernel
test-kernel: $(CNI_PLUGINS) ## Run the kernelvm-tagged tests (VLAN, vlan_filtering, bond, dummy, OVS, per-VLAN eBPF counters on clsact, the CNI plugins on VLAN NADs) in Debian's kernel under qemu; downloads cached in bin/kernelvm.
	test/kernelvm/run.sh

.PHONY: promtool
promtool: $(BIN)/promtool ## Unpack promtool and prometheus from Debian's prometheus package into bin/ (promtool checks metrics and alerts; make dev runs prometheus).

# Both from one download of Debian's prometheus package, unpacked (not
# installed: no service is started).
$(BIN)/promtool $(BIN)/prometheus &:
	tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && \
	compgen -G '/var/lib/apt/lists/*_Packages*' >/dev/null || apt-get update && \
	(cd "$$tmp" && apt-get download prometheus >/dev/null && dpkg -x prometheus_*.deb root) && \
	cp "$$tmp/root/usr/bin/promtool" "$$tmp/root/usr/bin/prometheus" $(BIN)/

.PHONY: measure-idle
measure-idle: $(CONTROL_PLANE) ## Measure the agent's idle RSS and CPU over VMOP_MEASURE_IDLE (default 60s); prints numbers, asserts nothing.
	KUBEBUILDER_ASSETS=$(BIN) go test -count=1 -tags measure -run TestIdleFootprint -v ./cmd/vmop-agent/

.PHONY: bench
bench: $(CONTROL_PLANE) ## Run the benchmarks and print their numbers: vmop-controller against a raw client at BENCH_PROFILES (1,000) profiles on one control plane (table and bin/bench-scale.json; writes counted at rest for BENCH_REST, 1m), profile re-queues per capability change and label projection at 10,000 nodes, placement over 1,000 and 10,000 nodes, frames/s through a veth without and with the per-VLAN eBPF counters, and the agent's memory on a node with 256 VF-like links with and without its port limit, checked against the chart's memory limit (as root).
	KUBEBUILDER_ASSETS=$(BIN) go run ./test/scale/bench -profiles $(BENCH_PROFILES) -rest $(BENCH_REST) -json $(BIN)/bench-scale.json $(if $(BENCH_CONTROLLER_ARGS),-controller-args "$(BENCH_CONTROLLER_ARGS)")
	go test -run '^$$' -bench . -benchtime 20x ./controller/profile/
	go test -run '^$$' -bench . -benchmem ./controller/placement/
	go test -run '^$$' -bench . -benchtime 500000x -count 5 ./agent/vlantraffic/
	KUBEBUILDER_ASSETS=$(BIN) go test -count=1 -tags measure -run TestVFNodeFootprint -v ./cmd/vmop-agent/

# make bench's scale run: how many profiles, how long writes are counted at
# rest (10m for the record), and extra vmop-controller flags.
BENCH_PROFILES ?= 1000
BENCH_REST ?= 1m
BENCH_CONTROLLER_ARGS ?=

.PHONY: controlplane
controlplane: $(CONTROL_PLANE) ## Build etcd, kube-apiserver and kube-controller-manager into bin/ (cached).

##@ Tools (built from the pinned modules in test/tools; rebuilt only when those change)

$(CONTROLLER_GEN): test/tools/codegen/go.mod test/tools/codegen/go.sum
	cd test/tools/codegen && go build -o $@ sigs.k8s.io/controller-tools/cmd/controller-gen

$(ETCD): test/tools/etcd/go.mod test/tools/etcd/go.sum
	cd test/tools/etcd && go build -o $@ go.etcd.io/etcd/server/v3

# Both control planes are stamped with their pinned version, as release builds
# are (upstream's hack/lib/version.sh), so that clients that check the version,
# such as helm against the chart's kubeVersion, see it rather than v0.0.0-master.
# $(call kube_ldflags,tools-module-dir)
kube_version = $(shell cd $(1) && go list -m -f '{{.Version}}' k8s.io/kubernetes)
kube_version_ldflags = -X k8s.io/component-base/version.gitVersion=$(1) \
	-X k8s.io/component-base/version.gitMajor=$(word 1,$(subst ., ,$(patsubst v%,%,$(1)))) \
	-X k8s.io/component-base/version.gitMinor=$(word 2,$(subst ., ,$(patsubst v%,%,$(1))))
kube_ldflags = $(call kube_version_ldflags,$(call kube_version,$(1)))
KUBE_LDFLAGS = $(call kube_ldflags,test/tools/kube)
OLDEST_LDFLAGS = $(call kube_ldflags,test/tools/kube-oldest)

$(KUBE_APISERVER): test/tools/kube/go.mod test/tools/kube/go.sum
	cd test/tools/kube && go build -ldflags '$(KUBE_LDFLAGS)' -o $@ k8s.io/kubernetes/cmd/kube-apiserver

$(OLDEST_ASSETS)/kube-apiserver: test/tools/kube-oldest/go.mod test/tools/kube-oldest/go.sum
	cd test/tools/kube-oldest && go build -ldflags '$(OLDEST_LDFLAGS)' -o $@ k8s.io/kubernetes/cmd/kube-apiserver

$(OLDEST_ASSETS)/kube-controller-manager: test/tools/kube-oldest/go.mod test/tools/kube-oldest/go.sum
	cd test/tools/kube-oldest && go build -ldflags '$(OLDEST_LDFLAGS)' -o $@ k8s.io/kubernetes/cmd/kube-controller-manager

# Links, not copies: the tests find etcd and helm beside the apiserver, and
# run the same etcd and helm whichever Kubernetes they test.
$(OLDEST_ASSETS)/etcd: | $(ETCD)
	mkdir -p $(@D) && ln -sf ../etcd $@

$(OLDEST_ASSETS)/helm: | $(HELM)
	mkdir -p $(@D) && ln -sf ../helm $@

# The reference CNI plugins test/consumers runs on every NAD the operator
# writes; static, so the kernel VM's initramfs can hold them too.
$(CNI_PLUGINS) &: test/tools/cni/go.mod test/tools/cni/go.sum
	mkdir -p $(BIN)/cni
	cd test/tools/cni && CGO_ENABLED=0 go build -ldflags='-s -w' -o $(BIN)/cni/ \
		github.com/containernetworking/plugins/plugins/main/bridge \
		github.com/containernetworking/plugins/plugins/main/macvlan

# KubeVirt's own VM validation (virt-api's admitters, v1.8.0) as a command,
# for test/consumers. About 6 minutes cold on 2 cores. KubeVirt's go.mod
# needs a module the checksum database does not know (rhobs).
$(KUBEVIRT_ADMIT): test/tools/kubevirt-admit/go.mod test/tools/kubevirt-admit/go.sum test/tools/kubevirt-admit/main.go
	cd test/tools/kubevirt-admit && GONOSUMDB=github.com/rhobs go build -o $@ .

$(GOLANGCI_LINT): test/tools/golangci-lint/go.mod test/tools/golangci-lint/go.sum
	cd test/tools/golangci-lint && go build -o $@ github.com/golangci/golangci-lint/v2/cmd/golangci-lint

$(HELM): test/tools/helm/go.mod test/tools/helm/go.sum
	cd test/tools/helm && go build -o $@ helm.sh/helm/v3/cmd/helm

$(KUBE_CONTROLLER_MANAGER): test/tools/kube/go.mod test/tools/kube/go.sum
	cd test/tools/kube && go build -ldflags '$(KUBE_LDFLAGS)' -o $@ k8s.io/kubernetes/cmd/kube-controller-manager
