package integration

import (
	"context"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
	"github.com/jianfenliu/vmoperator/test/observe"
)

// TestLongAgentReasonIsCutInProfileStatus: the longest words agents can
// write (a kvm.reason at its bound, in two-byte characters, and a failed
// probe's condition message at metav1.Condition's 32,768) reach a
// profile's status cut to 256 characters with an ellipsis, and the status
// writes keep working: a new long reason replaces the old one.
// (A test in this package cannot write a longer string: the CRD refuses
// it, TestNodeCapabilityRefusesAMegabyteString in test/validation.)
func TestLongAgentReasonIsCutInProfileStatus(t *testing.T) {
	ctx := context.Background()
	withoutKVM := fullCapability()
	withoutKVM.KVM = &vmv1alpha1.KVMStatus{Reason: strings.Repeat("ö", vmv1alpha1.MaxAgentMessageLength)}
	probeFailed := func(letter string) vmv1alpha1.NodeCapabilityStatus {
		c := fullCapability()
		c.Conditions = []metav1.Condition{{Type: vmv1alpha1.ConditionLinksProbed, Status: metav1.ConditionFalse,
			Reason: vmv1alpha1.ReasonProbeFailed, Message: strings.Repeat(letter, 32768), LastTransitionTime: metav1.Now()}}
		return c
	}
	zoneNodes(t, "reason-test", map[string]vmv1alpha1.NodeCapabilityStatus{"reason-a": withoutKVM, "reason-b": probeFailed("x")})
	ns := newNamespace(t)
	create(t, profile("cut", ns, inZone("reason-test")))
	p := waitForCondition(t, ns, "cut", vmv1alpha1.ConditionScheduled, metav1.ConditionFalse, vmv1alpha1.ReasonNoEligibleNodes)
	checkCut(t, p, "reason-a", "KVM unavailable: ööö")
	checkCut(t, p, "reason-b", "the agent's link probe failed: xxx")
	scheduled := meta.FindStatusCondition(p.Status.Conditions, vmv1alpha1.ConditionScheduled)
	t.Logf("exclusion reasons of 1,041 and 32,799 characters cut to %d; Scheduled message %d characters",
		vmv1alpha1.MaxExclusionReasonLength, utf8.RuneCountInString(scheduled.Message))

	// A probe condition that changes wakes the profile (its reason
	// text alone would not: only what a node offers does).
	if err := report(ctx, cluster.Client, "reason-b", probeFailed("y")); err != nil {
		t.Fatal(err)
	}
	observe.Eventually(t, 30*time.Second, "the new reason written", func() (bool, string) {
		p = getProfile(t, ns, "cut")
		return strings.HasPrefix(observe.Exclusion(p, "reason-b"), "the agent's link probe failed: yyy"), observe.Describe(p)
	})
	checkCut(t, p, "reason-b", "the agent's link probe failed: yyy")
}

// checkCut: the node's exclusion reason is cut to its bound, keeps its
// beginning and ends with the ellipsis.
func checkCut(t *testing.T, p *vmv1alpha1.VirtualMachineProfile, node, prefix string) {
	t.Helper()
	reason := observe.Exclusion(p, node)
	if n := utf8.RuneCountInString(reason); n != vmv1alpha1.MaxExclusionReasonLength || !strings.HasPrefix(reason, prefix) ||
		!strings.HasSuffix(reason, vmv1alpha1.Ellipsis) {
		t.Errorf("%s: reason of %d characters (%d bytes), want %d starting %q and ending %q: %.80q",
			node, n, len(reason), vmv1alpha1.MaxExclusionReasonLength, prefix, vmv1alpha1.Ellipsis, reason)
	}
}

// TestCapabilityFlipsWakeBoundedReconciles flips one node's KVM every
// 100 ms for 5 s while 100 profiles need KVM (and select no node, so that
// each wake is one reconcile that writes nothing), and counts the profile
// controller's reconciles (controller_runtime_reconcile_total). With the
// per-node wake limit, every profile is woken at most flips/interval + 2
// times: the bound asserted, plus what the same span at rest reconciles.
// The same flips without the limit are measured too, for comparison.
func TestCapabilityFlipsWakeBoundedReconciles(t *testing.T) {
	const (
		profiles  = 100
		flipEvery = 100 * time.Millisecond
		flipFor   = 5 * time.Second
	)
	ctx := context.Background()
	zoneNodes(t, "flip-test", map[string]vmv1alpha1.NodeCapabilityStatus{"flip-a": fullCapability()})
	ns := newNamespace(t)
	for i := range profiles {
		create(t, profile(fmt.Sprintf("flip-%03d", i), ns, inZone("flip-nowhere")))
	}
	observe.Eventually(t, 60*time.Second, "every profile's status written", func() (bool, string) {
		var list vmv1alpha1.VirtualMachineProfileList
		if err := cluster.Client.List(ctx, &list, client.InNamespace(ns)); err != nil {
			return false, err.Error()
		}
		written := 0
		for i := range list.Items {
			if c := meta.FindStatusCondition(list.Items[i].Status.Conditions, vmv1alpha1.ConditionScheduled); c != nil && c.Reason == vmv1alpha1.ReasonNoEligibleNodes {
				written++
			}
		}
		return written == profiles, fmt.Sprintf("%d of %d", written, profiles)
	})

	interval := capabilityWakeInterval
	settle(t, interval)
	atRest := countReconciles(t, flipFor)
	reconciles, flipped, flips := flipKVM(t, "flip-a", flipFor, flipEvery, interval)
	var all vmv1alpha1.VirtualMachineProfileList
	if err := cluster.Client.List(ctx, &all); err != nil {
		t.Fatal(err)
	}
	wakes := int(math.Ceil(flipped.Seconds()/interval.Seconds())) + 2
	bound := len(all.Items)*wakes + atRest
	t.Logf("wake interval %v: %d KVM flips in %v woke %d profile reconciles (%.0f/s); bound %d profiles × %d wakes + %d at rest = %d",
		interval, flips, flipped.Round(time.Millisecond), reconciles, float64(reconciles)/flipped.Seconds(), len(all.Items), wakes, atRest, bound)
	if reconciles > bound {
		t.Errorf("%d reconciles, over the bound of %d", reconciles, bound)
	}

	// The same flips with every change re-queued at once (interval 0).
	stopController()
	capabilityWakeInterval = 0
	t.Cleanup(func() {
		stopController()
		capabilityWakeInterval = interval
		if err := startController(); err != nil {
			t.Fatal(err)
		}
	})
	if err := startController(); err != nil {
		t.Fatal(err)
	}
	settle(t, time.Second)
	unlimited, flipped, flips := flipKVM(t, "flip-a", flipFor, flipEvery, 0)
	t.Logf("no wake limit: %d KVM flips in %v woke %d profile reconciles (%.0f/s)",
		flips, flipped.Round(time.Millisecond), unlimited, float64(unlimited)/flipped.Seconds())
	deleteAllProfiles(t, ns)
}

