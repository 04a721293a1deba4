package capability

import (
	"testing"

	"github.com/jianfenliu/vmoperator/agent/probe"
)

func TestRelevantLinks(t *testing.T) {
	snap := snapshot(
		link("lo", probe.KindDevice, loopback()),
		link("ens2f0", probe.KindDevice),
		link("eth0", probe.KindDevice, master("bond0")),
		link("bond0", probe.KindBond, master("br-mgmt")),
		link("br-mgmt", probe.KindBridge),
		link("bond0.100", probe.KindVLAN, master("br-100")),
		link("br-100", probe.KindBridge),
		link("vm-a-veth", probe.KindVeth, master("br-mgmt")),
		link("tap-vm-b", probe.KindTuntap, master("br-mgmt")),
		link("vxlan10", "vxlan", master("br-mgmt")),
		link("cni0-peer", probe.KindVeth),
		link("veth-up", probe.KindVeth),
	)
	got := map[string]string{}
	for _, rl := range RelevantLinks(snap, []string{"veth-up"}, []string{"ens2f0"}) {
		if _, dup := got[rl.Name]; dup {
			t.Errorf("%s listed twice", rl.Name)
		}
		got[rl.Name] = rl.Role
	}
	want := map[string]string{
		"ens2f0": RolePF, "eth0": RoleUplink, "bond0": RoleBond, "br-mgmt": RoleBridge,
		"bond0.100": RoleVLAN, "br-100": RoleBridge, "vxlan10": RoleBridgePort, "veth-up": RoleUplink,
	}
	if len(got) != len(want) {
		t.Errorf("got %v, want %v", got, want)
	}
	for name, role := range want {
		if got[name] != role {
			t.Errorf("%s: role %q, want %q", name, got[name], role)
		}
	}
}
