// Package integration runs vmop-controller against the real test control
// plane (with the real garbage collector) and the simulator, and checks the
// seed's end-to-end scenarios and the operator's safety rules.
package integration

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
	"github.com/jianfenliu/vmoperator/controller/manager"
	"github.com/jianfenliu/vmoperator/internal/testing/consumers/written"
	"github.com/jianfenliu/vmoperator/internal/testing/controlplane"
	"github.com/jianfenliu/vmoperator/test/observe"
	"github.com/jianfenliu/vmoperator/test/simulator"
)

// cluster is shared by every test of the package: one control plane, one
// controller, one simulator. Tests isolate themselves in namespaces.
var cluster *controlplane.ControlPlane

// controllerMetricsAddress is where the suite's controller serves /metrics.
var controllerMetricsAddress string

// controllerWrites counts the requests the controller sends that write.
var controllerWrites = newWriteCounter()

// Nodes of the simulated cluster; the seed's nodeSelector asks for amd64.
var nodeNames = []string{"node-a", "node-b", "node-c"}

// consumersOfSuite are KubeVirt's own VM validation (one process for the
// suite) and the CNI plugins.
var consumersOfSuite written.Consumers

func TestMain(m *testing.M) {
	code, err := run(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Exit(code)
}

func run(m *testing.M) (int, error) {
	var err error
	var stopConsumers func()
	if consumersOfSuite, stopConsumers, err = written.Start(); err != nil {
		return 0, err
	}
	defer stopConsumers()
	if controllerMetricsAddress, err = freeLoopbackAddress(); err != nil {
		return 0, err
	}
	cluster, err = controlplane.Start()
	if err != nil {
		return 0, err
	}
	defer func() {
		if err := cluster.Stop(); err != nil {
			fmt.Fprintf(os.Stderr, "stopping the test control plane: %v\n", err)
		}
	}()
	if err := cluster.StartGarbageCollector(); err != nil {
		return 0, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := seedCluster(ctx, cluster.Client); err != nil {
		return 0, err
	}
	if err := simulator.Start(ctx, cluster.Config); err != nil {
		return 0, err
	}
	if err := grantControllerRole(ctx, cluster.Client); err != nil {
		return 0, err
	}
	if err := installChartPolicies(ctx); err != nil {
		return 0, err
	}
	if err := events.watchEvents(ctx); err != nil {
		return 0, err
	}
	if err := startController(); err != nil {
		return 0, err
	}
	defer stopController()
	code := m.Run()
	if missing := events.unasserted(); code == 0 && fullSuite() && len(missing) > 0 {
		fmt.Fprintf(os.Stderr, "FAIL: the controller records event reasons no test asserts: %v\n", missing)
		return 1, nil
	}
	return code, nil
}

// controllerRun is the running controller; tests that need it down (to
// delete behind its back) stop and start it again.
var controllerRun struct {
	cancel context.CancelFunc
	done   chan struct{}
}

// startController runs vmop-controller as its service account would, with
// exactly the generated role (a missing permission fails here, not on a
// cluster) and leader-elected as in production, every request counted and
// passed through the fault injector.
func startController() error {
	controllerConfig := rest.CopyConfig(cluster.Config)
	controllerConfig.Impersonate = rest.ImpersonationConfig{UserName: controllerUser}
	controllerConfig.Wrap(controllerWrites.wrap)
	controllerConfig.Wrap(faults.wrap)
	mgr, err := manager.New(controllerConfig, manager.Options{
		MetricsAddress: controllerMetricsAddress, ProbeAddress: "0", DefaultSRIOVResource: "intel.com/sriov_netdevice",
		LeaderElection: true, LeaderElectionNamespace: leaseNamespace,
		LeaseNamespace: leaseNamespace, LabelGrace: labelGrace, HostNetworkRevertTimeout: revertTimeout,
		Logger: observe.ControllerLogger(), MetricsRegistry: prometheus.NewRegistry(),
		SkipControllerNameValidation: true,
		// As the chart runs it: several profiles at once, progress-only
		// status writes folded within a second.
		ProfileWorkers: 4, StatusInterval: time.Second,
		CapabilityWakeInterval: capabilityWakeInterval,
	})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	controllerRun.cancel, controllerRun.done = cancel, make(chan struct{})
	go func() {
		defer close(controllerRun.done)
		if err := mgr.Start(ctx); err != nil {
			fmt.Fprintln(os.Stderr, "controller stopped:", err)
		}
	}()
	return nil
}

// stopController stops the controller and waits until it has.
func stopController() {
	if controllerRun.cancel != nil {
		controllerRun.cancel()
		<-controllerRun.done
		controllerRun.cancel = nil
	}
}

// withControllerStopped stops the controller for the rest of a test's step
// and makes sure it runs again afterwards, also when the test fails.
func withControllerStopped(t *testing.T) (restart func()) {
	t.Helper()
	stopController()
	restarted := false
	restart = func() {
		if !restarted {
			restarted = true
			if err := startController(); err != nil {
				t.Fatal(err)
			}
		}
	}
	t.Cleanup(restart)
	return restart
}

// capabilityWakeInterval is the controller's --capability-wake-interval
// here (production: 5 s), shorter so that tests changing a node twice in a
// row wait little; TestCapabilityFlipsWakeBoundedReconciles changes it.
var capabilityWakeInterval = time.Second

// controllerUser is the identity the controller runs under in the tests.
const controllerUser = "system:serviceaccount:vmop-system:vmop-controller"

// grantControllerRole installs the generated roles of deploy/rbac/controller
// and binds them to controllerUser.
func grantControllerRole(ctx context.Context, c client.Client) error {
	_, err := controlplane.GrantGeneratedRoles(ctx, c, "controller", controllerUser, leaseNamespace)
	return err
}

// installChartPolicies installs the chart's admission policies, so every
// write of the controller in these tests passes them as on a cluster (a
// write they refuse fails the test that needs it), and waits until the
// apiserver enforces them: a dry-run create of an unlabelled claim by the
// controller is refused.
func installChartPolicies(ctx context.Context) error {
	if err := cluster.InstallChartPolicies(ctx, leaseNamespace); err != nil {
		return err
	}
	config := rest.CopyConfig(cluster.Config)
	config.Impersonate = rest.ImpersonationConfig{UserName: controllerUser}
	asController, err := client.New(config, client.Options{Scheme: cluster.Scheme})
	if err != nil {
		return err
	}
	probe := &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: "policy-probe", Namespace: "default"},
		Spec: corev1.PersistentVolumeClaimSpec{AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}}}}
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := asController.Create(ctx, probe.DeepCopy(), client.DryRunAll)
		if apierrors.IsForbidden(err) && strings.Contains(err.Error(), "managed-by: vmop-controller") {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the chart's admission policies are not in effect after 30 s: an unlabelled claim by the controller: %w", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// Where the agents' Leases live, and how long a vanished capability keeps
// its node label in these tests (production: 2 minutes).
const (
	leaseNamespace = "vmop-system"
	labelGrace     = 3 * time.Second
	// revertTimeout bounds a HostNetwork deletion's wait for nmstate here
	// (production: 5 minutes).
	revertTimeout = 5 * time.Second
)

// declaredHostNetworks are what the cluster admin declared for the
// scenarios: the bridges br-lan and br-mgmt (existing, every VLAN and
// untagged use, every namespace), a default macvlan network on eth1 and a
// default SR-IOV network on ens1f0 (every VLAN and untagged; every node has
// them, see fullCapability).
func declaredHostNetworks() []*vmv1alpha1.HostNetwork {
	anyVLAN := []vmv1alpha1.VLANRange{"1-4094"}
	everyone := metav1.LabelSelector{}
	return []*vmv1alpha1.HostNetwork{
		{ObjectMeta: metav1.ObjectMeta{Name: "lan"}, Spec: vmv1alpha1.HostNetworkSpec{Type: vmv1alpha1.NetworkTypeBridge, BridgeName: "br-lan",
			AllowedVLANs: anyVLAN, Untagged: vmv1alpha1.UntaggedAllowed, MTU: ptr.To[int32](9000), NamespaceSelector: everyone}},
		{ObjectMeta: metav1.ObjectMeta{Name: "mgmt"}, Spec: vmv1alpha1.HostNetworkSpec{Type: vmv1alpha1.NetworkTypeBridge, BridgeName: "br-mgmt",
			AllowedVLANs: anyVLAN, Untagged: vmv1alpha1.UntaggedAllowed, NamespaceSelector: everyone}},
		{ObjectMeta: metav1.ObjectMeta{Name: "macvlan"}, Spec: vmv1alpha1.HostNetworkSpec{Type: vmv1alpha1.NetworkTypeMacvlan, Default: true,
			Uplinks: []vmv1alpha1.Uplink{{Interface: "eth1"}}, NamespaceSelector: everyone}},
		{ObjectMeta: metav1.ObjectMeta{Name: "sriov"}, Spec: vmv1alpha1.HostNetworkSpec{Type: vmv1alpha1.NetworkTypeSRIOV, Default: true,
			Uplinks: []vmv1alpha1.Uplink{{Interface: "ens1f0"}}, AllowedVLANs: anyVLAN, Untagged: vmv1alpha1.UntaggedAllowed, NamespaceSelector: everyone,
			SRIOV: &vmv1alpha1.HostSRIOV{ResourceName: "intel.com/sriov_netdevice"}}},
	}
}

// seedCluster creates the nodes (each with what its agent would report),
// the declared host networks and the storage classes the scenarios use.
func seedCluster(ctx context.Context, c client.Client) error {
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: leaseNamespace}}); err != nil {
		return err
	}
	for _, name := range nodeNames {
		if err := addNode(ctx, c, name, map[string]string{"kubernetes.io/arch": "amd64"}, fullCapability()); err != nil {
			return err
		}
	}
	for _, h := range declaredHostNetworks() {
		if err := c.Create(ctx, h); err != nil {
			return err
		}
	}
	wffc := storagev1.VolumeBindingWaitForFirstConsumer
	classes := []*storagev1.StorageClass{
		{ObjectMeta: metav1.ObjectMeta{Name: "huamei-sc-ssd"}, Provisioner: "huamei.example.com/csi", AllowVolumeExpansion: ptr.To(true)},
		{ObjectMeta: metav1.ObjectMeta{Name: "huamei-sc-hdd"}, Provisioner: "huamei.example.com/csi", AllowVolumeExpansion: ptr.To(false)},
		{ObjectMeta: metav1.ObjectMeta{Name: "local-wffc"}, Provisioner: "kubernetes.io/no-provisioner", VolumeBindingMode: &wffc},
	}
	for _, class := range classes {
		if err := c.Create(ctx, class); err != nil {
			return err
		}
	}
	return nil
}

