package integration

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kubevirtv1 "kubevirt.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
	"github.com/jianfenliu/vmoperator/controller/recovery"
	"github.com/jianfenliu/vmoperator/test/observe"
)

// TestLostNodeRestartsOnlyWhatItsDisksAllow: three VMs run on node lost-1:
// one without disks, one with a ReadWriteOnce disk, and one pinned to
// lost-1 with a disk. lost-1 goes NotReady and its agent's Lease expires.
// The diskless VM restarts on lost-2 at once; the one with a disk stays
// where it is (its claim may still be attached on lost-1) and its Ready
// condition says what it waits for, until an admin fences lost-1 (taint
// out-of-service): then it restarts on lost-2 with the same claim. The
// pinned one, which no node can take, says first that its node is lost.
func TestLostNodeRestartsOnlyWhatItsDisksAllow(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	for _, name := range []string{"lost-1", "lost-2"} {
		if err := addNode(ctx, cluster.Client, name, map[string]string{"zone": "recovery-test"}, fullCapability()); err != nil {
			t.Fatal(err)
		}
		setNodeReady(t, name, corev1.ConditionTrue)
		t.Cleanup(func() {
			_ = cluster.Client.Delete(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}})
			_ = cluster.Client.Delete(ctx, &vmv1alpha1.NodeCapability{ObjectMeta: metav1.ObjectMeta{Name: name}})
			_ = cluster.Client.Delete(ctx, &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: leaseNamespace}})
		})
	}
	inZone := func(p *vmv1alpha1.VirtualMachineProfile) {
		p.Spec.HighAvailability = &vmv1alpha1.HighAvailabilitySpec{NodeSelector: map[string]vmv1alpha1.LabelValue{"zone": "recovery-test"}}
	}
	withDisk := func(p *vmv1alpha1.VirtualMachineProfile) {
		p.Spec.Disks = []vmv1alpha1.DiskConfig{{Name: "system", Size: "1Gi", StorageClassName: "huamei-sc-ssd", Boot: true}}
	}
	pinned := func(p *vmv1alpha1.VirtualMachineProfile) {
		p.Spec.HighAvailability.NodeSelector[corev1.LabelHostname] = "lost-1"
	}
	create(t, profile("stateless", ns, inZone))
	create(t, profile("stateful", ns, inZone, withDisk))
	create(t, profile("pinned", ns, inZone, pinned, withDisk))
	before := map[string]*kubevirtv1.VirtualMachineInstance{}
	for _, name := range []string{"stateless", "stateful", "pinned"} {
		if p := waitForPhase(t, ns, name, vmv1alpha1.PhaseRunning); p.Status.NodeName != "lost-1" {
			t.Fatalf("%s runs on %s, want lost-1 (the first node of the zone)", name, p.Status.NodeName)
		}
		before[name] = instance(t, ns, name)
	}

	// lost-1's kubelet and agent both stop reporting.
	lost := time.Now()
	setNodeReady(t, "lost-1", corev1.ConditionUnknown)
	if err := renewLease(ctx, cluster.Client, "lost-1", time.Second); err != nil {
		t.Fatal(err)
	}
	p := waitForNode(t, ns, "stateless", "lost-2")
	t.Logf("stateless restarted on lost-2 %v after its node was lost: %s", time.Since(lost).Round(time.Millisecond), observe.Describe(p))
	expectEvent(t, ns, "stateless", vmv1alpha1.EventRestartedElsewhere)

	p = waitForCondition(t, ns, "stateful", vmv1alpha1.ConditionReady, metav1.ConditionFalse, vmv1alpha1.ReasonNodeLost)
	message := readyMessage(p)
	for _, want := range []string{"node lost-1 is lost", "ReadWriteOnce claim(s) stateful-system", recovery.TaintOutOfService} {
		if !strings.Contains(message, want) {
			t.Errorf("stateful's Ready message does not say %q: %s", want, message)
		}
	}
	expectEvent(t, ns, "stateful", vmv1alpha1.ReasonNodeLost)
	// A VM that no other node can take says first that its node is lost.
	waitForCondition(t, ns, "pinned", vmv1alpha1.ConditionReady, metav1.ConditionFalse, vmv1alpha1.ReasonNodeLost)
	// It stays: the same instance on lost-1, a few reconciles later too.
	for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); time.Sleep(250 * time.Millisecond) {
		if now := instance(t, ns, "stateful"); now.UID != before["stateful"].UID || now.Status.NodeName != "lost-1" {
			t.Fatalf("stateful left lost-1 before it was fenced: now %s on %q", now.UID, now.Status.NodeName)
		}
	}

	fenced := time.Now()
	fence(t, "lost-1")
	p = waitForNode(t, ns, "stateful", "lost-2")
	t.Logf("stateful restarted on lost-2 %v after lost-1 was fenced", time.Since(fenced).Round(time.Millisecond))
	expectEvent(t, ns, "stateful", vmv1alpha1.EventRestartedElsewhere)
	if len(p.Status.Volumes) != 1 || p.Status.Volumes[0].PVCName != "stateful-system" {
		t.Errorf("stateful's volumes after the restart: %+v", p.Status.Volumes)
	}
}

