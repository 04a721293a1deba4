//go:build integration && kernelvm

package verify_test

import (
	"testing"

	"github.com/jianfenliu/vmoperator/agent/probe"
	"github.com/jianfenliu/vmoperator/agent/verify"
	"github.com/jianfenliu/vmoperator/internal/testing/netnstest"
)

// TestKernelPolicies verifies VLAN and bond policies against real kernel
// links, then breaks each and checks the verdict says how.
func TestKernelPolicies(t *testing.T) {
	ns := netnstest.New(t)
	ns.Dummy(t, "eth0")
	ns.Dummy(t, "eth1")
	ns.ActiveBackupBond(t, "bond0", "eth0", "eth1")
	ns.VLAN(t, "bond0.100", "bond0", 100)
	const vlan = `{"interfaces":[{"name":"bond0.100","type":"vlan","state":"up","vlan":{"base-iface":"bond0","id":100}}]}`
	const bond = `{"interfaces":[{"name":"bond0","type":"bond","state":"up","link-aggregation":{"mode":"active-backup","port":["eth0","eth1"]}}]}`
	source, err := probe.NewNetlink(ns.NS)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(source.Close)
	snap := func() probe.Snapshot {
		s, err := probe.NewLinks(source, "").ProbeLinks()
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	for name, raw := range map[string]string{"vlan": vlan, "bond": bond} {
		if v := verify.Compare(name, "Available", []byte(raw), verify.Kernel{Links: snap()}); !v.Verified {
			t.Errorf("%s policy unverified on a matching kernel: %+v", name, v)
		}
	}
	ns.Delete(t, "bond0.100")
	ns.SetDown(t, "eth1")
	if err := ns.Handle.LinkSetNoMaster(ns.Link(t, "eth1")); err != nil {
		t.Fatalf("detach eth1 from its bond: %v", err)
	}
	cases := map[string]string{
		vlan: "nmstate reports Available but VLAN bond0.100 does not exist",
		bond: "nmstate reports Available but eth1 is not a member of bond bond0",
	}
	for raw, want := range cases {
		if v := verify.Compare("p", "Available", []byte(raw), verify.Kernel{Links: snap()}); v.Verified || v.Message != want {
			t.Errorf("got %+v, want unverified with %q", v, want)
		}
	}
}
