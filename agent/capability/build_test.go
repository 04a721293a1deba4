package capability

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/jianfenliu/vmoperator/agent/probe"
	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
)

type linkOption func(*probe.Link)

func link(name, kind string, opts ...linkOption) probe.Link {
	l := probe.Link{Name: name, Kind: kind, AdminUp: true, Carrier: true, MTU: 1500}
	for _, o := range opts {
		o(&l)
	}
	return l
}

func down() linkOption           { return func(l *probe.Link) { l.AdminUp, l.Carrier = false, false } }
func noCarrier() linkOption      { return func(l *probe.Link) { l.Carrier = false } }
func master(m string) linkOption { return func(l *probe.Link) { l.Master = m } }
func filtering() linkOption      { return func(l *probe.Link) { l.VLANFiltering = true } }
func loopback() linkOption       { return func(l *probe.Link) { l.Loopback = true } }
func peerElsewhere() linkOption  { return func(l *probe.Link) { l.PeerElsewhere = true } }
func speed(mbps int) linkOption  { return func(l *probe.Link) { l.SpeedMbps = mbps } }
func portVLANs(pvid int, ids ...int) linkOption {
	return func(l *probe.Link) { l.PortVLANs, l.PVID = ids, pvid }
}
func vlanOf(parent string, id int) linkOption {
	return func(l *probe.Link) { l.Parent, l.VLANID = parent, id }
}
func bondMode(mode, active string) linkOption {
	return func(l *probe.Link) { l.BondMode, l.BondActive = mode, active }
}

func snapshot(links ...probe.Link) probe.Snapshot { return probe.Snapshot{Links: links} }

var kvmOK = vmv1alpha1.KVMStatus{Available: true, APIVersion: 12, Vendor: "intel"}

