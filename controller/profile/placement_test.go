package profile

import (
	"strings"
	"testing"

	kubevirtv1 "kubevirt.io/api/core/v1"

	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
	"github.com/jianfenliu/vmoperator/controller/status"
)

func TestExplainRunningExclusion(t *testing.T) {
	wait := func() status.Check {
		return status.Wait(vmv1alpha1.ReasonNoEligibleNodes, "no node can host the VM; status.placement says why for each")
	}
	placement := &vmv1alpha1.PlacementStatus{Excluded: []vmv1alpha1.NodeExclusion{{Node: "node-c", Reason: "bridge br-lan is down"}}}
	on := func(node string) *kubevirtv1.VirtualMachineInstance {
		return &kubevirtv1.VirtualMachineInstance{Status: kubevirtv1.VirtualMachineInstanceStatus{NodeName: node}}
	}
	for name, tc := range map[string]struct {
		vmi  *kubevirtv1.VirtualMachineInstance
		want string
	}{
		"runs on the excluded node": {on("node-c"), "the VM keeps running on node node-c, which no longer qualifies (bridge br-lan is down)"},
		"runs elsewhere":            {on("node-a"), "no node can host the VM"},
		"not running":               {nil, "no node can host the VM"},
		"not scheduled yet":         {on(""), "no node can host the VM"},
	} {
		observed := &status.Observed{VMI: tc.vmi, Placement: placement, Blockers: []status.Check{wait()}}
		explainRunningExclusion(observed)
		if got := observed.Blockers[0].Message; !strings.HasPrefix(got, tc.want) {
			t.Errorf("%s: %q, want it to start with %q", name, got, tc.want)
		}
	}
}
