package integration

import (
	"context"
	"os"
	"testing"
	"time"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kubevirtv1 "kubevirt.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
	"github.com/jianfenliu/vmoperator/test/observe"
)

// quietPeriod is how long a converged profile must cause no write: at least
// 30 s; VMOP_QUIET_PERIOD (a Go duration) may lengthen it.
func quietPeriod(t *testing.T) time.Duration {
	value := os.Getenv("VMOP_QUIET_PERIOD")
	if value == "" {
		return 30 * time.Second
	}
	d, err := time.ParseDuration(value)
	if err != nil {
		t.Fatalf("VMOP_QUIET_PERIOD: %v", err)
	}
	return max(d, 30*time.Second)
}

// resourceVersions reads the resourceVersion of the seed profile and every child.
func resourceVersions(t *testing.T, ns string) map[string]string {
	t.Helper()
	versions := map[string]string{}
	for _, o := range []struct {
		kind string
		obj  client.Object
		name string
	}{
		{"profile", &vmv1alpha1.VirtualMachineProfile{}, "web-vm-01"},
		{"vm", &kubevirtv1.VirtualMachine{}, "web-vm-01-vm"},
		{"vmi", &kubevirtv1.VirtualMachineInstance{}, "web-vm-01-vm"},
		{"nad", &nadv1.NetworkAttachmentDefinition{}, "web-vm-01-business"},
		{"pvc", &corev1.PersistentVolumeClaim{}, "web-vm-01-system"},
		{"pvc", &corev1.PersistentVolumeClaim{}, "web-vm-01-data"},
	} {
		if !getObject(t, o.obj, ns, o.name) {
			t.Fatalf("%s %s missing", o.kind, o.name)
		}
		versions[o.kind+"/"+o.name] = o.obj.GetResourceVersion()
	}
	return versions
}

func eventCount(t *testing.T, ns string) int {
	t.Helper()
	var events eventsv1.EventList
	if err := cluster.Client.List(context.Background(), &events, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	return len(events.Items)
}

// TestConvergedProfileCausesNoWrites measures what the seed's full example
// costs the controller in API writes from creation to Running, then checks
// that once converged neither the profile nor any child changes, and the
// controller sends no request that writes, for the quiet period.
func TestConvergedProfileCausesNoWrites(t *testing.T) {
	ns := newNamespace(t)
	create(t, &nadv1.NetworkAttachmentDefinition{
		ObjectMeta: metav1.ObjectMeta{Name: "mgmt-net", Namespace: ns},
		Spec:       nadv1.NetworkAttachmentDefinitionSpec{Config: `{"cniVersion":"0.3.1","type":"bridge","bridge":"br-mgmt"}`},
	})
	create(t, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "web-vm-ssh", Namespace: ns}, StringData: map[string]string{"key": "ssh-ed25519 AAAA test"}})
	// Start counting once the startup labelling of the nodes is done.
	observe.Eventually(t, 30*time.Second, "nodes labelled", func() (bool, string) {
		for _, name := range nodeNames {
			if nodeLabels(t, name)[vmv1alpha1.LabelReporting] != "true" {
				return false, name + " not labelled yet"
			}
		}
		return true, ""
	})
	before := controllerWrites.snapshot()
	apiserverBefore := apiserverWrites(t)
	start := time.Now()
	create(t, observe.Sample(t, "seed-web-vm-01.yaml", ns))
	waitUntilImported(t, ns, "web-vm-01-system")
	waitForPhase(t, ns, "web-vm-01", vmv1alpha1.PhaseRunning)
	total, breakdown := controllerWrites.since(before)
	t.Logf("creation to Running: %v, controller writes: %d (%s)", time.Since(start).Round(time.Millisecond), total, breakdown)
	all, allBreakdown := writesSince(t, apiserverBefore)
	t.Logf("all writes the apiserver served meanwhile (controller, simulator, test): %.0f (%s)", all, allBreakdown)

	// Let the last status write and its echo settle before the quiet period.
	time.Sleep(2 * time.Second)
	versions, events := resourceVersions(t, ns), eventCount(t, ns)
	quietStart := controllerWrites.snapshot()
	quiet := quietPeriod(t)
	time.Sleep(quiet)
	after := resourceVersions(t, ns)
	for key, version := range versions {
		if after[key] != version {
			t.Errorf("%s changed during the quiet period: resourceVersion %s → %s", key, version, after[key])
		}
	}
	if n := eventCount(t, ns); n != events {
		t.Errorf("%d event(s) recorded during the quiet period", n-events)
	}
	// Namespaces earlier tests deleted may still be torn down meanwhile:
	// the controller's work there is no write at rest. Everywhere else,
	// cluster-scoped objects included, it must be silent.
	if n, what := controllerWrites.sinceIn(quietStart, func(namespace string) bool { return !beingDeleted(t, namespace) }); n != 0 {
		t.Errorf("controller wrote %d time(s) during the quiet period: %s", n, what)
	}
	if n, what := controllerWrites.sinceIn(quietStart, func(namespace string) bool { return beingDeleted(t, namespace) }); n != 0 {
		t.Logf("not counted: %d write(s) in namespaces being deleted (%s)", n, what)
	}
	t.Logf("quiet period %v: %d objects unchanged, 0 controller writes", quiet, len(versions))
}

// waitUntilImported waits until a retained imported disk's claim stands
// alone (its DataVolume removed), the last step of a disk's setup.
func waitUntilImported(t *testing.T, ns, claim string) {
	t.Helper()
	observe.Eventually(t, 30*time.Second, claim+" imported", func() (bool, string) {
		var c corev1.PersistentVolumeClaim
		return getObject(t, &c, ns, claim) && c.Annotations[vmv1alpha1.AnnotationImportedFrom] != "", "not yet"
	})
}

// beingDeleted says whether namespace is gone or being deleted ("", the
// cluster scope, never is).
func beingDeleted(t *testing.T, namespace string) bool {
	t.Helper()
	if namespace == "" {
		return false
	}
	var n corev1.Namespace
	err := cluster.Client.Get(context.Background(), client.ObjectKey{Name: namespace}, &n)
	if apierrors.IsNotFound(err) {
		return true
	}
	if err != nil {
		t.Fatalf("read namespace %s: %v", namespace, err)
	}
	return !n.DeletionTimestamp.IsZero()
}