func newNamespace(t *testing.T) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "it-"}}
	if err := cluster.Client.Create(context.Background(), ns); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cluster.Client.Delete(context.Background(), ns) })
	// Runs first (cleanups run last-in first-out): the real consumers judge
	// what the controller wrote in this scenario, before it is deleted.
	t.Cleanup(func() { judgeNamespace(t, cluster.Client, ns.Name) })
	return ns.Name
}

// judgeNamespace fails the test when a consumer rejects an object the
// controller wrote in namespace.
func judgeNamespace(t *testing.T, c client.Reader, namespace string) {
	t.Helper()
	judged, err := written.CheckNamespace(t, c, namespace, consumersOfSuite)
	if err != nil {
		t.Errorf("the consumers reject what the controller wrote in %s: %v", namespace, err)
	}
	t.Logf("consumers on %s: %v", namespace, judged)
}

func create(t *testing.T, obj client.Object) {
	t.Helper()
	if err := cluster.Client.Create(context.Background(), obj); err != nil {
		t.Fatalf("create %T %s: %v", obj, obj.GetName(), err)
	}
}

func getProfile(t *testing.T, namespace, name string) *vmv1alpha1.VirtualMachineProfile {
	t.Helper()
	var profile vmv1alpha1.VirtualMachineProfile
	if err := cluster.Client.Get(context.Background(), client.ObjectKey{Namespace: namespace, Name: name}, &profile); err != nil {
		t.Fatal(err)
	}
	return &profile
}

