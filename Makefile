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
CRD_REF_DOCS := $(BIN)/crd-ref-docs
# Defined before any rule names them: make expands prerequisites as it reads.
CNI_PLUGINS  := $(BIN)/cni/bridge $(BIN)/cni/macvlan $(BIN)/cni/host-local $(BIN)/cni/loopback $(BIN)/cni/portmap
CONTROL_PLANE := $(ETCD) $(KUBE_APISERVER) $(KUBE_CONTROLLER_MANAGER)
# The node stack internal/testing/nodestack runs beside the control plane: the
# real scheduler, kubelet and kube-proxy (test/tools/kube), containerd 2 with
# its runc shim and ctr (test/tools/containerd), runc (test/tools/runc), the
# pod network's CNI plugins and the images its pods run (build/images -node:
# the sandbox's pause image and a test server).
KUBE_SCHEDULER := $(BIN)/kube-scheduler
KUBELET      := $(BIN)/kubelet
KUBE_PROXY   := $(BIN)/kube-proxy
CONTAINERD   := $(BIN)/containerd $(BIN)/containerd-shim-runc-v2 $(BIN)/ctr
RUNC         := $(BIN)/runc
NODE_IMAGES  := $(BIN)/node-images/pause.tar $(BIN)/node-images/nodestack-hello.tar
NODE_STACK   := $(KUBE_SCHEDULER) $(KUBELET) $(KUBE_PROXY) $(CONTAINERD) $(RUNC) $(CNI_PLUGINS) $(NODE_IMAGES)
# The oldest Kubernetes the chart's kubeVersion admits (test/tools/kube-oldest)
# gets a directory of its own: its kube-apiserver and kube-controller-manager,
# links to bin/etcd and bin/helm, so KUBEBUILDER_ASSETS=$(OLDEST_ASSETS) points
# the unchanged tests at it.
OLDEST_ASSETS := $(BIN)/kube-1.32
OLDEST_CONTROL_PLANE := $(OLDEST_ASSETS)/kube-apiserver $(OLDEST_ASSETS)/kube-controller-manager $(OLDEST_ASSETS)/etcd $(OLDEST_ASSETS)/helm

# Upstream API packages whose CRDs the test control plane installs.
THIRD_PARTY_APIS := kubevirt.io/api/core/v1;kubevirt.io/api/instancetype/v1beta1;kubevirt.io/containerized-data-importer-api/pkg/apis/core/v1beta1;github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1;github.com/nmstate/kubernetes-nmstate/api/v1;github.com/nmstate/kubernetes-nmstate/api/v1beta1;github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1
# Go module dirs make lint checks, each with ./... and the one .golangci.yml.
LINT_MODULES := . test
# Files `make generate manifests api-docs` writes; `make verify` checks they are current.
GENERATED := api/v1alpha1/zz_generated.deepcopy.go deploy/crds deploy/rbac deploy/dashboards test/crds docs/api.md