func TestBuildInventory(t *testing.T) {
	cases := []struct {
		name  string
		in    Input
		check func(t *testing.T, s vmv1alpha1.NodeCapabilityStatus)
	}{
		{
			name: "bridge ports, VLANs only when filtering",
			in: Input{KVM: kvmOK, Links: snapshot(
				link("br-trunk", probe.KindBridge, filtering()),
				link("br-plain", probe.KindBridge),
				link("eth1", probe.KindDevice, master("br-trunk"), portVLANs(1, 1, 100, 101, 102, 200)),
				link("veth0", probe.KindVeth, master("br-plain"), portVLANs(1, 1), noCarrier()),
			)},
			check: func(t *testing.T, s vmv1alpha1.NodeCapabilityStatus) {
				want := []vmv1alpha1.BridgeStatus{
					{Name: "br-trunk", Up: true, VLANFiltering: true, MTU: 1500,
						Ports: []vmv1alpha1.BridgePort{{Name: "eth1", Up: true, VLANs: "1,100-102,200", PVID: 1}}},
					{Name: "br-plain", Up: true, MTU: 1500, Ports: []vmv1alpha1.BridgePort{{Name: "veth0", Up: false}}},
				}
				if !apiequality.Semantic.DeepEqual(s.Bridges, want) {
					t.Errorf("bridges = %+v\nwant      %+v", s.Bridges, want)
				}
			},
		},
		{
			name: "VLANs, bonds, OVS without the datapath, uplinks",
			in: Input{KVM: kvmOK, ExtraUplinks: []string{"veth-up"}, Links: snapshot(
				link("lo", probe.KindDevice, loopback()),
				link("eth0", probe.KindDevice, master("bond0"), speed(25000)),
				link("eth1", probe.KindDevice, master("bond0"), noCarrier()),
				link("bond0", probe.KindBond, bondMode("active-backup", "eth0")),
				link("bond0.100", probe.KindVLAN, vlanOf("bond0", 100)),
				link("bond0.200", probe.KindVLAN, vlanOf("bond0", 200), down()),
				link("ovs-system", probe.KindOVS, down()),
				link("br-ovs", probe.KindOVS),
				link("veth-up", probe.KindVeth),
				link("veth-other", probe.KindVeth),
			)},
			check: func(t *testing.T, s vmv1alpha1.NodeCapabilityStatus) {
				wantVLANs := []vmv1alpha1.VLANInterface{
					{Name: "bond0.100", ID: 100, Parent: "bond0", Up: true},
					{Name: "bond0.200", ID: 200, Parent: "bond0", Up: false},
				}
				wantBonds := []vmv1alpha1.BondStatus{{Name: "bond0", Mode: "active-backup", Up: true, Members: []string{"eth0", "eth1"}, ActiveMember: "eth0"}}
				wantOVS := []vmv1alpha1.OVSBridgeStatus{{Name: "br-ovs", Up: true}}
				wantUplinks := []vmv1alpha1.UplinkStatus{
					{Name: "eth0", Up: true, Carrier: true, SpeedMbps: 25000, MTU: 1500},
					{Name: "eth1", Up: true, Carrier: false, MTU: 1500},
					{Name: "bond0", Up: true, Carrier: true, MTU: 1500},
					{Name: "veth-up", Up: true, Carrier: true, MTU: 1500},
				}
				for what, pair := range map[string][2]any{
					"vlans": {s.VLANs, wantVLANs}, "bonds": {s.Bonds, wantBonds},
					"ovs": {s.OVSBridges, wantOVS}, "uplinks": {s.Uplinks, wantUplinks},
				} {
					if !apiequality.Semantic.DeepEqual(pair[0], pair[1]) {
						t.Errorf("%s = %+v\nwant %+v", what, pair[0], pair[1])
					}
				}
			},
		},
		{
			name: "kept links from a failed probe are reported as given",
			in: Input{KVM: kvmOK, Links: snapshot(link("br0", probe.KindBridge)),
				LinksProbe: Outcome{Err: errors.New("netlink: permission denied"), Kept: true}},
			check: func(t *testing.T, s vmv1alpha1.NodeCapabilityStatus) {
				if len(s.Bridges) != 1 || s.Bridges[0].Name != "br0" {
					t.Errorf("bridges = %+v, want the kept br0", s.Bridges)
				}
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { tc.check(t, Build(tc.in)) })
	}
}

// TestVMPortsDoNotChangeTheStatus: a VM starting on a node adds a tap, or
// the host end of its pod's veth, to a bridge; neither shows in the status,
// so the node's NodeCapability is not rewritten. Every port placement may
// need stays: uplinks, bonds, VLAN interfaces, vxlan, and veths whose peer
// is on the host.
func TestVMPortsDoNotChangeTheStatus(t *testing.T) {
	node := []probe.Link{
		link("eth0", probe.KindDevice, master("bond0")),
		link("bond0", probe.KindBond, master("br-trunk"), portVLANs(0, 100, 200)),
		link("br-trunk", probe.KindBridge, filtering()),
		link("eth1", probe.KindDevice),
		link("eth1.300", probe.KindVLAN, vlanOf("eth1", 300), master("br-300")),
		link("br-300", probe.KindBridge),
		link("vxlan10", "vxlan", master("br-300")),
		link("patch-a", probe.KindVeth, master("br-300")),
		link("patch-b", probe.KindVeth, master("br-trunk"), portVLANs(0, 100)),
	}
	vms := []probe.Link{
		link("veth4f2a9c01", probe.KindVeth, master("br-trunk"), peerElsewhere(), portVLANs(100, 100)),
		link("veth77d0e1aa", probe.KindVeth, master("br-300"), peerElsewhere()),
		link("tap-vm-b", probe.KindTuntap, master("br-300")),
		link("tap-vm-c", probe.KindTuntap, master("br-trunk"), noCarrier(), portVLANs(200, 200)),
	}
	idle := Build(Input{KVM: kvmOK, Links: snapshot(node...)})
	busy := Build(Input{KVM: kvmOK, Links: snapshot(append(slices.Clone(node), vms...)...)})
	if !apiequality.Semantic.DeepEqual(idle, busy) {
		t.Errorf("VM ports changed the status:\nwithout %+v\nwith    %+v", idle.Bridges, busy.Bridges)
	}
	ports := map[string][]string{}
	for _, b := range busy.Bridges {
		for _, p := range b.Ports {
			ports[b.Name] = append(ports[b.Name], p.Name)
		}
	}
	want := map[string][]string{"br-trunk": {"bond0", "patch-b"}, "br-300": {"eth1.300", "vxlan10", "patch-a"}}
	if !apiequality.Semantic.DeepEqual(ports, want) {
		t.Errorf("ports %v, want %v", ports, want)
	}
}

type wantCondition struct {
	status          metav1.ConditionStatus
	reason, message string
}

func ok(reason, message string) wantCondition {
	return wantCondition{metav1.ConditionTrue, reason, message}
}

func notOK(reason, message string) wantCondition {
	return wantCondition{metav1.ConditionFalse, reason, message}
}

// allProbed are the three probe conditions of a round where every probe succeeded.
func allProbed() map[string]wantCondition {
	return map[string]wantCondition{
		vmv1alpha1.ConditionLinksProbed:       ok(vmv1alpha1.ReasonProbeSucceeded, "links probed"),
		vmv1alpha1.ConditionBridgeVLANsProbed: ok(vmv1alpha1.ReasonProbeSucceeded, "bridge VLANs probed"),
		vmv1alpha1.ConditionSRIOVProbed:       ok(vmv1alpha1.ReasonProbeSucceeded, "SR-IOV probed"),
	}
}

func with(base map[string]wantCondition, typ string, w wantCondition) map[string]wantCondition {
	out := map[string]wantCondition{typ: w}
	for k, v := range base {
		if k != typ {
			out[k] = v
		}
	}
	return out
}

func skipped(names ...string) []probe.Skipped {
	var out []probe.Skipped
	for _, n := range names {
		out = append(out, probe.Skipped{Name: n, Reason: "unreadable"})
	}
	return out
}

// TestBuildConditions is the API contract the controller's placement reads:
// per-probe conditions True/ProbeSucceeded, False/ProbeFailed (the data is
// the last good one, and the message says so) or False/ProbePartial (the
// message names each skipped entry), and Ready as their aggregate.
func TestBuildConditions(t *testing.T) {
	readyOK := ok(vmv1alpha1.ReasonProbeSucceeded, "every probe succeeded")
	kvmIntel := ok(vmv1alpha1.ReasonKVMAvailable, "KVM API version 12; intel, nested virtualisation off")
	networkOK := ok(vmv1alpha1.ReasonProbeSucceeded, "links probed; 0 policies verified")
	dumpErr := errors.New("listing links: netlink receive: no buffer space available")
	cases := []struct {
		name string
		in   Input
		want map[string]wantCondition // by condition type; every type is checked
	}{
		{
			name: "all good",
			in:   Input{KVM: vmv1alpha1.KVMStatus{Available: true, APIVersion: 12, Vendor: "amd", Nested: true}},
			want: with(with(with(allProbed(), vmv1alpha1.ConditionReady, readyOK),
				vmv1alpha1.ConditionKVMReady, ok(vmv1alpha1.ReasonKVMAvailable, "KVM API version 12; amd, nested virtualisation on")),
				vmv1alpha1.ConditionNetworkReady, networkOK),
		},
		{
			name: "KVM without vmx/svm, as on this paravirtualised host",
			in:   Input{KVM: vmv1alpha1.KVMStatus{Available: true, APIVersion: 12}},
			want: with(with(with(allProbed(), vmv1alpha1.ConditionReady, readyOK),
				vmv1alpha1.ConditionKVMReady, ok(vmv1alpha1.ReasonKVMAvailable, "KVM API version 12; the CPU advertises neither vmx nor svm")),
				vmv1alpha1.ConditionNetworkReady, networkOK),
		},
		{
			name: "KVM from sysfs alone, as the chart's agent sees it (no device node)",
			in:   Input{KVM: vmv1alpha1.KVMStatus{Available: true, Vendor: "intel"}},
			want: with(with(with(allProbed(), vmv1alpha1.ConditionReady, readyOK),
				vmv1alpha1.ConditionKVMReady, ok(vmv1alpha1.ReasonKVMAvailable, "the kernel offers /dev/kvm; intel, nested virtualisation off")),
				vmv1alpha1.ConditionNetworkReady, networkOK),
		},
		{
			name: "no KVM, one PF skipped, one policy unverified",
			in: Input{
				KVM:        vmv1alpha1.KVMStatus{Reason: "no KVM device: /dev/kvm does not exist"},
				SRIOVProbe: Outcome{Skipped: []probe.Skipped{{Name: "ens3", Reason: `/sys/class/net/ens3/device/sriov_numvfs: "x" is not a number`}}},
				Policies: []vmv1alpha1.PolicyVerification{
					{Name: "ok", Verified: true},
					{Name: "br-mgmt", Enactment: "Available", Message: "nmstate reports Available but bridge br-mgmt does not exist"},
				},
			},
			want: with(with(with(with(allProbed(),
				vmv1alpha1.ConditionReady, notOK(vmv1alpha1.ReasonProbePartial, "probes that did not fully succeed: SR-IOV (ProbePartial)")),
				vmv1alpha1.ConditionKVMReady, notOK(vmv1alpha1.ReasonKVMUnavailable, "no KVM device: /dev/kvm does not exist")),
				vmv1alpha1.ConditionNetworkReady, notOK(vmv1alpha1.ReasonPolicyUnverified, "br-mgmt: nmstate reports Available but bridge br-mgmt does not exist")),
				vmv1alpha1.ConditionSRIOVProbed, notOK(vmv1alpha1.ReasonProbePartial, `skipped ens3: /sys/class/net/ens3/device/sriov_numvfs: "x" is not a number`)),
		},
		{
			name: "link dump failed, last good links kept",
			in: Input{KVM: kvmOK,
				LinksProbe:       Outcome{Err: dumpErr, Kept: true},
				BridgeVLANsProbe: Outcome{Err: errors.New("not probed: the link dump failed"), Kept: true}},
			want: map[string]wantCondition{
				vmv1alpha1.ConditionReady:        notOK(vmv1alpha1.ReasonProbeFailed, "probes that did not fully succeed: links (ProbeFailed), bridge VLANs (ProbeFailed)"),
				vmv1alpha1.ConditionKVMReady:     kvmIntel,
				vmv1alpha1.ConditionNetworkReady: notOK(vmv1alpha1.ReasonProbeFailed, "links: listing links: netlink receive: no buffer space available"),
				vmv1alpha1.ConditionLinksProbed: notOK(vmv1alpha1.ReasonProbeFailed,
					"listing links: netlink receive: no buffer space available; the links reported are from the last successful probe"),
				vmv1alpha1.ConditionBridgeVLANsProbed: notOK(vmv1alpha1.ReasonProbeFailed,
					"not probed: the link dump failed; the port VLANs reported are from the last successful probe"),
				vmv1alpha1.ConditionSRIOVProbed: ok(vmv1alpha1.ReasonProbeSucceeded, "SR-IOV probed"),
			},
		},
		{
			name: "SR-IOV failed before any success: nothing kept",
			in:   Input{KVM: kvmOK, SRIOVProbe: Outcome{Err: errors.New("listing /sys/class/net: permission denied")}},
			want: with(with(with(with(allProbed(),
				vmv1alpha1.ConditionReady, notOK(vmv1alpha1.ReasonProbeFailed, "probes that did not fully succeed: SR-IOV (ProbeFailed)")),
				vmv1alpha1.ConditionKVMReady, kvmIntel),
				vmv1alpha1.ConditionNetworkReady, networkOK),
				vmv1alpha1.ConditionSRIOVProbed, notOK(vmv1alpha1.ReasonProbeFailed,
					"listing /sys/class/net: permission denied; no probe has succeeded since the agent started, so no PFs are reported")),
		},
		{
			name: "only the bridge VLAN dump failed: NetworkReady unaffected",
			in:   Input{KVM: kvmOK, BridgeVLANsProbe: Outcome{Err: errors.New("listing bridge VLANs: interrupted system call"), Kept: true}},
			want: with(with(with(with(allProbed(),
				vmv1alpha1.ConditionReady, notOK(vmv1alpha1.ReasonProbeFailed, "probes that did not fully succeed: bridge VLANs (ProbeFailed)")),
				vmv1alpha1.ConditionKVMReady, kvmIntel),
				vmv1alpha1.ConditionNetworkReady, networkOK),
				vmv1alpha1.ConditionBridgeVLANsProbed, notOK(vmv1alpha1.ReasonProbeFailed,
					"listing bridge VLANs: interrupted system call; the port VLANs reported are from the last successful probe")),
		},
		{
			name: "a failure outranks a partial result in Ready's reason",
			in: Input{KVM: kvmOK,
				LinksProbe: Outcome{Skipped: []probe.Skipped{{Name: "br-bad", Reason: "decoding its message: invalid argument"}, {Name: "ifindex 9", Reason: "decoding its message: invalid argument"}}},
				SRIOVProbe: Outcome{Err: errors.New("listing /sys/class/net: input/output error"), Kept: true}},
			want: map[string]wantCondition{
				vmv1alpha1.ConditionReady:        notOK(vmv1alpha1.ReasonProbeFailed, "probes that did not fully succeed: links (ProbePartial), SR-IOV (ProbeFailed)"),
				vmv1alpha1.ConditionKVMReady:     kvmIntel,
				vmv1alpha1.ConditionNetworkReady: networkOK,
				vmv1alpha1.ConditionLinksProbed: notOK(vmv1alpha1.ReasonProbePartial,
					"skipped br-bad: decoding its message: invalid argument; skipped ifindex 9: decoding its message: invalid argument"),
				vmv1alpha1.ConditionBridgeVLANsProbed: ok(vmv1alpha1.ReasonProbeSucceeded, "bridge VLANs probed"),
				vmv1alpha1.ConditionSRIOVProbed: notOK(vmv1alpha1.ReasonProbeFailed,
					"listing /sys/class/net: input/output error; the PFs reported are from the last successful probe"),
			},
		},
		{
			name: "many skipped entries: ten named, the rest counted",
			in:   Input{KVM: kvmOK, SRIOVProbe: Outcome{Skipped: skipped("a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l")}},
			want: with(with(with(with(allProbed(),
				vmv1alpha1.ConditionReady, notOK(vmv1alpha1.ReasonProbePartial, "probes that did not fully succeed: SR-IOV (ProbePartial)")),
				vmv1alpha1.ConditionKVMReady, kvmIntel),
				vmv1alpha1.ConditionNetworkReady, networkOK),
				vmv1alpha1.ConditionSRIOVProbed, notOK(vmv1alpha1.ReasonProbePartial,
					"skipped a: unreadable; skipped b: unreadable; skipped c: unreadable; skipped d: unreadable; skipped e: unreadable; "+
						"skipped f: unreadable; skipped g: unreadable; skipped h: unreadable; skipped i: unreadable; skipped j: unreadable; and 2 more skipped")),
		},
		{
			name: "policies could not be verified: NetworkReady says so, Ready does not",
			in: Input{KVM: kvmOK, PoliciesErr: errors.Join(errors.New("listing policies: cache stopped"), errors.New("second")),
				Policies: []vmv1alpha1.PolicyVerification{{Name: "kept", Verified: true}}},
			want: with(with(with(allProbed(),
				vmv1alpha1.ConditionReady, readyOK),
				vmv1alpha1.ConditionKVMReady, kvmIntel),
				vmv1alpha1.ConditionNetworkReady, notOK(vmv1alpha1.ReasonProbeFailed,
					"verifying policies: listing policies: cache stopped; second; the policies reported are from the last successful verification")),
		},
	}
	order := []string{vmv1alpha1.ConditionReady, vmv1alpha1.ConditionKVMReady, vmv1alpha1.ConditionNetworkReady,
		vmv1alpha1.ConditionLinksProbed, vmv1alpha1.ConditionBridgeVLANsProbed, vmv1alpha1.ConditionSRIOVProbed}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := Build(tc.in).Conditions
			if len(got) != len(order) || len(tc.want) != len(order) {
				t.Fatalf("%d conditions built, %d expected; want %d: %+v", len(got), len(tc.want), len(order), got)
			}
			for i, c := range got {
				w := tc.want[c.Type]
				if c.Type != order[i] {
					t.Errorf("condition %d is %s, want %s", i, c.Type, order[i])
				}
				if c.Status != w.status || c.Reason != w.reason || c.Message != w.message {
					t.Errorf("%s = %s/%s/%q\nwant     %s/%s/%q", c.Type, c.Status, c.Reason, c.Message, w.status, w.reason, w.message)
				}
			}
		})
	}
}

