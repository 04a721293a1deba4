// Package devenv is the local development environment behind `make dev`:
// the real control plane from bin/, the SIMULATOR for KubeVirt/CDI/PV
// binding/nmstate, vmop-controller, and "nodes" that each run their own
// vmop-agent probing their own kernel links. Nodes that need only what the
// host kernel has live in network namespaces; nodes that need 802.1Q VLANs
// or bridge VLAN filtering live in a small VM booting Debian's stock kernel
// (the host kernel lacks both). Everything it creates — processes,
// namespaces, links, the VM, temporary files — goes away on Stop, so the
// next `make dev` starts clean. It needs root.
package devenv

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/go-logr/logr"
	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
	"github.com/jianfenliu/vmoperator/controller/manager"
	"github.com/jianfenliu/vmoperator/internal/testing/controlplane"
	"github.com/jianfenliu/vmoperator/test/simulator"
)

// LeaseNamespace is where the agents renew their Leases.
const LeaseNamespace = "vmop-system"

// Env is a running development environment.
type Env struct {
	ControlPlane *controlplane.ControlPlane
	// Nodes lists the nodes and how each is built.
	Nodes []NodeInfo
	// AllowEmulation is always true: the controller places VMs without
	// requiring KVM (KubeVirt's useEmulation), on hosts with and without /dev/kvm.
	AllowEmulation bool
	// PrometheusURL is the environment's Prometheus, scraping the
	// controller and every agent and evaluating metrics/alerts.yaml.
	PrometheusURL string
	log           io.Writer
	stops         []func() error // run in reverse order by Stop
	dir           string
	// The host nodes' agents and how to start them.
	agents    map[string]*agentProcess
	agentArgs map[string][]string
	// wires are the host-side ends of the host nodes' uplinks, by node.
	wires map[string]string
}

// NodeInfo describes one node of the environment.
type NodeInfo struct {
	Name        string
	Description string
}

// Options configure Start.
type Options struct {
	// AgentBinary is the vmop-agent to run for each node.
	AgentBinary string
	// Log receives progress lines and the agents' output.
	Log io.Writer
	// ControllerLogger is vmop-controller's logger.
	ControllerLogger logr.Logger
}

// Start brings the environment up. On error, whatever was started is stopped.
func Start(ctx context.Context, options Options) (_ *Env, err error) {
	if os.Geteuid() != 0 {
		return nil, errors.New("the development environment creates network namespaces and links: run it as root")
	}
	env := &Env{log: options.Log}
	defer func() {
		if err != nil {
			err = errors.Join(err, env.Stop())
		}
	}()
	if env.dir, err = os.MkdirTemp("", "vmop-dev-"); err != nil {
		return nil, err
	}
	env.onStop(func() error { return os.RemoveAll(env.dir) })
	if err := env.startControlPlane(); err != nil {
		return nil, err
	}
	if err := env.seed(ctx); err != nil {
		return nil, err
	}
	if err := env.startSimulatorAndController(ctx, options.ControllerLogger); err != nil {
		return nil, err
	}
	if err := env.startNodes(ctx, options.AgentBinary); err != nil {
		return nil, err
	}
	if err := env.startPrometheus(ctx); err != nil {
		return nil, err
	}
	return env, nil
}

func (env *Env) onStop(stop func() error) { env.stops = append(env.stops, stop) }

func (env *Env) logf(format string, args ...any) {
	if env.log != nil {
		fmt.Fprintf(env.log, "vmop-dev: "+format+"\n", args...)
	}
}

// Stop tears everything down, in reverse order of creation.
func (env *Env) Stop() error {
	var errs []error
	for i := len(env.stops) - 1; i >= 0; i-- {
		errs = append(errs, env.stops[i]())
	}
	env.stops = nil
	return errors.Join(errs...)
}

func (env *Env) startControlPlane() error {
	start := time.Now()
	cp, err := controlplane.Start()
	if err != nil {
		return err
	}
	env.ControlPlane = cp
	env.onStop(cp.Stop)
	if err := cp.StartGarbageCollector(); err != nil {
		return err
	}
	env.logf("control plane up in %v (etcd, kube-apiserver, kube-controller-manager from bin/)", time.Since(start).Round(100*time.Millisecond))
	return nil
}

