package scale

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
	"github.com/jianfenliu/vmoperator/internal/testing/consumers"
	"github.com/jianfenliu/vmoperator/internal/testing/controlplane"
	"github.com/jianfenliu/vmoperator/test/simulator"
)

// LeaseNamespace holds the agents' Leases and the controller's election Lease.
const LeaseNamespace = "vmop-system"

// ControllerUser is the identity the controller runs under: its service account.
const ControllerUser = "system:serviceaccount:vmop-system:vmop-controller"

// StorageClass is the class of every profile's disk.
const StorageClass = "huamei-sc-ssd"

// Env is a control plane with its garbage collector, the simulator, the
// controller's role, the declared host networks and Nodes whose agents
// report every capability the profiles need.
type Env struct {
	Plane  *controlplane.ControlPlane
	Client client.Client
	// Dir holds the run's files: the controller binary, kubeconfigs, logs.
	Dir    string
	cancel context.CancelFunc
	// restartedAPIServer is the kube-apiserver started again by
	// RestartAPIServer, which Stop must end before the control plane.
	restartedAPIServer *exec.Cmd
}

// RestartAPIServer stops kube-apiserver, leaves it down for down, and
// starts it again with the same arguments.
func (e *Env) RestartAPIServer(down time.Duration) error {
	cmd, err := e.Plane.RestartAPIServer(down)
	if err != nil {
		return err
	}
	if e.restartedAPIServer != nil {
		_ = e.restartedAPIServer.Process.Kill()
	}
	e.restartedAPIServer = cmd
	return nil
}

// StartEnv brings up the environment with nodes simulated nodes.
func StartEnv(nodes int) (env *Env, err error) {
	dir, err := os.MkdirTemp("", "vmop-scale-")
	if err != nil {
		return nil, err
	}
	plane, err := controlplane.Start()
	if err != nil {
		return nil, errors.Join(err, os.RemoveAll(dir))
	}
	ctx, cancel := context.WithCancel(context.Background())
	env = &Env{Plane: plane, Client: plane.Client, Dir: dir, cancel: cancel}
	defer func() {
		if err != nil {
			env.Stop()
		}
	}()
	if err := plane.StartGarbageCollector(); err != nil {
		return nil, err
	}
	if err := env.seed(ctx, nodes); err != nil {
		return nil, err
	}
	if _, err := controlplane.GrantGeneratedRoles(ctx, plane.Client, "controller", ControllerUser, LeaseNamespace); err != nil {
		return nil, err
	}
	if err := simulator.Start(ctx, plane.Config, simulator.WithGuestRenderer(RenderNetworkData)); err != nil {
		return nil, err
	}
	return env, nil
}

// Stop ends the simulator and the control plane and removes the run's files.
func (e *Env) Stop() {
	e.cancel()
	if e.restartedAPIServer != nil {
		_ = e.restartedAPIServer.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = e.restartedAPIServer.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			_ = e.restartedAPIServer.Process.Kill()
		}
	}
	if err := e.Plane.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "stopping the control plane:", err)
	}
	if os.Getenv("VMOP_SCALE_KEEP") != "" {
		fmt.Fprintln(os.Stderr, "kept the run's files in", e.Dir)
		return
	}
	_ = os.RemoveAll(e.Dir)
}

// NodeName is the name of the i-th simulated node.
func NodeName(i int) string { return fmt.Sprintf("scale-node-%03d", i) }

func (e *Env) seed(ctx context.Context, nodes int) error {
	c := e.Client
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: LeaseNamespace}}); err != nil {
		return fmt.Errorf("create Namespace %s: %w", LeaseNamespace, err)
	}
	class := &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: StorageClass},
		Provisioner: "huamei.example.com/csi", AllowVolumeExpansion: ptr.To(true)}
	if err := c.Create(ctx, class); err != nil {
		return fmt.Errorf("create StorageClass %s: %w", class.Name, err)
	}
	mgmt := &vmv1alpha1.HostNetwork{ObjectMeta: metav1.ObjectMeta{Name: "mgmt"}, Spec: vmv1alpha1.HostNetworkSpec{
		Type: vmv1alpha1.NetworkTypeBridge, BridgeName: "br-mgmt",
		AllowedVLANs: []vmv1alpha1.VLANRange{"1-4094"}, Untagged: vmv1alpha1.UntaggedAllowed, NamespaceSelector: metav1.LabelSelector{}}}
	if err := c.Create(ctx, mgmt); err != nil {
		return fmt.Errorf("create HostNetwork %s: %w", mgmt.Name, err)
	}
	for i := range nodes {
		if err := addNode(ctx, c, NodeName(i)); err != nil {
			return err
		}
	}
	return nil
}

