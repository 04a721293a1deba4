//go:build integration && kernelvm

package nmstatesim

import (
	"slices"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/jianfenliu/vmoperator/agent/verify"
	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
	"github.com/jianfenliu/vmoperator/controller/desired"
	"github.com/jianfenliu/vmoperator/internal/testing/netnstest"
)

// TestKernelTrunkKeepsTheDefaultPVIDAndVerifies builds the operator's trunk
// policy as NetworkManager does: the port keeps VLAN 1 (PVID, untagged)
// beside its trunk tags. The agent verifies it all the same; with the
// switch off the port carries exactly its tags, as the stand-in did.
func TestKernelTrunkKeepsTheDefaultPVIDAndVerifies(t *testing.T) {
	h := &vmv1alpha1.HostNetwork{ObjectMeta: metav1.ObjectMeta{Name: "net"}, Spec: vmv1alpha1.HostNetworkSpec{Type: "bridge",
		BridgeName: "br-mgmt", Managed: true, Uplinks: []vmv1alpha1.Uplink{{Interface: "eth1"}}, AllowedVLANs: []vmv1alpha1.VLANRange{"100", "200-202"}}}
	state, err := desired.HostNetworkState(h, &h.Spec.Uplinks[0])
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		f    Fidelity
		want []int
	}{
		{"NetworkManager", Upstream(), []int{1, 100, 200, 201, 202}},
		{"exact trunk", Fidelity{}, []int{100, 200, 201, 202}},
	} {
		t.Run(c.name, func(t *testing.T) {
			ns := netnstest.New(t)
			ns.Dummy(t, "eth1")
			if err := applyWith(Node{Name: "n", Links: ns.Handle}, c.f, state.Raw); err != nil {
				t.Fatalf("apply: %v", err)
			}
			snap := snapshot(t, ns)
			port := snap.ByName("eth1")
			if !slices.Equal(port.PortVLANs, c.want) {
				t.Fatalf("eth1 carries VLANs %v, want %v", port.PortVLANs, c.want)
			}
			if c.f.DefaultPVID && (port.PVID != 1 || snap.ByName("br-mgmt").DefaultPVID != 1) {
				t.Errorf("eth1's PVID is %d and the bridge's default PVID %d, want 1 and 1", port.PVID, snap.ByName("br-mgmt").DefaultPVID)
			}
			if v := verify.Compare("vmop-net", "Available", state.Raw, verify.Kernel{Links: snap}); !v.Verified {
				t.Fatalf("the agent does not verify the trunk: %+v", v)
			}
		})
	}
}

// TestKernelPortDefaultFiltersEveryBridge: a plain bridge's port, rendered
// with kubernetes-nmstate's default, carries 2-4094 and the default PVID;
// the bridge filters VLANs; the agent verifies the rendered state, which
// is what the enactment shows.
func TestKernelPortDefaultFiltersEveryBridge(t *testing.T) {
	h := &vmv1alpha1.HostNetwork{ObjectMeta: metav1.ObjectMeta{Name: "net"}, Spec: vmv1alpha1.HostNetworkSpec{Type: "bridge",
		BridgeName: "br-plain", Managed: true, Uplinks: []vmv1alpha1.Uplink{{Interface: "eth1"}}}}
	state, err := desired.HostNetworkState(h, &h.Spec.Uplinks[0])
	if err != nil {
		t.Fatal(err)
	}
	rendered, err := renderPortDefault(state.Raw)
	if err != nil {
		t.Fatal(err)
	}
	ns := netnstest.New(t)
	ns.Dummy(t, "eth1")
	if err := applyWith(Node{Name: "n", Links: ns.Handle}, Upstream(), rendered); err != nil {
		t.Fatalf("apply: %v", err)
	}
	snap := snapshot(t, ns)
	if !snap.ByName("br-plain").VLANFiltering {
		t.Error("br-plain does not filter VLANs")
	}
	if got := snap.ByName("eth1").PortVLANs; len(got) != 4094 || got[0] != 1 || got[4093] != 4094 {
		t.Errorf("eth1 carries %d VLANs, want 1-4094", len(got))
	}
	if v := verify.Compare("vmop-net", "Available", rendered, verify.Kernel{Links: snap}); !v.Verified {
		t.Fatalf("the agent does not verify the rendered state: %+v", v)
	}
}

// TestKernelCheckpointRemovesTheBridgeOfAFailedApply: an apply that fails
// on a missing port takes back the bridge it created and frees the port it
// had enslaved.
func TestKernelCheckpointRemovesTheBridgeOfAFailedApply(t *testing.T) {
	ns := netnstest.New(t)
	ns.Dummy(t, "eth1")
	raw := []byte(`{"interfaces":[{"name":"br-x","type":"linux-bridge","state":"up","bridge":{"port":[
	  {"name":"eth1","vlan":{"mode":"trunk","trunk-tags":[{"id":100}]}},{"name":"eth9"}]}}]}`)
	err := applyWith(Node{Name: "n", Links: ns.Handle}, Upstream(), raw)
	if err == nil || !strings.Contains(err.Error(), "rolled back to the checkpoint") {
		t.Fatalf("apply error %v, want a failure rolled back", err)
	}
	snap := snapshot(t, ns)
	if snap.ByName("br-x") != nil {
		t.Error("br-x is still there after the rollback")
	}
	if eth1 := snap.ByName("eth1"); eth1 == nil || eth1.Master != "" || !eth1.AdminUp {
		t.Errorf("eth1 after the rollback: %+v, want free and up as before", eth1)
	}
}
