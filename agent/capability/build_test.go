package capability

import (
	"errors"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
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
				if !equality.Semantic.DeepEqual(s.Bridges, want) {
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
					if !equality.Semantic.DeepEqual(pair[0], pair[1]) {
						t.Errorf("%s = %+v\nwant %+v", what, pair[0], pair[1])
					}
				}
			},
		},
		{
			name: "failed link probe reports no links at all",
			in:   Input{KVM: kvmOK, Links: snapshot(link("br0", probe.KindBridge)), LinksErr: errors.New("netlink: permission denied")},
			check: func(t *testing.T, s vmv1alpha1.NodeCapabilityStatus) {
				if s.Bridges != nil || s.Uplinks != nil {
					t.Errorf("links reported from a failed probe: %+v %+v", s.Bridges, s.Uplinks)
				}
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { tc.check(t, Build(tc.in)) })
	}
}

func TestBuildConditions(t *testing.T) {
	type want struct {
		status          metav1.ConditionStatus
		reason, message string
	}
	cases := []struct {
		name    string
		in      Input
		ready   want
		kvm     want
		network want
	}{
		{
			name:    "all good",
			in:      Input{KVM: vmv1alpha1.KVMStatus{Available: true, APIVersion: 12, Vendor: "amd", Nested: true}},
			ready:   want{metav1.ConditionTrue, vmv1alpha1.ReasonProbeSucceeded, "every probe succeeded"},
			kvm:     want{metav1.ConditionTrue, vmv1alpha1.ReasonKVMAvailable, "KVM API version 12; amd, nested virtualisation on"},
			network: want{metav1.ConditionTrue, vmv1alpha1.ReasonProbeSucceeded, "links probed; 0 policies verified"},
		},
		{
			name:    "KVM without vmx/svm, as on this paravirtualised host",
			in:      Input{KVM: vmv1alpha1.KVMStatus{Available: true, APIVersion: 12}},
			ready:   want{metav1.ConditionTrue, vmv1alpha1.ReasonProbeSucceeded, "every probe succeeded"},
			kvm:     want{metav1.ConditionTrue, vmv1alpha1.ReasonKVMAvailable, "KVM API version 12; the CPU advertises neither vmx nor svm"},
			network: want{metav1.ConditionTrue, vmv1alpha1.ReasonProbeSucceeded, "links probed; 0 policies verified"},
		},
		{
			name: "no KVM, failing SR-IOV probe, one policy unverified",
			in: Input{
				KVM:      vmv1alpha1.KVMStatus{Reason: "no KVM device: /dev/kvm does not exist"},
				SRIOVErr: errors.New(`PF ens3: "x" is not a number`),
				Policies: []vmv1alpha1.PolicyVerification{
					{Name: "ok", Verified: true},
					{Name: "br-mgmt", Enactment: "Available", Message: "nmstate reports Available but bridge br-mgmt does not exist"},
				},
			},
			ready:   want{metav1.ConditionFalse, vmv1alpha1.ReasonProbeFailed, `SR-IOV: PF ens3: "x" is not a number`},
			kvm:     want{metav1.ConditionFalse, vmv1alpha1.ReasonKVMUnavailable, "no KVM device: /dev/kvm does not exist"},
			network: want{metav1.ConditionFalse, vmv1alpha1.ReasonPolicyUnverified, "br-mgmt: nmstate reports Available but bridge br-mgmt does not exist"},
		},
		{
			name:    "link probe failed",
			in:      Input{KVM: kvmOK, LinksErr: errors.New("netlink dump interrupted")},
			ready:   want{metav1.ConditionFalse, vmv1alpha1.ReasonProbeFailed, "links: netlink dump interrupted"},
			kvm:     want{metav1.ConditionTrue, vmv1alpha1.ReasonKVMAvailable, "KVM API version 12; intel, nested virtualisation off"},
			network: want{metav1.ConditionFalse, vmv1alpha1.ReasonProbeFailed, "links: netlink dump interrupted"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := Build(tc.in).Conditions
			for i, w := range []want{tc.ready, tc.kvm, tc.network} {
				typ := []string{vmv1alpha1.ConditionReady, vmv1alpha1.ConditionKVMReady, vmv1alpha1.ConditionNetworkReady}[i]
				c := got[i]
				if c.Type != typ || c.Status != w.status || c.Reason != w.reason || c.Message != w.message {
					t.Errorf("%s = %s/%s/%q, want %s/%s/%q", typ, c.Status, c.Reason, c.Message, w.status, w.reason, w.message)
				}
			}
		})
	}
}

func TestBuildIsDeterministic(t *testing.T) {
	in := Input{KVM: kvmOK, Links: snapshot(link("br0", probe.KindBridge), link("p0", probe.KindVeth, master("br0")))}
	if !equality.Semantic.DeepEqual(Build(in), Build(in)) {
		t.Fatal("two builds of the same input differ")
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