// Node labels of the environment: which HostNetworks select which node.
// LabelMgmt is the nodeSelector of config/samples' HostNetwork mgmt.
const (
	LabelMgmt = "network.example.com/mgmt"
	LabelLAN  = "vmop.dev/lan"
)

// MgmtSample is the HostNetwork mgmt the environment declares: the request's
// test VM's, config/samples/vm_v1alpha1_hostnetwork.yaml, so that
// `kubectl apply -f config/samples/` finds it unchanged.
const MgmtSample = "config/samples/vm_v1alpha1_hostnetwork.yaml"

// HostNetworks are what the environment's cluster admin declared:
//   - mgmt: config/samples' managed VLAN-filtering bridge br-mgmt on eth1
//     trunking VLANs 1, 100, 101 and 200, on node-a and node-b (LabelMgmt),
//     built by the nmstate stand-in in their kernels;
//   - lan: the existing bridge br-lan of node-c, untagged;
//   - business: the SR-IOV PF ens1f0 of node-a, the default SR-IOV network,
//     VLAN 200.
func HostNetworks() ([]*vmv1alpha1.HostNetwork, error) {
	mgmt, err := sampleHostNetwork(filepath.Join(controlplane.RepoRoot(), MgmtSample))
	if err != nil {
		return nil, err
	}
	everyone := metav1.LabelSelector{}
	return []*vmv1alpha1.HostNetwork{
		mgmt,
		{ObjectMeta: metav1.ObjectMeta{Name: "lan"}, Spec: vmv1alpha1.HostNetworkSpec{Type: vmv1alpha1.NetworkTypeBridge, BridgeName: "br-lan",
			NodeSelector: map[string]string{LabelLAN: "true"}, NamespaceSelector: everyone}},
		{ObjectMeta: metav1.ObjectMeta{Name: "business"}, Spec: vmv1alpha1.HostNetworkSpec{Type: vmv1alpha1.NetworkTypeSRIOV, Default: true,
			Uplinks: []vmv1alpha1.Uplink{{Interface: "ens1f0"}}, AllowedVLANs: []vmv1alpha1.VLANRange{"200"}, NamespaceSelector: everyone,
			SRIOV: &vmv1alpha1.HostSRIOV{ResourceName: "intel.com/sriov_netdevice"}}},
	}, nil
}

// sampleHostNetwork reads the HostNetwork of a sample file, annotated with
// the configuration kubectl apply records, so that applying the same file
// later finds nothing to change.
func sampleHostNetwork(path string) (*vmv1alpha1.HostNetwork, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("sample HostNetwork: %w", err)
	}
	var h vmv1alpha1.HostNetwork
	if err := yaml.UnmarshalStrict(raw, &h); err != nil {
		return nil, fmt.Errorf("sample HostNetwork %s: %w", path, err)
	}
	applied, err := lastAppliedConfiguration(raw)
	if err != nil {
		return nil, fmt.Errorf("sample HostNetwork %s: %w", path, err)
	}
	h.Annotations = map[string]string{"kubectl.kubernetes.io/last-applied-configuration": applied}
	return &h, nil
}

// lastAppliedConfiguration is the annotation kubectl apply writes for the
// manifest raw: its JSON with metadata.annotations present (without this
// one, so empty here), keys sorted, and a newline.
func lastAppliedConfiguration(raw []byte) (string, error) {
	var manifest map[string]any
	if err := yaml.Unmarshal(raw, &manifest); err != nil {
		return "", fmt.Errorf("read manifest: %w", err)
	}
	metadata, ok := manifest["metadata"].(map[string]any)
	if !ok {
		return "", errors.New("no metadata")
	}
	metadata["annotations"] = map[string]any{}
	out, err := json.Marshal(manifest)
	if err != nil {
		return "", fmt.Errorf("encode manifest: %w", err)
	}
	return string(out) + "\n", nil
}