# Deploying to the cluster of the current kubeconfig ($KUBECONFIG or ~/.kube/config).
KUBECTL      ?= kubectl
# kubebuilder's layout: release vmoperator in vmoperator-system names the
# Deployment vmoperator-controller-manager and the DaemonSet vmoperator-agent.
NAMESPACE    ?= vmoperator-system
RELEASE      ?= vmoperator
# Extra flags: `make run RUN_ARGS=--allow-emulation`, `make deploy HELM_ARGS='--set controller.replicas=1'`,
# `make undeploy UNDEPLOY_ARGS=--no-hooks`.
RUN_ARGS      ?=
HELM_ARGS     ?=
UNDEPLOY_ARGS ?=
# Images, as kubebuilder names them: IMG is the controller's whole reference
# (make docker-build docker-push deploy IMG=registry.example.com/vmoperator:v1.0.0),
# AGENT_IMG the agent's, by default IMG's repository with -agent appended and
# IMG's tag (registry.example.com/vmoperator-agent:v1.0.0). Without IMG they
# are IMG_REGISTRY/vmop-controller:VERSION and IMG_REGISTRY/vmop-agent:VERSION,
# the names the chart pulls by default (its image.registry, its appVersion).
DOCKER       ?= docker
IMG_REGISTRY ?= registry.local/vmoperator
# VERSION defaults to the chart's appVersion, also where it is set but empty.
ifeq ($(strip $(VERSION)),)
override VERSION := $(shell awk '/^appVersion:/ { gsub(/"/, "", $$2); print $$2 }' deploy/chart/Chart.yaml)
endif
ifeq ($(strip $(IMG)),)
override IMG := $(IMG_REGISTRY)/vmop-controller:$(VERSION)
AGENT_IMG    ?= $(IMG_REGISTRY)/vmop-agent:$(VERSION)
else
# The repository ends at the last ':' after the last '/' (a registry's port
# is not a tag). A digest (@sha256:...) names one image: the agent's cannot
# be derived from it.
ifneq ($(findstring @,$(IMG)),)
ifeq ($(strip $(AGENT_IMG)),)
$(error IMG=$(IMG) names a digest: give the agent's image too, AGENT_IMG=...)
endif
endif
AGENT_IMG    ?= $(shell printf '%s' '$(IMG)' | sed -E 's,^(([^/]*/)*[^/:@]+)(:[^/:@]+)?$$,\1-agent\3,')
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
	cd test && $(CONTROLLER_GEN) crd:crdVersions=v1,maxDescLen=0,allowDangerousTypes=true 'paths=$(THIRD_PARTY_APIS)' output:crd:dir=$$tmp && \
	go run ./crds/postprocess -in $$tmp -out crds

# The build tags of the test tiers (see Test below), vetted together.
VET_TAGS := integration,kernelvm,measure,e2e,scale

.PHONY: api-docs
api-docs: $(CRD_REF_DOCS) ## Generate the API reference docs/api.md from the types of api/v1alpha1 (crd-ref-docs; templates in build/apidocs).
	$(CRD_REF_DOCS) --config build/apidocs/config.yaml --source-path ./api/v1alpha1 --renderer markdown \
		--templates-dir build/apidocs/templates --output-path docs/api.md --log-level ERROR

.PHONY: lint
lint: $(GOLANGCI_LINT) ## Run golangci-lint (.golangci.yml) on the product and its tests, in every module of LINT_MODULES.
	for dir in $(LINT_MODULES); do (cd $$dir && $(GOLANGCI_LINT) run --config $(CURDIR)/.golangci.yml ./...); done

.PHONY: verify
verify: ## Fail when generated files (docs/api.md included) are stale, code is not gofmt'ed, go vet or golangci-lint (make lint) complains, or a go.mod is untidy (both modules, every test tag).
	@before=$$(find $(GENERATED) -type f | sort | xargs sha256sum); \
	$(MAKE) --no-print-directory generate manifests api-docs >/dev/null; \
	after=$$(find $(GENERATED) -type f | sort | xargs sha256sum); \
	if [ "$$before" != "$$after" ]; then \
		echo "generated files were stale (now regenerated; review and commit):"; \
		diff <(echo "$$before") <(echo "$$after") || true; exit 1; fi
	@unformatted=$$(gofmt -l $$(git ls-files '*.go')); \
	if [ -n "$$unformatted" ]; then echo "not gofmt'ed: $$unformatted"; exit 1; fi
	# Both modules, without tags and with every one: go vet skips the files a
	# tag excludes, and a unit test leaning on an integration file's helper
	# compiles only with the tag.
	go vet ./...
	go vet -tags $(VET_TAGS) ./...
	cd test && go vet ./...
	cd test && go vet -tags $(VET_TAGS) ./...
	go mod tidy -diff
	cd test && go mod tidy -diff
	$(MAKE) --no-print-directory lint

.PHONY: dev
dev: $(CONTROL_PLANE) $(BIN)/prometheus prometheus-web cloud-init ## Bring up the local environment (control plane, simulator, controller, three nodes with agents, Prometheus); Ctrl-C tears it down. Needs root.
	go build -o $(BIN)/vmop-agent ./cmd/vmop-agent
	cd test && go run ./devenv/vmop-dev

# Debian's Prometheus serves its web pages from /usr/share/prometheus/web,
# a path compiled in, with JavaScript from other packages: only installing the
# package provides them. The API, which the tests use, needs none of it.
.PHONY: prometheus-web
prometheus-web:
	@test -d /usr/share/prometheus/web || { echo "installing Debian's prometheus package for its web UI"; \
		DEBIAN_FRONTEND=noninteractive apt-get install -y prometheus >/dev/null; }

# Debian's cloud-init renders the network-data the operator writes, for a
# Debian and a RHEL-family guest (internal/testing/consumers). Installed when missing;
# /etc/cloud/cloud-init.disabled, made first, keeps it from configuring this
# machine at its next boot.
.PHONY: cloud-init
cloud-init:
	@command -v cloud-init >/dev/null || { echo "installing Debian's cloud-init (internal/testing/consumers renders network-data with it; disabled at boot)"; \
		mkdir -p /etc/cloud && touch /etc/cloud/cloud-init.disabled && \
		{ compgen -G '/var/lib/apt/lists/*_Packages*' >/dev/null || apt-get update >/dev/null; } && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends cloud-init >/dev/null; }

# The bridge plugin's macspoofchk, which every bridge NAD the operator
# writes sets, runs nft; internal/testing/consumers runs the plugin. Installed when
# missing (the nftables service stays disabled: the tests' rules live in
# their own network namespaces).
.PHONY: nftables
nftables:
	@command -v nft >/dev/null || { echo "installing Debian's nftables (the bridge CNI plugin's macspoofchk runs nft)"; \
		{ compgen -G '/var/lib/apt/lists/*_Packages*' >/dev/null || apt-get update >/dev/null; } && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends nftables >/dev/null; }

# Not part of make test: it takes the picture in docs/development.md.
.PHONY: screenshot
screenshot: $(CONTROL_PLANE) $(BIN)/prometheus prometheus-web cloud-init ## Bring up the environment, take br-lan down and up, and save Chromium's screenshot of Prometheus' graph of the Carrier panel (docs/images/prometheus-carrier.png). Needs root.
	command -v chromium >/dev/null || apt-get install -y chromium
	go build -o $(BIN)/vmop-agent ./cmd/vmop-agent
	cd test && go run ./devenv/screenshot -out $(CURDIR)/docs/images/prometheus-carrier.png

.PHONY: build
build: ## Build vmop-controller, vmop-agent and the kubectl plugin kubectl-vmprofile into bin/.
	go build -o $(BIN)/ ./cmd/...

.PHONY: plugin
plugin: ## Build the kubectl vmprofile release into bin/plugin/: kubectl-vmprofile_<os>_<arch>.tar.gz for linux and darwin (amd64, arm64), stamped VERSION, and the Krew manifest (deploy/krew/vmprofile.yaml) with their SHA-256.
	go run ./build/plugin -out $(BIN)/plugin -version $(VERSION)

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
deploy: $(HELM) ## Install or upgrade the chart as release vmoperator in vmoperator-system, with the images IMG and AGENT_IMG (more flags in HELM_ARGS).
	$(KUBECTL) create namespace $(NAMESPACE) --dry-run=client -o yaml | $(KUBECTL) apply -f -
	$(KUBECTL) label namespace $(NAMESPACE) --overwrite pod-security.kubernetes.io/enforce=privileged
	$(HELM) upgrade --install $(RELEASE) deploy/chart --namespace $(NAMESPACE) \
		--set-string image.controller=$(IMG) --set-string image.agent=$(AGENT_IMG) $(HELM_ARGS)

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
docker-build: ## Build the images IMG and AGENT_IMG (default: IMG_REGISTRY/vmop-{controller,agent}:VERSION, VERSION the chart's appVersion) with a Docker engine.
	$(require-docker-engine)
	$(DOCKER) build -f Dockerfile.controller --build-arg VERSION=$(VERSION) -t $(IMG) .
	$(DOCKER) build -f Dockerfile.agent --build-arg VERSION=$(VERSION) -t $(AGENT_IMG) .

.PHONY: docker-push
docker-push: ## Push both images docker-build made, IMG and AGENT_IMG.
	$(require-docker-engine)
	$(DOCKER) push $(IMG)
	$(DOCKER) push $(AGENT_IMG)

##@ Test

# Two modules, five tiers.
# The product module (the root, go.mod) holds the product's packages and
# their own tests. A plain `go test ./...` there is the unit tier: Go alone,
# no root, no network namespaces, no etcd/kube-apiserver, no cloud-init, CNI
# plugins, KubeVirt's admitters or promtool. The tests of product packages
# that need any of those carry a build tag, so the unit tier never compiles
# them (none of them skips itself and passes):
#   integration  control plane, root and network namespaces, the consumers;
#   kernelvm     link kinds the host kernel lacks, run under qemu (test-kernel);
#   measure      the agent's footprint (measure-idle, bench).
# kernelvm and measure files use integration's helpers, so they say
# `integration && kernelvm` and are built with -tags integration,kernelvm.
# Files split out of a package's unit tests for the integration tier are
# named *_integration_test.go.
# Their helpers (internal/testing/...) live in the product module too, as
# Cluster API's internal/test does: a product test importing the test module
# would put the test module's requirements into the product's go.mod.
# The test module (test/go.mod, `replace` to the root) holds the rest, and
# with it what only tests need (Helm's SDK, for one): integration, chart,
# validation, maketargets... run untagged; the e2e suite carries the tag e2e
# and test/scale's fault tests the tag scale. There is no go.work: it would
# put the test module's requirements into the product's builds, so every
# target that runs the test module's packages does so from test/ (go test
# ./... in the root no longer reaches them).
# make test runs lint and the unit tier first (prerequisites are made left to
# right), so that a style or unit failure costs seconds, then every other
# tier, fuzz targets included.

# What the integration, e2e and scale tiers run: both control planes aside.
TEST_TOOLS := $(CONTROL_PLANE) $(BIN)/promtool $(BIN)/prometheus $(HELM) $(CONTROLLER_GEN) $(CNI_PLUGINS) $(KUBEVIRT_ADMIT) images cloud-init nftables $(NODE_STACK)
# `go test -count=1 -timeout 30m`: test/scale's fault tests take about 8
# minutes alone on 2 cores, longer beside the other packages: more than go
# test's default 10-minute limit.
GO_TEST_LONG := go test -count=1 -timeout 30m

.PHONY: test
test: lint test-unit $(TEST_TOOLS) $(OLDEST_CONTROL_PLANE) ## Run every test: make lint and make test-unit first (seconds, so a style or unit failure stops it early), then builds what the tests need into bin/ first (both control planes, the node stack of make nodestack, promtool, helm, controller-gen, the reference CNI plugins, KubeVirt's admitters, the images; cloud-init, nftables and libseccomp-dev are apt-installed when missing), then runs the unit and integration tests of the product module and every test of the test module (integration, chart, validation, e2e, scale), every fuzz target for TEST_FUZZTIME (20 s) each, test-oldest and test-kernel.
	KUBEBUILDER_ASSETS=$(BIN) $(GO_TEST_LONG) -tags integration ./...
	cd test && KUBEBUILDER_ASSETS=$(BIN) $(GO_TEST_LONG) -tags e2e,scale ./...
	$(MAKE) --no-print-directory fuzz FUZZTIME=$(TEST_FUZZTIME)
	$(MAKE) --no-print-directory test-oldest
	$(MAKE) --no-print-directory test-kernel

.PHONY: test-unit
test-unit: ## Run the product module's unit tests (the builders, status rules, placement, apply, attach, the API helpers...): Go alone, no root, no control plane, no other binary; prints the time taken.
	@start=$$(date +%s); rc=0; \
	go test -count=1 ./... || rc=$$?; \
	echo "test-unit: $$(( $$(date +%s) - start )) s"; exit $$rc

.PHONY: test-integration
test-integration: $(TEST_TOOLS) ## Run the product module's unit and integration-tagged tests (control plane, network namespaces as root, cloud-init, the CNI plugins, KubeVirt's admitters, promtool) and the test module's untagged tests (integration, chart, validation, make targets, ...). Needs root.
	# go test selects files by tag, not tests: the root's unit tests run
	# again beside the integration-tagged ones of their packages.
	KUBEBUILDER_ASSETS=$(BIN) $(GO_TEST_LONG) -tags integration ./...
	cd test && KUBEBUILDER_ASSETS=$(BIN) $(GO_TEST_LONG) ./...

.PHONY: test-e2e
test-e2e: $(TEST_TOOLS) ## Run the e2e suite (test/e2e, build tag e2e). Needs root.
	cd test && KUBEBUILDER_ASSETS=$(BIN) $(GO_TEST_LONG) -tags e2e ./e2e/...

.PHONY: test-scale
test-scale: $(CONTROL_PLANE) ## Run test/scale's tests, its fault tests (build tag scale) included: about 8 minutes on 2 cores.
	cd test && KUBEBUILDER_ASSETS=$(BIN) $(GO_TEST_LONG) -tags scale ./scale/...

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
	go test -tags integration -run '^$$' -fuzz '^FuzzBuiltObjectsPassTheConsumers$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 5x ./controller/desired/
	go test -run '^$$' -fuzz '^FuzzNodeLabels$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 1000x ./controller/placement/
	cd test && KUBEBUILDER_ASSETS=$(BIN) go test -run '^$$' -fuzz '^FuzzAdmittedProfilesBuild$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 100x ./validation/

.PHONY: test-oldest
test-oldest: $(OLDEST_CONTROL_PLANE) ## Run the CRD validation catalogue and the chart tests (trust boundaries included) on the oldest Kubernetes the chart admits (bin/kube-1.32, with bin/etcd).
	$(OLDEST_ASSETS)/kube-apiserver --version
	cd test && KUBEBUILDER_ASSETS=$(OLDEST_ASSETS) go test -count=1 ./validation/ ./chart/

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
	KUBEBUILDER_ASSETS=$(BIN) go test -count=1 -tags integration,measure -run TestIdleFootprint -v ./agent/daemon/

.PHONY: bench
bench: $(CONTROL_PLANE) ## Run the benchmarks and print their numbers: vmop-controller against a raw client at BENCH_PROFILES (1,000) profiles on one control plane (table and bin/bench-scale.json; writes counted at rest for BENCH_REST, 1m), profile re-queues per capability change and label projection at 10,000 nodes, placement over 1,000 and 10,000 nodes, frames/s through a veth without and with the per-VLAN eBPF counters, and the agent's memory on a node with 256 VF-like links with and without its port limit, checked against the chart's memory limit (as root).
	cd test && KUBEBUILDER_ASSETS=$(BIN) go run ./scale/bench -profiles $(BENCH_PROFILES) -rest $(BENCH_REST) -json $(BIN)/bench-scale.json $(if $(BENCH_CONTROLLER_ARGS),-controller-args "$(BENCH_CONTROLLER_ARGS)")
	go test -run '^$$' -bench . -benchtime 20x ./controller/profile/
	go test -run '^$$' -bench . -benchmem ./controller/placement/
	go test -tags integration -run '^$$' -bench . -benchtime 500000x -count 5 ./agent/vlantraffic/
	KUBEBUILDER_ASSETS=$(BIN) go test -count=1 -tags integration,measure -run TestVFNodeFootprint -v ./agent/daemon/

# make bench's scale run: how many profiles, how long writes are counted at
# rest (10m for the record), and extra vmop-controller flags.
BENCH_PROFILES ?= 1000
BENCH_REST ?= 1m
BENCH_CONTROLLER_ARGS ?=

##@ Release

# A release is a commit whose chart says its version, with its CHANGELOG.md
# section; the tag is made here and pushed by a person (git push origin vX.Y.Z).
.PHONY: release-tag
release-tag: ## Tag vVERSION (make release-tag VERSION=0.3.0) after checking the tree is clean, Chart.yaml's version and appVersion are VERSION and CHANGELOG.md has its section. Never pushes.
	@if [ "$(origin VERSION)" != "command line" ] && [ "$(origin VERSION)" != environment ]; then \
		echo "release-tag: name the release: make release-tag VERSION=X.Y.Z" >&2; exit 1; fi; \
	version='$(VERSION)'; \
	if ! [[ "$$version" =~ ^[0-9]+\.[0-9]+\.[0-9]+$$ ]]; then \
		echo "release-tag: VERSION=$$version is not X.Y.Z" >&2; exit 1; fi; \
	dirty=$$(git status --porcelain) || exit 1; \
	if [ -n "$$dirty" ]; then \
		echo "release-tag: refusing: the tree has changes; commit or remove them first:" >&2; echo "$$dirty" >&2; exit 1; fi; \
	chart=$$(awk '/^version:/ { gsub(/"/, "", $$2); print $$2 }' deploy/chart/Chart.yaml); \
	app=$$(awk '/^appVersion:/ { gsub(/"/, "", $$2); print $$2 }' deploy/chart/Chart.yaml); \
	if [ "$$chart" != "$$version" ] || [ "$$app" != "$$version" ]; then \
		echo "release-tag: refusing: deploy/chart/Chart.yaml has version $$chart and appVersion $$app, not $$version" >&2; exit 1; fi; \
	if ! grep -q "^## \[$$version\] - [0-9]\{4\}-[0-9]\{2\}-[0-9]\{2\}$$" CHANGELOG.md; then \
		echo "release-tag: refusing: CHANGELOG.md has no '## [$$version] - YYYY-MM-DD' section" >&2; exit 1; fi; \
	if git rev-parse -q --verify "refs/tags/v$$version" >/dev/null; then \
		echo "release-tag: refusing: tag v$$version exists" >&2; exit 1; fi; \
	git tag -a "v$$version" -m "vmoperator $$version"; \
	echo "tagged v$$version at $$(git rev-parse --short HEAD); nothing pushed: git push origin v$$version"

.PHONY: controlplane
controlplane: $(CONTROL_PLANE) ## Build etcd, kube-apiserver and kube-controller-manager into bin/ (cached).

.PHONY: nodestack
nodestack: $(NODE_STACK) ## Build the node stack into bin/ (cached): kube-scheduler, kubelet, kube-proxy, containerd with its runc shim and ctr, runc, the pod network's CNI plugins and the pause and test images (bin/node-images).

.PHONY: test-nodestack
test-nodestack: $(CONTROL_PLANE) $(NODE_STACK) $(HELM) images ## Run the node stack's tests: its own (internal/testing/nodestack: a real scheduler, kubelet, containerd and kube-proxy run a pod from an imported image behind a Service) and the chart's agent on it (test/nodestack: Ready from the image with the chart's roles and securityContext, on a node without a kvm device, off a tainted control plane). Needs root.
	KUBEBUILDER_ASSETS=$(BIN) go test -count=1 -tags integration -v -run TestNodeStack ./internal/testing/nodestack/
	cd test && KUBEBUILDER_ASSETS=$(BIN) go test -count=1 -v ./nodestack/

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

# The node's Kubernetes commands, from the same module and version as the
# apiserver (their packages are mostly the apiserver's, cached: kubelet takes
# about 30 s, kube-scheduler 10 s once it is built).
$(KUBE_SCHEDULER) $(KUBELET) $(KUBE_PROXY): $(BIN)/%: test/tools/kube/go.mod test/tools/kube/go.sum
	cd test/tools/kube && go build -ldflags '$(KUBE_LDFLAGS)' -o $@ k8s.io/kubernetes/cmd/$*

# containerd 2 and its runc shim, static and stamped as containerd's Makefile
# does (containerd --version, and the node's containerRuntimeVersion, say
# v2.4.2). CGO_ENABLED=0 leaves out the btrfs snapshotter, which needs C
# headers; the node stack uses the native snapshotter.
CONTAINERD_VERSION = $(shell cd test/tools/containerd && go list -m -f '{{.Version}}' github.com/containerd/containerd/v2)
$(CONTAINERD) &: test/tools/containerd/go.mod test/tools/containerd/go.sum
	cd test/tools/containerd && CGO_ENABLED=0 go build -tags no_btrfs,urfave_cli_no_docs \
		-ldflags '-X github.com/containerd/containerd/v2/version.Version=$(CONTAINERD_VERSION)' -o $(BIN)/ \
		github.com/containerd/containerd/v2/cmd/containerd \
		github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2 \
		github.com/containerd/containerd/v2/cmd/ctr

# runc with cgo and libseccomp, as its releases (seccomp profiles need it:
# the kubelet's RuntimeDefault is one), without libpathrs, a Rust library
# Debian does not package; runc then resolves paths in Go.
RUNC_VERSION = $(shell cd test/tools/runc && go list -m -f '{{.Version}}' github.com/opencontainers/runc)
$(RUNC): test/tools/runc/go.mod test/tools/runc/go.sum | libseccomp
	cd test/tools/runc && CGO_ENABLED=1 go build -tags seccomp,urfave_cli_no_docs \
		-ldflags '-X main.version=$(patsubst v%,%,$(RUNC_VERSION))' -o $@ github.com/opencontainers/runc

# runc's seccomp support links libseccomp: Debian's libseccomp-dev, installed
# when missing.
.PHONY: libseccomp
libseccomp:
	@pkg-config --exists libseccomp 2>/dev/null || { echo "installing Debian's libseccomp-dev and pkg-config (runc links libseccomp)"; \
		{ compgen -G '/var/lib/apt/lists/*_Packages*' >/dev/null || apt-get update >/dev/null; } && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends libseccomp-dev pkg-config >/dev/null; }

# The images the node stack's pods run, built as make images builds ours
# (this machine's platform only; a few seconds).
$(NODE_IMAGES) &: build/images/*.go build/pause/*.go internal/testing/nodestack/hello/*.go
	go run ./build/images -node -out $(BIN)/node-images

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

# The reference CNI plugins internal/testing/consumers runs on every NAD the operator
# writes, and the node stack's pod network (bridge, host-local, loopback,
# portmap); static, so the kernel VM's initramfs can hold them too.
$(CNI_PLUGINS) &: test/tools/cni/go.mod test/tools/cni/go.sum
	mkdir -p $(BIN)/cni
	cd test/tools/cni && CGO_ENABLED=0 go build -ldflags='-s -w' -o $(BIN)/cni/ \
		github.com/containernetworking/plugins/plugins/main/bridge \
		github.com/containernetworking/plugins/plugins/main/macvlan \
		github.com/containernetworking/plugins/plugins/ipam/host-local \
		github.com/containernetworking/plugins/plugins/main/loopback \
		github.com/containernetworking/plugins/plugins/meta/portmap

# KubeVirt's own VM validation (virt-api's admitters, v1.8.0) as a command,
# for internal/testing/consumers. About 6 minutes cold on 2 cores. KubeVirt's go.mod
# needs a module the checksum database does not know (rhobs).
$(KUBEVIRT_ADMIT): test/tools/kubevirt-admit/go.mod test/tools/kubevirt-admit/go.sum test/tools/kubevirt-admit/main.go
	cd test/tools/kubevirt-admit && GONOSUMDB=github.com/rhobs go build -o $@ .

# crd-ref-docs v0.2.0 with controller-tools raised to controller-gen's v0.23.0:
# v0.18.0, which it asks for, cannot parse the bond mode enum (802.3ad), and
# the tool then finds no API at all and writes an empty reference.
$(CRD_REF_DOCS): test/tools/apidocs/go.mod test/tools/apidocs/go.sum
	cd test/tools/apidocs && go build -o $@ github.com/elastic/crd-ref-docs

$(GOLANGCI_LINT): test/tools/golangci-lint/go.mod test/tools/golangci-lint/go.sum
	cd test/tools/golangci-lint && go build -o $@ github.com/golangci/golangci-lint/v2/cmd/golangci-lint

$(HELM): test/tools/helm/go.mod test/tools/helm/go.sum
	cd test/tools/helm && go build -o $@ helm.sh/helm/v3/cmd/helm

$(KUBE_CONTROLLER_MANAGER): test/tools/kube/go.mod test/tools/kube/go.sum
	cd test/tools/kube && go build -ldflags '$(KUBE_LDFLAGS)' -o $@ k8s.io/kubernetes/cmd/kube-controller-manager