// TestBuildIsDeterministic: the same input, failures included, builds the
// same status, so an unchanged failure costs no write.
func TestBuildIsDeterministic(t *testing.T) {
	inputs := map[string]func() Input{
		"healthy": func() Input {
			return Input{KVM: kvmOK, Links: snapshot(link("br0", probe.KindBridge), link("p0", probe.KindVeth, master("br0")))}
		},
		"failing and partial": func() Input {
			return Input{KVM: kvmOK, Links: snapshot(link("br0", probe.KindBridge)),
				LinksProbe: Outcome{Err: errors.New("listing links: interrupted 3 times in a row"), Kept: true},
				SRIOVProbe: Outcome{Skipped: skipped("ens3")}}
		},
	}
	for name, in := range inputs {
		if !apiequality.Semantic.DeepEqual(Build(in()), Build(in())) {
			t.Errorf("%s: two builds of the same input differ", name)
		}
	}
}

func TestMergeConditions(t *testing.T) {
	then := metav1.NewTime(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	now := metav1.NewTime(then.Add(time.Hour))
	stored := []metav1.Condition{
		{Type: "Ready", Status: metav1.ConditionTrue, Reason: "A", Message: "old", LastTransitionTime: then},
		{Type: "KVMReady", Status: metav1.ConditionTrue, Reason: "B", LastTransitionTime: then},
		{Type: "Gone", Status: metav1.ConditionTrue, LastTransitionTime: then},
	}
	built := []metav1.Condition{
		{Type: "Ready", Status: metav1.ConditionTrue, Reason: "A", Message: "new"},
		{Type: "KVMReady", Status: metav1.ConditionFalse, Reason: "C"},
		{Type: "NetworkReady", Status: metav1.ConditionTrue, Reason: "D"},
	}
	got := MergeConditions(stored, built, now)
	wantTimes := map[string]metav1.Time{"Ready": then, "KVMReady": now, "NetworkReady": now}
	if len(got) != 3 {
		t.Fatalf("got %d conditions, want 3: %+v", len(got), got)
	}
	for _, c := range got {
		if !c.LastTransitionTime.Equal(&metav1.Time{Time: wantTimes[c.Type].Time}) {
			t.Errorf("%s: LastTransitionTime %v, want %v", c.Type, c.LastTransitionTime, wantTimes[c.Type])
		}
	}
	if got[0].Message != "new" {
		t.Errorf("message not refreshed: %q", got[0].Message)
	}
}

// TestVLANCountersCondition: unavailable outranks a failed attach, which
// outranks the port limit; the message never counts ports, so a port
// coming or going past the limit costs no write.
func TestVLANCountersCondition(t *testing.T) {
	cases := []struct {
		name       string
		in         VLANCounting
		wantStatus metav1.ConditionStatus
		wantReason string
		wantIn     string
	}{
		{name: "counting", in: VLANCounting{Hook: "tcx", Counted: 3, MaxPorts: 64}, wantStatus: "True", wantReason: vmv1alpha1.ReasonCounting, wantIn: "with tcx"},
		{name: "limit", in: VLANCounting{Hook: "tcx", Counted: 64, Cut: 192, MaxPorts: 64}, wantStatus: "False", wantReason: vmv1alpha1.ReasonPortLimitReached, wantIn: "--vlan-counter-max-ports=64"},
		{name: "attach failed past the limit", in: VLANCounting{Hook: "tcx", Err: errors.New("port eth1: boom"), Cut: 1, MaxPorts: 1}, wantStatus: "False", wantReason: vmv1alpha1.ReasonAttachFailed, wantIn: "boom"},
		{name: "unavailable", in: VLANCounting{Hook: "none", Err: errors.New("no CAP_BPF"), Unavailable: true, Cut: 5, MaxPorts: 1}, wantStatus: "False", wantReason: vmv1alpha1.ReasonBPFUnavailable, wantIn: "no CAP_BPF"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := vlanCountersCondition(tc.in)
			if c.Status != tc.wantStatus || c.Reason != tc.wantReason || !strings.Contains(c.Message, tc.wantIn) {
				t.Errorf("got %s %s %q, want %s %s containing %q", c.Status, c.Reason, c.Message, tc.wantStatus, tc.wantReason, tc.wantIn)
			}
		})
	}
	more := VLANCounting{Hook: "tcx", Counted: 64, Cut: 193, MaxPorts: 64}
	if a, b := vlanCountersCondition(cases[1].in), vlanCountersCondition(more); a != b {
		t.Errorf("one more port past the limit changed the condition: %+v vs %+v", a, b)
	}
}
