//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	kubevirtv1 "kubevirt.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
	"github.com/jianfenliu/vmoperator/test/observe"
	"github.com/jianfenliu/vmoperator/test/simulator"
)

// TestAutomaticRestart is the request's "automatic restart" scenario. A
// profile on br-lan (only node-c has it) runs; its instance then crashes
// (Failed) or its guest shuts down (Succeeded), as virt-handler reports
// it. Under each restartPolicy the profile offers, the VM runs again, on
// an eligible node, exactly when the policy says: Always after either,
// OnFailure after a crash only, Never (run once) after neither. The
// profile's status says what happened. It fails if the policy is not
// mapped to KubeVirt's run strategy (controller/desired) or the run
// strategy's restart is not played (test/simulator, as KubeVirt's vm.go).
func TestAutomaticRestart(t *testing.T) {
	cases := []struct {
		policy vmv1alpha1.RestartPolicy
		end    kubevirtv1.VirtualMachineInstancePhase
		runs   bool
		phase  vmv1alpha1.Phase
	}{
		{vmv1alpha1.RestartAlways, kubevirtv1.Failed, true, vmv1alpha1.PhaseRunning},
		{vmv1alpha1.RestartAlways, kubevirtv1.Succeeded, true, vmv1alpha1.PhaseRunning},
		{vmv1alpha1.RestartOnFailure, kubevirtv1.Failed, true, vmv1alpha1.PhaseRunning},
		{vmv1alpha1.RestartOnFailure, kubevirtv1.Succeeded, false, vmv1alpha1.PhaseStopped},
		{vmv1alpha1.RestartNever, kubevirtv1.Failed, false, vmv1alpha1.PhaseError},
		{vmv1alpha1.RestartNever, kubevirtv1.Succeeded, false, vmv1alpha1.PhaseStopped},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("%s/%s", tc.policy, tc.end), func(t *testing.T) {
			ctx := context.Background()
			ns := newNamespace(t)
			name := "ha-" + strings.ToLower(string(tc.policy))
			p := profile(name, ns, "br-lan", false)
			p.Spec.HighAvailability = &vmv1alpha1.HighAvailabilitySpec{RestartPolicy: tc.policy}
			create(t, p)
			p = waitForPhase(t, ns, name, vmv1alpha1.PhaseRunning)
			if p.Status.NodeName != "node-c" {
				t.Fatalf("%s on %s, want node-c (the only node with br-lan)", name, p.Status.NodeName)
			}
			key := client.ObjectKey{Namespace: ns, Name: name + "-vm"}
			var first kubevirtv1.VirtualMachineInstance
			if err := c().Get(ctx, key, &first); err != nil {
				t.Fatal(err)
			}
			ended := time.Now()
			if err := simulator.EndInstance(ctx, c(), key, tc.end); err != nil {
				t.Fatal(err)
			}
			var vmi kubevirtv1.VirtualMachineInstance
			observe.Eventually(t, time.Minute, fmt.Sprintf("%s %s after the instance %s", name, tc.phase, tc.end), func() (bool, string) {
				p = get(t, ns, name)
				err := c().Get(ctx, key, &vmi)
				again := err == nil && vmi.UID != first.UID && vmi.Status.Phase == kubevirtv1.Running
				return p.Status.Phase == tc.phase && again == tc.runs,
					fmt.Sprintf("%s; instance: err=%v new=%v phase=%s", observe.Describe(p), err, err == nil && vmi.UID != first.UID, vmi.Status.Phase)
			})
			if tc.runs {
				t.Logf("%s: instance %s → running again on %s in %v", name, tc.end, vmi.Status.NodeName, time.Since(ended).Round(time.Millisecond))
				if vmi.Status.NodeName != "node-c" || p.Status.NodeName != "node-c" || observe.Exclusion(p, "node-c") != "" {
					t.Fatalf("restarted on %s (profile says %s), want the eligible node-c: %s", vmi.Status.NodeName, p.Status.NodeName, observe.Describe(p))
				}
				return
			}
			// A VM its policy leaves down stays down.
			time.Sleep(3 * time.Second)
			p = get(t, ns, name)
			if err := c().Get(ctx, key, &vmi); err == nil && vmi.UID != first.UID {
				t.Fatalf("%s started a new instance after %s", tc.policy, tc.end)
			}
			if p.Status.Phase != tc.phase {
				t.Fatalf("phase moved on: %s", observe.Describe(p))
			}
		})
	}
}
