package vlantraffic

import (
	"encoding/binary"
	"slices"
	"testing"

	"github.com/jianfenliu/vmoperator/agent/capability"
	"github.com/jianfenliu/vmoperator/agent/probe"
)

func TestPlanPicksWireSidePortsAndTheirVLANs(t *testing.T) {
	snap := probe.Snapshot{Links: []probe.Link{
		{Name: "eth0", Index: 2, Kind: probe.KindDevice, Master: "br-trunk"},
		{Name: "eth1", Index: 3, Kind: probe.KindDevice},
		{Name: "eth1.300", Index: 4, Kind: probe.KindVLAN, Parent: "eth1", VLANID: 300},
		{Name: "eth2", Index: 5, Kind: probe.KindDevice, Master: "br-plain"},
		{Name: "eth3", Index: 6, Kind: probe.KindDevice, Master: "br-trunk", PortVLANs: []int{200}},
		{Name: "br-trunk", Index: 7, Kind: probe.KindBridge, VLANFiltering: true, PortVLANs: []int{1}, PVID: 1},
		{Name: "br-plain", Index: 8, Kind: probe.KindBridge},
		{Name: "veth-vm1", Index: 9, Kind: probe.KindVeth, Master: "br-trunk", PortVLANs: []int{100, 150}, PVID: 100},
		{Name: "lo", Index: 1, Kind: probe.KindDevice, Loopback: true},
	}}
	// eth0's VLANs as the bridge VLAN probe fills them in.
	snap.Links[0].PortVLANs, snap.Links[0].PVID = []int{10, 100}, 10
	ports, inUse := Plan(snap, capability.RelevantLinks(snap, nil, nil))
	want := []Port{
		{Name: "eth0", Index: 2, Allowed: []int{10, 100}, Untagged: true},
		{Name: "eth1", Index: 3, Allowed: []int{300}, Untagged: true},
		{Name: "eth2", Index: 5, AllowAll: true},
		{Name: "eth3", Index: 6, Allowed: []int{200}, Untagged: false}, // no PVID: untagged frames are dropped
	}
	if !slices.EqualFunc(ports, want, func(a, b Port) bool {
		return a.Name == b.Name && a.Index == b.Index && a.AllowAll == b.AllowAll && a.Untagged == b.Untagged && slices.Equal(a.Allowed, b.Allowed)
	}) {
		t.Errorf("ports:\n got %+v\nwant %+v", ports, want)
	}
	// The VM's port is not counted, but its VLANs are in use on the node.
	if want := []int{1, 10, 100, 150, 200, 300}; !slices.Equal(inUse, want) {
		t.Errorf("in use = %v, want %v", inUse, want)
	}
}

func TestAggregateBoundsTheSeries(t *testing.T) {
	byVID := make([]Counts, MaxVLANs)
	byVID[0] = Counts{RxPackets: 1, RxBytes: 60}
	byVID[100] = Counts{TxPackets: 2, TxBytes: 200}
	byVID[5] = Counts{RxPackets: 1, RxBytes: 64, DisallowedPackets: 1, DisallowedBytes: 64}
	byVID[4094] = Counts{RxPackets: 3, RxBytes: 300, DisallowedPackets: 3, DisallowedBytes: 300}
	got := aggregate("eth0", byVID, map[int]bool{100: true, 200: true})
	want := []Sample{
		{Interface: "eth0", VLAN: "untagged", Counts: Counts{RxPackets: 1, RxBytes: 60}},
		{Interface: "eth0", VLAN: "100", Counts: Counts{TxPackets: 2, TxBytes: 200}},
		// 200 is in use but saw nothing: no series. 5 and 4094 are summed.
		{Interface: "eth0", VLAN: "other", Counts: Counts{RxPackets: 4, RxBytes: 364, DisallowedPackets: 4, DisallowedBytes: 364}},
	}
	if !slices.Equal(got, want) {
		t.Errorf("aggregate:\n got %+v\nwant %+v", got, want)
	}
	// However many VLANs saw traffic, a port exports at most in-use + 2 series.
	for vid := range byVID {
		byVID[vid] = Counts{RxPackets: 1}
	}
	if n := len(aggregate("eth0", byVID, map[int]bool{100: true, 200: true})); n != 4 {
		t.Errorf("%d series with traffic on every VLAN, want 4 (100, 200, untagged, other)", n)
	}
}