// waitForPhase waits until the profile reports phase.
func waitForPhase(t *testing.T, namespace, name string, phase vmv1alpha1.Phase) *vmv1alpha1.VirtualMachineProfile {
	t.Helper()
	var profile *vmv1alpha1.VirtualMachineProfile
	observe.Eventually(t, 30*time.Second, fmt.Sprintf("profile %s phase %s", name, phase), func() (bool, string) {
		profile = getProfile(t, namespace, name)
		return profile.Status.Phase == phase && profile.Status.ObservedGeneration == profile.Generation, observe.Describe(profile)
	})
	return profile
}

// waitForCondition waits until the profile's condition has the status and reason.
func waitForCondition(t *testing.T, namespace, name, conditionType string, status metav1.ConditionStatus, reason string) *vmv1alpha1.VirtualMachineProfile {
	t.Helper()
	var profile *vmv1alpha1.VirtualMachineProfile
	observe.Eventually(t, 30*time.Second, fmt.Sprintf("profile %s %s=%s %s", name, conditionType, status, reason), func() (bool, string) {
		profile = getProfile(t, namespace, name)
		for _, c := range profile.Status.Conditions {
			if c.Type == conditionType && c.Status == status && c.Reason == reason {
				return true, ""
			}
		}
		return false, observe.Describe(profile)
	})
	return profile
}