// seed creates what the samples expect to exist: the agents' namespace, the
// host networks, the storage classes, the seed example's mgmt-net
// attachment and SSH key Secret.
func (env *Env) seed(ctx context.Context) error {
	hostNetworks, err := HostNetworks()
	if err != nil {
		return err
	}
	for _, h := range hostNetworks {
		if err := env.ControlPlane.Client.Create(ctx, h); err != nil {
			return fmt.Errorf("seed HostNetwork %s: %w", h.Name, err)
		}
	}
	wffc := storagev1.VolumeBindingWaitForFirstConsumer
	for _, obj := range []client.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: LeaseNamespace}},
		&storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: "huamei-sc-ssd", Annotations: map[string]string{
			"storageclass.kubernetes.io/is-default-class": "true"}}, Provisioner: "huamei.example.com/csi", AllowVolumeExpansion: ptr.To(true)},
		&storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: "huamei-sc-hdd"}, Provisioner: "huamei.example.com/csi", AllowVolumeExpansion: ptr.To(true)},
		&storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: "local-wffc"}, Provisioner: "kubernetes.io/no-provisioner", VolumeBindingMode: &wffc},
		&nadv1.NetworkAttachmentDefinition{ObjectMeta: metav1.ObjectMeta{Name: "mgmt-net", Namespace: "default"},
			Spec: nadv1.NetworkAttachmentDefinitionSpec{Config: `{"cniVersion":"0.3.1","name":"mgmt-net","type":"bridge","bridge":"br-mgmt","vlan":100,"ipam":{}}`}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "web-vm-ssh", Namespace: "default"},
			StringData: map[string]string{"key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDevEnvironmentPlaceholderKeyOnly dev@vmop"}},
	} {
		if err := env.ControlPlane.Client.Create(ctx, obj); err != nil {
			return fmt.Errorf("seed %s: %w", obj.GetName(), err)
		}
	}
	return nil
}

func (env *Env) startSimulatorAndController(ctx context.Context, logger logr.Logger) error {
	ctx, cancel := context.WithCancel(ctx)
	env.onStop(func() error { cancel(); return nil })
	// nmstate's part is played on each node, in its own kernel (nmstatesim).
	if err := simulator.Start(ctx, env.ControlPlane.Config, simulator.WithoutNMState()); err != nil {
		return err
	}
	// The environment's "KubeVirt" runs VMs in software emulation
	// (useEmulation: true) whatever the host has: node-a and node-b live in
	// a TCG-emulated VM that never has /dev/kvm, while node-c's agent probes
	// the host's own /dev/kvm where there is one. Placement must not depend
	// on which kind of machine runs `make dev`.
	env.AllowEmulation = true
	mgr, err := manager.New(env.ControlPlane.Config, manager.Options{
		AllowEmulation: env.AllowEmulation,
		MetricsAddress: controllerMetricsAddress, ProbeAddress: "127.0.0.1:18081",
		DefaultSRIOVResource: "intel.com/sriov_netdevice", LeaseNamespace: LeaseNamespace,
		// controller-runtime's registry, which the metrics endpoint serves:
		// the environment's Prometheus scrapes vmop's metrics from it. One
		// environment per process, so they are registered once.
		LabelGrace: 30 * time.Second, Logger: logger,
	})
	if err != nil {
		return err
	}
	go func() {
		if err := mgr.Start(ctx); err != nil {
			env.logf("vmop-controller stopped: %v", err)
		}
	}()
	env.logf("simulator and vmop-controller running (controller metrics on https://%s/metrics, for a token allowed GET /metrics)", controllerMetricsAddress)
	return nil
}

// controllerMetricsAddress is where vmop-controller serves its metrics, as
// in a cluster: HTTPS, self-signed, to bearer tokens allowed GET /metrics.
const controllerMetricsAddress = "127.0.0.1:18443"

// ip runs ip(8), returning its output in the error when it fails.
func ip(args ...string) error {
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

func (env *Env) path(name string) string { return filepath.Join(env.dir, name) }