func TestAllowedBytes(t *testing.T) {
	allowed := func(p Port) []int {
		buf := allowedBytes(p)
		var out []int
		for vid := range MaxVLANs {
			if binary.LittleEndian.Uint64(buf[vid*allowedValueSize:]) == 1 {
				out = append(out, vid)
			}
		}
		return out
	}
	if got := allowed(Port{Allowed: []int{100, 4094, 0, -1, 5000}, Untagged: false}); !slices.Equal(got, []int{100, 4094}) {
		t.Errorf("tagged only: %v, want [100 4094] (0 means untagged, out-of-range IDs are ignored)", got)
	}
	if got := allowed(Port{Allowed: []int{7}, Untagged: true}); !slices.Equal(got, []int{0, 7}) {
		t.Errorf("with untagged: %v", got)
	}
	if got := allowed(Port{AllowAll: true}); len(got) != MaxVLANs {
		t.Errorf("allow all: %d entries, want %d", len(got), MaxVLANs)
	}
}

func TestCompareVLANLabels(t *testing.T) {
	labels := []string{"untagged", "other", "200", "3", "1000"}
	slices.SortFunc(labels, compareVLANLabels)
	if want := []string{"3", "200", "1000", "other", "untagged"}; !slices.Equal(labels, want) {
		t.Errorf("sorted = %v, want %v", labels, want)
	}
}

// TestPlanOrdersLeavesOutVFsAndLimits: VFs in the host namespace are not
// counted (their PF is), the rest come PF, bond, uplink, bridge port, each
// by name, and Limit keeps the first ones, so the same ports stay counted
// from round to round.
func TestPlanOrdersLeavesOutVFsAndLimits(t *testing.T) {
	snap := probe.Snapshot{Links: []probe.Link{
		{Name: "vxlan0", Index: 2, Kind: "vxlan", Master: "br0"},
		{Name: "eth9", Index: 3, Kind: probe.KindDevice},
		{Name: "eth0", Index: 4, Kind: probe.KindDevice},
		{Name: "bond0", Index: 5, Kind: probe.KindBond},
		{Name: "ens1f0", Index: 6, Kind: probe.KindDevice},
		{Name: "ens1f0v0", Index: 7, Kind: probe.KindDevice, VF: true},
		{Name: "ens1f0v1", Index: 8, Kind: probe.KindDevice, VF: true},
		{Name: "br0", Index: 9, Kind: probe.KindBridge},
	}}
	ports, _ := Plan(snap, capability.RelevantLinks(snap, nil, []string{"ens1f0"}))
	var names []string
	for _, p := range ports {
		names = append(names, p.Name)
	}
	if want := []string{"ens1f0", "bond0", "eth0", "eth9", "vxlan0"}; !slices.Equal(names, want) {
		t.Fatalf("planned %v, want %v", names, want)
	}
	for _, tc := range []struct {
		max, wantKept, wantCut int
	}{{max: 2, wantKept: 2, wantCut: 3}, {max: 5, wantKept: 5}, {max: 64, wantKept: 5}, {max: 0, wantKept: 5}} {
		kept, cut := Limit(ports, tc.max)
		if len(kept) != tc.wantKept || cut != tc.wantCut || !slices.EqualFunc(kept, ports[:len(kept)], func(a, b Port) bool { return a.Name == b.Name }) {
			t.Errorf("Limit(%d) kept %d cut %d, want the first %d and %d cut", tc.max, len(kept), cut, tc.wantKept, tc.wantCut)
		}
	}
}
