package integration

import (
	"context"
	"fmt"
	"os/exec"
	"testing"
	"time"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	kubevirtv1 "kubevirt.io/api/core/v1"
	cdiv1 "kubevirt.io/containerized-data-importer-api/pkg/apis/core/v1beta1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
	"github.com/jianfenliu/vmoperator/controller/desired"
	"github.com/jianfenliu/vmoperator/test/observe"
)

// fourDisks is a profile with a disk of each kind: an imported and a blank
// disk kept on deletion, an imported and a blank disk deleted with it.
func fourDisks(name, namespace string) *vmv1alpha1.VirtualMachineProfile {
	return profile(name, namespace, withImage("registry.local/os:1"),
		withDisk("system", "10Gi", "huamei-sc-ssd", vmv1alpha1.RetainPolicyRetain),
		withDisk("data", "5Gi", "huamei-sc-hdd", vmv1alpha1.RetainPolicyRetain),
		withDisk("scratch", "1Gi", "huamei-sc-ssd", vmv1alpha1.RetainPolicyDelete),
		func(p *vmv1alpha1.VirtualMachineProfile) {
			p.Spec.Disks = append(p.Spec.Disks, vmv1alpha1.DiskConfig{Name: "cache", Size: "2Gi",
				Image: "registry.local/cache:1", RetainPolicy: vmv1alpha1.RetainPolicyDelete})
		})
}

// claimUIDs reads the UID of each disk's claim; absent claims are left out.
func claimUIDs(t *testing.T, ns, name string) map[string]types.UID {
	t.Helper()
	uids := map[string]types.UID{}
	for _, disk := range []string{"system", "data", "scratch", "cache"} {
		var claim corev1.PersistentVolumeClaim
		if getObject(t, &claim, ns, name+"-"+disk) {
			uids[disk] = claim.UID
		}
	}
	return uids
}

// waitUntilSafe waits for the state a Retain disk is safe in: Running, and
// the imported disk's claim detached from its DataVolume.
func waitUntilSafe(t *testing.T, ns, name string) {
	t.Helper()
	waitForPhase(t, ns, name, vmv1alpha1.PhaseRunning)
	observe.Eventually(t, 30*time.Second, "retained import detached", func() (bool, string) {
		var claim corev1.PersistentVolumeClaim
		if !getObject(t, &claim, ns, name+"-system") {
			return false, "no claim yet"
		}
		detached := claim.Annotations[vmv1alpha1.AnnotationImportedFrom] != "" && metav1.GetControllerOf(&claim) == nil
		return detached && !getObject(t, &cdiv1.DataVolume{}, ns, name+"-system"), fmt.Sprintf("claim owners %v", claim.OwnerReferences)
	})
}