// addNode creates a Node and plays its agent: a NodeCapability offering
// KVM and the bridge br-mgmt, and a Lease valid for the whole run.
func addNode(ctx context.Context, c client.Client, name string) error {
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{
		corev1.LabelHostname: name, "kubernetes.io/arch": "amd64"}}}
	if err := c.Create(ctx, node); err != nil {
		return fmt.Errorf("create Node %s: %w", name, err)
	}
	capability := &vmv1alpha1.NodeCapability{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if err := c.Create(ctx, capability); err != nil {
		return fmt.Errorf("create NodeCapability %s: %w", name, err)
	}
	capability.Status = vmv1alpha1.NodeCapabilityStatus{
		KVM:     &vmv1alpha1.KVMStatus{Available: true, APIVersion: 12},
		Uplinks: []vmv1alpha1.UplinkStatus{{Name: "eth1", Up: true, Carrier: true, MTU: 1500}},
		Bridges: []vmv1alpha1.BridgeStatus{{Name: "br-mgmt", Up: true, MTU: 1500, VLANFiltering: true,
			Ports: []vmv1alpha1.BridgePort{{Name: "eth1", Up: true, VLANs: "1-4094", PVID: 1}}}},
	}
	if err := c.Status().Update(ctx, capability); err != nil {
		return fmt.Errorf("update the status of NodeCapability %s: %w", name, err)
	}
	lease := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: LeaseNamespace},
		Spec: coordinationv1.LeaseSpec{
			HolderIdentity:       ptr.To("vmop-agent/" + name),
			LeaseDurationSeconds: ptr.To(int32((6 * time.Hour).Seconds())),
			RenewTime:            &metav1.MicroTime{Time: time.Now()},
		}}
	if err := c.Create(ctx, lease); err != nil {
		return fmt.Errorf("create Lease %s/%s: %w", LeaseNamespace, name, err)
	}
	return nil
}

// StartController starts a vmop-controller process that reaches the
// apiserver through a new Proxy. Stop the controller before the proxy.
func (e *Env) StartController(binary, name string, extraEnv []string, args ...string) (*Controller, *Proxy, error) {
	proxy, kubeconfig, err := e.NewProxy(name)
	if err != nil {
		return nil, nil, err
	}
	controller, err := StartControllerWithEnv(binary, kubeconfig, e.LogPath(name), extraEnv, args...)
	if err != nil {
		return nil, nil, errors.Join(err, proxy.Close())
	}
	return controller, proxy, nil
}

// NewProxy starts a proxy for the controller user and writes a kubeconfig
// for it, named after name.
func (e *Env) NewProxy(name string) (*Proxy, string, error) {
	proxy, err := StartProxy(e.Plane.Config, ControllerUser)
	if err != nil {
		return nil, "", err
	}
	dir := filepath.Join(e.Dir, name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, "", errors.Join(err, proxy.Close())
	}
	kubeconfig, err := proxy.WriteKubeconfig(dir)
	if err != nil {
		return nil, "", errors.Join(err, proxy.Close())
	}
	return proxy, kubeconfig, nil
}

// LogPath is where the controller started under name logs.
func (e *Env) LogPath(name string) string { return filepath.Join(e.Dir, name+".log") }

// RenderNetworkData reads a netplan v2 network-data as a guest applies it:
// addresses, DHCP and MTU per NIC, matched by MAC. It stands in for
// cloud-init in the scale runs only; everything else proves cloud-init's
// own rendering agrees (package consumers).
func RenderNetworkData(networkData string) (consumers.Rendering, error) {
	var doc struct {
		Ethernets map[string]struct {
			Match struct {
				MACAddress string `json:"macaddress"`
			} `json:"match"`
			SetName   string   `json:"set-name"`
			DHCP4     bool     `json:"dhcp4"`
			Addresses []string `json:"addresses"`
			MTU       int      `json:"mtu"`
		} `json:"ethernets"`
	}
	if err := yaml.Unmarshal([]byte(networkData), &doc); err != nil {
		return consumers.Rendering{}, fmt.Errorf("network-data: %w", err)
	}
	rendering := consumers.Rendering{Interfaces: map[string]consumers.GuestInterface{}}
	for name, eth := range doc.Ethernets {
		for _, address := range eth.Addresses {
			if _, err := netip.ParsePrefix(address); err != nil {
				return consumers.Rendering{}, fmt.Errorf("network-data %s: address %q: %w", name, address, err)
			}
		}
		rendering.Interfaces[name] = consumers.GuestInterface{Name: eth.SetName, MAC: eth.Match.MACAddress,
			DHCP: eth.DHCP4, Addresses: eth.Addresses, MTU: eth.MTU}
	}
	return rendering, nil
}