// deleteAllProfiles deletes the namespace's profiles and waits until they
// are gone: tests after this one count every write of the controller, and
// a hundred profiles collected beside them would be counted too.
func deleteAllProfiles(t *testing.T, ns string) {
	t.Helper()
	ctx := context.Background()
	if err := cluster.Client.DeleteAllOf(ctx, &vmv1alpha1.VirtualMachineProfile{}, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	observe.Eventually(t, 60*time.Second, "profiles of "+ns+" gone", func() (bool, string) {
		var list vmv1alpha1.VirtualMachineProfileList
		if err := cluster.Client.List(ctx, &list, client.InNamespace(ns)); err != nil {
			return false, err.Error()
		}
		return len(list.Items) == 0, fmt.Sprintf("%d left", len(list.Items))
	})
	settle(t, time.Second)
}

// flipKVM toggles the node's kvm.available every period for span, as a
// flapping agent would, and returns the profile reconciles counted from
// the first flip until the controller is quiet again, how long the flips
// took, and how many there were.
func flipKVM(t *testing.T, node string, span, period, interval time.Duration) (reconciles int, flipped time.Duration, flips int) {
	t.Helper()
	before := profileReconciles(t)
	start := time.Now()
	ticker := time.NewTicker(period)
	defer ticker.Stop()
	for time.Since(start) < span {
		status := fullCapability()
		status.KVM = &vmv1alpha1.KVMStatus{Available: flips%2 == 1, APIVersion: 12}
		if !status.KVM.Available {
			status.KVM.Reason = "open /dev/kvm: no such file or directory"
		}
		if err := report(context.Background(), cluster.Client, node, status); err != nil {
			t.Fatal(err)
		}
		flips++
		<-ticker.C
	}
	flipped = time.Since(start)
	if err := report(context.Background(), cluster.Client, node, fullCapability()); err != nil {
		t.Fatal(err)
	}
	settle(t, interval)
	return int(profileReconciles(t) - before), flipped, flips
}

// settle waits until the profile controller has not reconciled for two
// seconds and at least one wake interval has passed (a trailing wake is
// delivered by then).
func settle(t *testing.T, interval time.Duration) {
	t.Helper()
	time.Sleep(interval)
	last, quietSince := profileReconciles(t), time.Now()
	observe.Eventually(t, 120*time.Second, "the profile controller quiet for 2 s", func() (bool, string) {
		if now := profileReconciles(t); now != last {
			last, quietSince = now, time.Now()
		}
		return time.Since(quietSince) >= 2*time.Second, fmt.Sprintf("%.0f reconciles so far", last)
	})
}

// countReconciles is how many profile reconciles happen in span.
func countReconciles(t *testing.T, span time.Duration) int {
	t.Helper()
	before := profileReconciles(t)
	time.Sleep(span)
	return int(profileReconciles(t) - before)
}

// profileReconciles reads controller-runtime's reconcile counter of the
// profile controller (every result) from its process-wide registry.
func profileReconciles(t *testing.T) float64 {
	t.Helper()
	families, err := ctrlmetrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var total float64
	var controllers []string
	for _, family := range families {
		if family.GetName() != "controller_runtime_reconcile_total" {
			continue
		}
		for _, metric := range family.GetMetric() {
			for _, label := range metric.GetLabel() {
				if label.GetName() != "controller" {
					continue
				}
				controllers = append(controllers, label.GetValue())
				if label.GetValue() == "virtualmachineprofile" {
					total += metric.GetCounter().GetValue()
				}
			}
		}
	}
	if !strings.Contains(strings.Join(controllers, " "), "virtualmachineprofile") {
		t.Fatalf("no reconcile counter of the profile controller among %v", controllers)
	}
	return total
}