// TestRetainedDisksSurviveEveryWayOfDeleting deletes a profile in each way a
// user, a tool or the garbage collector can, with the real garbage
// collector running: the Retain disks survive and a re-created profile
// adopts them; the Delete disks, the VM, the attachment and the cloud-init
// go, except after an orphan deletion, which keeps every child (the VM
// running, never replaced) for the re-created profile to adopt.
func TestRetainedDisksSurviveEveryWayOfDeleting(t *testing.T) {
	ways := []struct {
		name string
		// holds: the profile keeps another tool's finalizer into the deletion.
		holds bool
		// orphans: the deletion asks to keep every child.
		orphans bool
		delete  func(t *testing.T, ns, name string)
	}{
		{"background deletion", false, false, func(t *testing.T, ns, name string) { deleteProfile(t, ns, name, metav1.DeletePropagationBackground) }},
		{"foreground deletion", false, false, func(t *testing.T, ns, name string) { deleteProfile(t, ns, name, metav1.DeletePropagationForeground) }},
		{"orphan deletion", false, true, func(t *testing.T, ns, name string) { deleteProfile(t, ns, name, metav1.DeletePropagationOrphan) }},
		{"finalizer stripped while the controller is stopped", true, false, func(t *testing.T, ns, name string) {
			restart := withControllerStopped(t)
			deleteProfile(t, ns, name, metav1.DeletePropagationBackground)
			releaseHold(t, getProfile(t, ns, name)) // the stuck deletion is "fixed" by hand
			// The garbage collector acts alone; only then does the controller come back.
			waitForCollection(t, ns, name)
			restart()
		}},
		{"kubectl delete all", false, false, func(t *testing.T, ns, _ string) {
			out, err := exec.Command("kubectl", "--kubeconfig", cluster.Kubeconfig, "delete", "all", "--all", "-n", ns, "--wait=false").CombinedOutput()
			if err != nil {
				t.Fatalf("kubectl delete all: %v\n%s", err, out)
			}
			t.Logf("kubectl delete all:\n%s", out)
		}},
	}
	for _, way := range ways {
		t.Run(way.name, func(t *testing.T) {
			ns := newNamespace(t)
			p := fourDisks("keep", ns)
			p.Finalizers = []string{holdFinalizer} // someone else's finalizer, as a GitOps tool adds
			create(t, p)
			waitUntilSafe(t, ns, "keep")
			before := claimUIDs(t, ns, "keep")
			if len(before) != 4 {
				t.Fatalf("claims before: %v", before)
			}
			children := childUIDs(t, ns, "keep")
			if !way.holds {
				releaseHold(t, getProfile(t, ns, "keep"))
			}

			way.delete(t, ns, "keep")
			if way.orphans {
				expectKept(t, ns, "keep", children)
			} else {
				waitForCollection(t, ns, "keep")
			}
			after := claimUIDs(t, ns, "keep")
			t.Logf("after %s: kept %v", way.name, after)
			for _, disk := range []string{"system", "data"} {
				if after[disk] != before[disk] {
					t.Errorf("Retain disk %s lost: %v before, %v after", disk, before[disk], after[disk])
				}
			}

			create(t, fourDisks("keep", ns))
			recreated := waitForPhase(t, ns, "keep", vmv1alpha1.PhaseRunning)
			again := claimUIDs(t, ns, "keep")
			for _, disk := range []string{"system", "data"} {
				if again[disk] != before[disk] {
					t.Errorf("re-created profile did not adopt %s: %v, want %v", disk, again[disk], before[disk])
				}
			}
			expectEvent(t, ns, "keep", vmv1alpha1.EventAdopted)
			if way.orphans {
				expectAdopted(t, ns, "keep", recreated.UID, children)
				// Adopted means owned again: deleting the profile now
				// takes what goes with it, as for any profile.
				deleteProfile(t, ns, "keep", metav1.DeletePropagationBackground)
				waitForCollection(t, ns, "keep")
				return
			}
			for _, disk := range []string{"scratch", "cache"} {
				if again[disk] == "" || again[disk] == before[disk] {
					t.Errorf("Delete disk %s: %v before, %v after re-creation (want a new one)", disk, before[disk], again[disk])
				}
			}
		})
	}
}

// child names one object made for a profile, for UID comparisons.
type child struct {
	what string
	obj  func() client.Object
	name string
}

// childrenOf are the objects made for fourDisks(name) that an orphan
// deletion keeps: the VM and its running instance, the attachment, every
// claim (Retain and Delete) and the Delete image disk's DataVolume.
func childrenOf(name string) []child {
	children := []child{
		{"VM", func() client.Object { return &kubevirtv1.VirtualMachine{} }, name + "-vm"},
		{"VM instance", func() client.Object { return &kubevirtv1.VirtualMachineInstance{} }, name + "-vm"},
		{"attachment", func() client.Object { return &nadv1.NetworkAttachmentDefinition{} }, name + "-lan"},
		{"cache DataVolume", func() client.Object { return &cdiv1.DataVolume{} }, name + "-cache"},
	}
	for _, disk := range []string{"system", "data", "scratch", "cache"} {
		children = append(children, child{disk + " claim", func() client.Object { return &corev1.PersistentVolumeClaim{} }, name + "-" + disk})
	}
	return children
}

// profileOwned are the children of childrenOf the profile owns (the VM
// instance is its VM's, the cache claim its DataVolume's, Retain claims
// nobody's).
func profileOwned() []string {
	return []string{"VM", "attachment", "cache DataVolume", "scratch claim"}
}