// setNodeReady writes a node's Ready condition, as its kubelet (True) or
// the node lifecycle controller (Unknown, when the kubelet stops posting) would.
func setNodeReady(t *testing.T, name string, status corev1.ConditionStatus) {
	t.Helper()
	var node corev1.Node
	if err := cluster.Client.Get(context.Background(), client.ObjectKey{Name: name}, &node); err != nil {
		t.Fatal(err)
	}
	original := node.DeepCopy()
	node.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: status,
		LastHeartbeatTime: metav1.Now(), LastTransitionTime: metav1.Now(), Reason: "Test", Message: "set by the test"}}
	// A patch: the node labeller writes the node's labels meanwhile.
	if err := cluster.Client.Status().Patch(context.Background(), &node, client.MergeFrom(original)); err != nil {
		t.Fatal(err)
	}
}

// fence taints a node out-of-service, as an admin does once it is shut down.
func fence(t *testing.T, name string) {
	t.Helper()
	var node corev1.Node
	if err := cluster.Client.Get(context.Background(), client.ObjectKey{Name: name}, &node); err != nil {
		t.Fatal(err)
	}
	original := node.DeepCopy()
	node.Spec.Taints = append(node.Spec.Taints, corev1.Taint{Key: recovery.TaintOutOfService, Value: "nodeshutdown", Effect: corev1.TaintEffectNoExecute})
	if err := cluster.Client.Patch(context.Background(), &node, client.MergeFrom(original)); err != nil {
		t.Fatal(err)
	}
}

func instance(t *testing.T, namespace, profileName string) *kubevirtv1.VirtualMachineInstance {
	t.Helper()
	var vmi kubevirtv1.VirtualMachineInstance
	getObject(t, &vmi, namespace, vmv1alpha1.VMName(profileName))
	return &vmi
}

// waitForNode waits until the profile runs on node.
func waitForNode(t *testing.T, namespace, name, node string) *vmv1alpha1.VirtualMachineProfile {
	t.Helper()
	var p *vmv1alpha1.VirtualMachineProfile
	observe.Eventually(t, 30*time.Second, fmt.Sprintf("%s running on %s", name, node), func() (bool, string) {
		p = getProfile(t, namespace, name)
		return p.Status.Phase == vmv1alpha1.PhaseRunning && p.Status.NodeName == node, observe.Describe(p)
	})
	return p
}

func readyMessage(p *vmv1alpha1.VirtualMachineProfile) string {
	for _, c := range p.Status.Conditions {
		if c.Type == vmv1alpha1.ConditionReady {
			return c.Message
		}
	}
	return ""
}
