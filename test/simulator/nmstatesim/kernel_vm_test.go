//go:build kernelvm

package nmstatesim

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/jianfenliu/vmoperator/agent/probe"
	"github.com/jianfenliu/vmoperator/agent/verify"
	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
	"github.com/jianfenliu/vmoperator/controller/desired"
	"github.com/jianfenliu/vmoperator/internal/testing/netnstest"
)

// TestKernelStandInBuildsWhatTheOperatorAsksAndTheAgentAgrees takes the policies
// the operator writes for managed HostNetworks, applies them to a real
// kernel (Debian's, in the VM: VLAN filtering, bonds, 802.1Q), and runs the
// agent's verifier on what the kernel then shows: verified. The revert
// policy then removes what was built, and the verifier agrees again.
func TestKernelStandInBuildsWhatTheOperatorAsksAndTheAgentAgrees(t *testing.T) {
	cases := []struct {
		name string
		spec vmv1alpha1.HostNetworkSpec
	}{
		{"bridge trunk on a NIC", vmv1alpha1.HostNetworkSpec{Type: "bridge", BridgeName: "br-mgmt", Managed: true,
			Uplinks: []vmv1alpha1.Uplink{{Interface: "eth1"}}, AllowedVLANs: []vmv1alpha1.VLANRange{"100", "200-202"}, MTU: ptr.To[int32](9000)}},
		{"bridge on a bond", vmv1alpha1.HostNetworkSpec{Type: "bridge", BridgeName: "br-data", Managed: true,
			Uplinks: []vmv1alpha1.Uplink{{Bond: &vmv1alpha1.Bond{Name: "bond0", Mode: "active-backup", Ports: []string{"eth2", "eth3"}}}}}},
		{"macvlan sub-interfaces", vmv1alpha1.HostNetworkSpec{Type: "macvlan", Managed: true,
			Uplinks: []vmv1alpha1.Uplink{{Interface: "eth1"}}, AllowedVLANs: []vmv1alpha1.VLANRange{"310", "311"}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ns := netnstest.New(t)
			for _, nic := range []string{"eth1", "eth2", "eth3"} {
				ns.Dummy(t, nic)
			}
			h := &vmv1alpha1.HostNetwork{ObjectMeta: metav1.ObjectMeta{Name: "net"}, Spec: c.spec}
			state, err := desired.HostNetworkState(h, &h.Spec.Uplinks[0])
			if err != nil {
				t.Fatal(err)
			}
			node := Node{Name: "n", Links: ns.Handle}
			if err := apply(node, state.Raw); err != nil {
				t.Fatalf("apply: %v", err)
			}
			if v := verify.Compare("vmop-net", "Available", state.Raw, verify.Kernel{Links: snapshot(t, ns)}); !v.Verified {
				t.Fatalf("the agent does not verify what was built: %+v", v)
			}
			revert, err := desired.RevertState(state)
			if err != nil {
				t.Fatal(err)
			}
			if err := apply(node, revert.Raw); err != nil {
				t.Fatalf("revert: %v", err)
			}
			if v := verify.Compare("vmop-net", "Available", revert.Raw, verify.Kernel{Links: snapshot(t, ns)}); !v.Verified {
				t.Fatalf("the agent does not verify the revert: %+v", v)
			}
			for _, nic := range []string{"eth1", "eth2", "eth3"} {
				if _, err := ns.Handle.LinkByName(nic); err != nil {
					t.Errorf("the revert removed NIC %s", nic)
				}
			}
		})
	}
}

func snapshot(t *testing.T, ns *netnstest.Namespace) probe.Snapshot {
	t.Helper()
	source, err := probe.NewNetlink(ns.NS)
	if err != nil {
		t.Fatal(err)
	}
	defer source.Close()
	links := probe.NewLinks(source, "")
	s, err := links.ProbeLinks()
	if err != nil {
		t.Fatal(err)
	}
	vlans, err := links.ProbeBridgeVLANs(s)
	if err != nil {
		t.Fatal(err)
	}
	return s.WithVLANs(vlans)
}