// childUIDs reads the UID of each of childrenOf(name); it fails the test
// if one is missing.
func childUIDs(t *testing.T, ns, name string) map[string]types.UID {
	t.Helper()
	uids := map[string]types.UID{}
	for _, c := range childrenOf(name) {
		obj := c.obj()
		if !getObject(t, obj, ns, c.name) {
			t.Fatalf("%s %s missing before the deletion", c.what, c.name)
		}
		uids[c.what] = obj.GetUID()
	}
	return uids
}

// keptSince lists the children that are gone or replaced since want was
// read, and gives each kept child's controller owner UID.
func keptSince(t *testing.T, ns, name string, want map[string]types.UID) (lost []string, owners map[string]types.UID) {
	t.Helper()
	owners = map[string]types.UID{}
	for _, c := range childrenOf(name) {
		obj := c.obj()
		if !getObject(t, obj, ns, c.name) || obj.GetUID() != want[c.what] {
			lost = append(lost, c.what)
			continue
		}
		if ref := metav1.GetControllerOf(obj); ref != nil {
			owners[c.what] = ref.UID
		}
	}
	return lost, owners
}

// expectKept waits for the profile to be gone and its children left without
// owner by the garbage collector, then watches them for orphanKeepTime: not
// one may be deleted or replaced (the VM instance is the running guest).
func expectKept(t *testing.T, ns, name string, want map[string]types.UID) {
	t.Helper()
	observe.Eventually(t, 60*time.Second, "profile gone, children left without owner", func() (bool, string) {
		if getObject(t, &vmv1alpha1.VirtualMachineProfile{}, ns, name) {
			return false, "profile still there"
		}
		lost, owners := keptSince(t, ns, name, want)
		var owned []string
		for _, what := range profileOwned() {
			if owners[what] != "" {
				owned = append(owned, what)
			}
		}
		return len(owned) == 0 || len(lost) > 0, fmt.Sprintf("still owned: %v", owned)
	})
	for deadline := time.Now().Add(orphanKeepTime); time.Now().Before(deadline); time.Sleep(250 * time.Millisecond) {
		if lost, _ := keptSince(t, ns, name, want); len(lost) > 0 {
			t.Fatalf("orphan deletion lost %v (deleted or replaced)", lost)
		}
	}
	t.Logf("orphan deletion kept all %d children for %s", len(want), orphanKeepTime)
}

// orphanKeepTime is how long children left by an orphan deletion are
// watched: the controller reconciles the gone profile's name within a
// second of the garbage collector's patches (it used to delete them then).
const orphanKeepTime = 5 * time.Second

// expectAdopted waits until the re-created profile (uid) controls every
// child an orphan deletion kept, and checks that each is the very object
// kept, the VM instance included: adoption did not restart the guest.
func expectAdopted(t *testing.T, ns, name string, uid types.UID, want map[string]types.UID) {
	t.Helper()
	observe.Eventually(t, 30*time.Second, "kept children adopted, none replaced", func() (bool, string) {
		lost, owners := keptSince(t, ns, name, want)
		if len(lost) > 0 {
			t.Fatalf("after re-creation, lost or replaced: %v", lost)
		}
		var notYet []string
		for _, what := range profileOwned() {
			if owners[what] != uid {
				notYet = append(notYet, what)
			}
		}
		return len(notYet) == 0, fmt.Sprintf("not yet owned by the new profile: %v", notYet)
	})
}

// holdFinalizer stands for a finalizer another tool put on a profile.
const holdFinalizer = "test.vm.example.com/hold"

// releaseHold removes holdFinalizer, as its tool would when done.
func releaseHold(t *testing.T, p *vmv1alpha1.VirtualMachineProfile) {
	t.Helper()
	patch := client.MergeFrom(p.DeepCopy())
	controllerutil.RemoveFinalizer(p, holdFinalizer)
	if err := cluster.Client.Patch(context.Background(), p, patch); err != nil {
		t.Fatal(err)
	}
}

