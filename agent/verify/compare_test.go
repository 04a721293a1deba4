package verify

import (
	"testing"

	"github.com/jianfenliu/vmoperator/agent/probe"
	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
)

func snap(links ...probe.Link) probe.Snapshot { return probe.Snapshot{Links: links} }

func ln(name, kind string, mod ...func(*probe.Link)) probe.Link {
	l := probe.Link{Name: name, Kind: kind, AdminUp: true, Carrier: true}
	for _, m := range mod {
		m(&l)
	}
	return l
}

func under(master string) func(*probe.Link) { return func(l *probe.Link) { l.Master = master } }
func adminDown(l *probe.Link)               { l.AdminUp = false }
func vlanOn(parent string, id int) func(*probe.Link) {
	return func(l *probe.Link) { l.Parent, l.VLANID = parent, id }
}
func mode(m string) func(*probe.Link) { return func(l *probe.Link) { l.BondMode = m } }
func mtu(n int) func(*probe.Link)     { return func(l *probe.Link) { l.MTU = n } }
func filtering(l *probe.Link)         { l.VLANFiltering = true }
func defaultPVID(id int) func(*probe.Link) {
	return func(l *probe.Link) { l.VLANFiltering, l.DefaultPVID = true, id }
}
func vlanRange(lo, hi int) []int {
	var ids []int
	for id := lo; id <= hi; id++ {
		ids = append(ids, id)
	}
	return ids
}
func trunk(ids ...int) func(*probe.Link) {
	return func(l *probe.Link) { l.PortVLANs = ids }
}

const trunkPolicy = `{"interfaces":[{"name":"br-mgmt","type":"linux-bridge","state":"up","bridge":{"port":[
  {"name":"eth1","vlan":{"mode":"trunk","trunk-tags":[{"id":100},{"id-range":{"min":200,"max":202}}]}}]}}]}`

// portDefaultPolicy is a bridge port as kubernetes-nmstate renders a port
// without vlan: into the enactment (pkg/bridge/bridge.go).
const portDefaultPolicy = `{"interfaces":[{"name":"br-mgmt","type":"linux-bridge","state":"up","bridge":{"port":[
  {"name":"eth1","vlan":{"mode":"trunk","trunk-tags":[{"id-range":{"min":2,"max":4094}}]}}]}}]}`

const bridgePolicy = `
interfaces:
- name: br-mgmt
  type: linux-bridge
  state: up
  bridge:
    options:
      stp:
        enabled: false
    port:
    - name: eth1
`

const vlanPolicy = `{"interfaces":[{"name":"eth1.100","type":"vlan","state":"up","vlan":{"base-iface":"eth1","id":100}}]}`

const bondPolicy = `
interfaces:
- name: bond0
  type: bond
  state: up
  link-aggregation:
    mode: active-backup
    port: [eth0, eth1]
`