func deleteProfile(t *testing.T, ns, name string, propagation metav1.DeletionPropagation) {
	t.Helper()
	p := &vmv1alpha1.VirtualMachineProfile{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	if err := cluster.Client.Delete(context.Background(), p, client.PropagationPolicy(propagation)); err != nil {
		t.Fatalf("delete profile (%s): %v", propagation, err)
	}
}

// waitForCollection waits until the profile and everything that should go
// with it are gone: VM, attachment, cloud-init, the Delete disks (claims
// and DataVolumes).
func waitForCollection(t *testing.T, ns, name string) {
	t.Helper()
	observe.Eventually(t, 60*time.Second, "profile and its disposable children gone", func() (bool, string) {
		left := map[string]bool{
			"profile":           getObject(t, &vmv1alpha1.VirtualMachineProfile{}, ns, name),
			"vm":                getObject(t, &kubevirtv1.VirtualMachine{}, ns, name+"-vm"),
			"nad":               getObject(t, &nadv1.NetworkAttachmentDefinition{}, ns, name+"-lan"),
			"cloud-init":        getObject(t, &corev1.Secret{}, ns, name+"-cloudinit"),
			"scratch claim":     getObject(t, &corev1.PersistentVolumeClaim{}, ns, name+"-scratch"),
			"cache claim":       getObject(t, &corev1.PersistentVolumeClaim{}, ns, name+"-cache"),
			"cache DataVolume":  getObject(t, &cdiv1.DataVolume{}, ns, name+"-cache"),
			"system DataVolume": getObject(t, &cdiv1.DataVolume{}, ns, name+"-system"),
		}
		var still []string
		for what, there := range left {
			if there {
				still = append(still, what)
			}
		}
		return len(still) == 0, fmt.Sprintf("still there: %v", still)
	})
}

// TestDiskOwnedByAnEarlierVersionIsReleased: volumes made by earlier
// versions carry an owner reference whatever their policy, and profiles
// carry a finalizer. The next reconcile drops both; a deletion behind the
// stopped controller's back then keeps the disk.
func TestDiskOwnedByAnEarlierVersionIsReleased(t *testing.T) {
	ns := newNamespace(t)
	restart := withControllerStopped(t)
	old := profile("legacy", ns, withDisk("data", "5Gi", "huamei-sc-hdd", ""))
	old.Finalizers = []string{vmv1alpha1.FinalizerLegacyProfile}
	create(t, old)
	claim := desired.PVC(old, &old.Spec.Disks[0], resource.MustParse("5Gi"))
	claim.Labels = map[string]string{vmv1alpha1.LabelProfile: "legacy", vmv1alpha1.LabelManagedBy: vmv1alpha1.ManagedByValue, vmv1alpha1.LabelDisk: "data"}
	claim.Annotations = nil
	claim.OwnerReferences = []metav1.OwnerReference{desired.OwnerReference(old)}
	create(t, claim)
	restart()

	observe.Eventually(t, 30*time.Second, "claim released and finalizer dropped", func() (bool, string) {
		var c corev1.PersistentVolumeClaim
		getObject(t, &c, ns, "legacy-data")
		p := getProfile(t, ns, "legacy")
		return len(c.OwnerReferences) == 0 && c.Labels[vmv1alpha1.LabelRetainPolicy] == "Retain" && len(p.Finalizers) == 0,
			fmt.Sprintf("owners %v labels %v finalizers %v", c.OwnerReferences, c.Labels, p.Finalizers)
	})
	expectEvent(t, ns, "legacy", vmv1alpha1.EventReleased)

	withControllerStopped(t)
	deleteProfile(t, ns, "legacy", metav1.DeletePropagationForeground)
	observe.Eventually(t, 30*time.Second, "profile gone", func() (bool, string) {
		return !getObject(t, &vmv1alpha1.VirtualMachineProfile{}, ns, "legacy"), "profile still there"
	})
	time.Sleep(3 * time.Second) // the garbage collector's turn
	var kept corev1.PersistentVolumeClaim
	if !getObject(t, &kept, ns, "legacy-data") || kept.UID != claim.UID {
		t.Fatal("the released claim was deleted")
	}
}