func TestCompare(t *testing.T) {
	cases := []struct {
		name      string
		enactment string
		raw       string
		links     probe.Snapshot
		want      vmv1alpha1.PolicyVerification
	}{
		{
			name: "bridge with its port", enactment: "Available", raw: bridgePolicy,
			links: snap(ln("br-mgmt", probe.KindBridge), ln("eth1", probe.KindDevice, under("br-mgmt"))),
			want:  vmv1alpha1.PolicyVerification{Kernel: "bridge br-mgmt up, ports eth1", Verified: true},
		},
		{
			name: "nmstate says Available but the bridge is missing", enactment: "Available", raw: bridgePolicy,
			links: snap(ln("eth1", probe.KindDevice)),
			want: vmv1alpha1.PolicyVerification{Kernel: "bridge br-mgmt missing",
				Message: "nmstate reports Available but bridge br-mgmt does not exist"},
		},
		{
			name: "port not attached", enactment: "Available", raw: bridgePolicy,
			links: snap(ln("br-mgmt", probe.KindBridge), ln("eth1", probe.KindDevice)),
			want: vmv1alpha1.PolicyVerification{Kernel: "bridge br-mgmt up",
				Message: "nmstate reports Available but port eth1 is not attached to bridge br-mgmt"},
		},
		{
			name: "bridge down", enactment: "Available", raw: bridgePolicy,
			links: snap(ln("br-mgmt", probe.KindBridge, adminDown)),
			want: vmv1alpha1.PolicyVerification{Kernel: "bridge br-mgmt down",
				Message: "nmstate reports Available but bridge br-mgmt is down"},
		},
		{
			name: "name taken by another kind", enactment: "Failing", raw: bridgePolicy,
			links: snap(ln("br-mgmt", probe.KindVeth)),
			want: vmv1alpha1.PolicyVerification{Kernel: "bridge br-mgmt up",
				Message: "nmstate reports Failing but br-mgmt is a veth link, not a bridge"},
		},
		{
			name: "absent bridge that is gone", enactment: "Available",
			raw:   `{"interfaces":[{"name":"br-old","type":"linux-bridge","state":"absent"}]}`,
			links: snap(),
			want:  vmv1alpha1.PolicyVerification{Kernel: "bridge br-old absent", Verified: true},
		},
		{
			name: "VLAN matches", enactment: "Available", raw: vlanPolicy,
			links: snap(ln("eth1", probe.KindDevice), ln("eth1.100", probe.KindVLAN, vlanOn("eth1", 100))),
			want:  vmv1alpha1.PolicyVerification{Kernel: "VLAN eth1.100 up, id 100 on eth1", Verified: true},
		},
		{
			name: "VLAN with the wrong id and parent", enactment: "Available", raw: vlanPolicy,
			links: snap(ln("eth1.100", probe.KindVLAN, vlanOn("eth2", 101))),
			want: vmv1alpha1.PolicyVerification{Kernel: "VLAN eth1.100 up, id 101 on eth2",
				Message: `nmstate reports Available but VLAN eth1.100 has id 101, want 100; VLAN eth1.100 rides on "eth2", want eth1`},
		},
		{
			name: "OVS bridge present", enactment: "Available",
			raw:   `{"interfaces":[{"name":"br-ovs","type":"ovs-bridge","state":"up"}]}`,
			links: snap(ln("br-ovs", probe.KindOVS)),
			want:  vmv1alpha1.PolicyVerification{Kernel: "OVS bridge br-ovs up", Verified: true},
		},
		{
			name: "bond missing a member", enactment: "Available", raw: bondPolicy,
			links: snap(ln("bond0", probe.KindBond, mode("active-backup")), ln("eth0", probe.KindDevice, under("bond0")), ln("eth1", probe.KindDevice)),
			want: vmv1alpha1.PolicyVerification{Kernel: "bond bond0 up, mode active-backup",
				Message: "nmstate reports Available but eth1 is not a member of bond bond0"},
		},
		{
			name: "no enactment yet", raw: bridgePolicy, links: snap(),
			want: vmv1alpha1.PolicyVerification{Kernel: "bridge br-mgmt missing",
				Message: "no enactment for this node yet; bridge br-mgmt does not exist"},
		},
		{
			name: "a NIC's MTU as asked", enactment: "Available",
			raw:   `{"interfaces":[{"name":"eth3","type":"ethernet","state":"up","mtu":9000}]}`,
			links: snap(ln("eth3", probe.KindDevice, mtu(9000))),
			want:  vmv1alpha1.PolicyVerification{Kernel: "NIC eth3 up", Verified: true},
		},
		{
			name: "a NIC's MTU not applied", enactment: "Available",
			raw:   `{"interfaces":[{"name":"eth3","type":"ethernet","state":"up","mtu":9000}]}`,
			links: snap(ln("eth3", probe.KindDevice, mtu(1500))),
			want: vmv1alpha1.PolicyVerification{Kernel: "NIC eth3 up",
				Message: "nmstate reports Available but eth3 has MTU 1500, want 9000"},
		},
		{
			name: "a trunk as asked, VLAN filtering on", enactment: "Available", raw: trunkPolicy,
			links: snap(ln("br-mgmt", probe.KindBridge, filtering), ln("eth1", probe.KindDevice, under("br-mgmt"), trunk(100, 200, 201, 202))),
			want:  vmv1alpha1.PolicyVerification{Kernel: "bridge br-mgmt up, ports eth1", Verified: true},
		},
		{
			name: "a trunk missing a VLAN and leaking another", enactment: "Available", raw: trunkPolicy,
			links: snap(ln("br-mgmt", probe.KindBridge, filtering), ln("eth1", probe.KindDevice, under("br-mgmt"), trunk(1, 100, 200, 201))),
			want: vmv1alpha1.PolicyVerification{Kernel: "bridge br-mgmt up, ports eth1",
				Message: "nmstate reports Available but port eth1 trunks VLANs 1,100,200-201, want 100,200-202"},
		},
		{
			// NetworkManager adds the bridge's default PVID beside the trunk
			// tags; nmstate does not report it, nor does the agent count it.
			name: "a trunk beside NetworkManager's default PVID", enactment: "Available", raw: trunkPolicy,
			links: snap(ln("br-mgmt", probe.KindBridge, defaultPVID(1)), ln("eth1", probe.KindDevice, under("br-mgmt"), trunk(1, 100, 200, 201, 202))),
			want:  vmv1alpha1.PolicyVerification{Kernel: "bridge br-mgmt up, ports eth1", Verified: true},
		},
		{
			name: "kubernetes-nmstate's port default beside the default PVID", enactment: "Available", raw: portDefaultPolicy,
			links: snap(ln("br-mgmt", probe.KindBridge, defaultPVID(1)), ln("eth1", probe.KindDevice, under("br-mgmt"), trunk(vlanRange(1, 4094)...))),
			want:  vmv1alpha1.PolicyVerification{Kernel: "bridge br-mgmt up, ports eth1", Verified: true},
		},
		{
			name: "VLAN 1 leaks when the bridge's default PVID is another", enactment: "Available", raw: trunkPolicy,
			links: snap(ln("br-mgmt", probe.KindBridge, defaultPVID(7)), ln("eth1", probe.KindDevice, under("br-mgmt"), trunk(1, 100, 200, 201, 202))),
			want: vmv1alpha1.PolicyVerification{Kernel: "bridge br-mgmt up, ports eth1",
				Message: "nmstate reports Available but port eth1 trunks VLANs 1,100,200-202, want 100,200-202"},
		},
		{
			name: "the default PVID excuses no missing tag", enactment: "Available", raw: trunkPolicy,
			links: snap(ln("br-mgmt", probe.KindBridge, defaultPVID(1)), ln("eth1", probe.KindDevice, under("br-mgmt"), trunk(1, 100, 200, 201))),
			want: vmv1alpha1.PolicyVerification{Kernel: "bridge br-mgmt up, ports eth1",
				Message: "nmstate reports Available but port eth1 trunks VLANs 1,100,200-201, want 100,200-202"},
		},
		{
			name: "a trunk on a bridge that does not filter", enactment: "Available", raw: trunkPolicy,
			links: snap(ln("br-mgmt", probe.KindBridge), ln("eth1", probe.KindDevice, under("br-mgmt"))),
			want: vmv1alpha1.PolicyVerification{Kernel: "bridge br-mgmt up, ports eth1",
				Message: "nmstate reports Available but bridge br-mgmt does not filter VLANs, but its trunk ports need it; port eth1 trunks VLANs none, want 100,200-202"},
		},
		{
			name: "garbage desired state", enactment: "Available", raw: `interfaces: [`,
			want: vmv1alpha1.PolicyVerification{Message: "desiredState does not parse: "},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := Compare("p", tc.enactment, []byte(tc.raw), Kernel{Links: tc.links})
			tc.want.Name, tc.want.Enactment = "p", tc.enactment
			if tc.name == "garbage desired state" { // the YAML error text belongs to the parser
				if got.Verified || len(got.Message) < len(tc.want.Message) || got.Message[:len(tc.want.Message)] != tc.want.Message {
					t.Errorf("got %+v", got)
				}
				return
			}
			if got != tc.want {
				t.Errorf("got  %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestSelects(t *testing.T) {
	cases := []struct {
		name     string
		selector map[string]string
		labels   map[string]string
		want     bool
	}{
		{name: "empty selector selects all", labels: map[string]string{"a": "b"}, want: true},
		{name: "match", selector: map[string]string{"role": "vm"}, labels: map[string]string{"role": "vm", "x": "y"}, want: true},
		{name: "value differs", selector: map[string]string{"role": "vm"}, labels: map[string]string{"role": "db"}},
		{name: "label missing", selector: map[string]string{"role": "vm"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := Selects(tc.selector, tc.labels); got != tc.want {
				t.Errorf("Selects = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestCompareVFCount(t *testing.T) {
	raw := []byte(`{"interfaces":[{"name":"ens1f0","type":"ethernet","state":"up","ethernet":{"sr-iov":{"total-vfs":8}}}]}`)
	links := snap(ln("ens1f0", probe.KindDevice))
	ok := Compare("p", "Available", raw, Kernel{Links: links, PFs: []vmv1alpha1.SRIOVPF{{Name: "ens1f0", TotalVFs: 64, NumVFs: 8}}})
	if !ok.Verified || ok.Kernel != "NIC ens1f0 up, 8 VFs" {
		t.Fatalf("8 VFs as asked: %+v", ok)
	}
	short := Compare("p", "Available", raw, Kernel{Links: links, PFs: []vmv1alpha1.SRIOVPF{{Name: "ens1f0", TotalVFs: 64, NumVFs: 4}}})
	if short.Verified || short.Message != "nmstate reports Available but ens1f0 has 4 VFs, want 8" {
		t.Fatalf("4 of 8 VFs: %+v", short)
	}
	none := Compare("p", "Available", raw, Kernel{Links: links})
	if none.Verified || none.Message != "nmstate reports Available but ens1f0 is not an SR-IOV physical function here, want 8 VFs" {
		t.Fatalf("no PF: %+v", none)
	}
}
