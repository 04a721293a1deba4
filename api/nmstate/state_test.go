package nmstate

import (
	"slices"
	"strings"
	"testing"
)

func TestPolicyReadsBackAsWritten(t *testing.T) {
	zero := int32(0)
	written := State{Interfaces: []Interface{
		{Name: "br-mgmt", Type: TypeLinuxBridge, State: StateUp, MTU: 9000, Bridge: &Bridge{Port: []Port{
			{Name: "eth1", VLAN: &PortVLAN{Mode: "trunk", TrunkTags: []TrunkTag{{ID: 100}, {IDRange: &IDRange{Min: 200, Max: 202}}}}},
		}}},
		{Name: "ens1f0", Type: TypeEthernet, State: StateUp, Ethernet: &Ethernet{SRIOV: &SRIOV{TotalVFs: &zero}}},
	}}
	policy := written.Policy()
	if !strings.Contains(string(policy.Raw), `"total-vfs":0`) {
		t.Errorf("a VF count of 0 must be written, got %s", policy.Raw)
	}
	read, err := Parse(policy.Raw)
	if err != nil {
		t.Fatal(err)
	}
	bridge := read.Interfaces[0]
	if !bridge.Filtering() || bridge.MTU != 9000 {
		t.Errorf("bridge read back as %+v", bridge)
	}
	if got := bridge.Ports()[0].Trunked(); !slices.Equal(got, []int{100, 200, 201, 202}) {
		t.Errorf("trunked VLANs = %v, want [100 200 201 202]", got)
	}
	if vfs := read.Interfaces[1].Ethernet.SRIOV.TotalVFs; vfs == nil || *vfs != 0 {
		t.Errorf("VF count read back as %v, want 0", vfs)
	}
}

func TestParseReadsYAMLAndIgnoresUnknownFields(t *testing.T) {
	raw := []byte(`
interfaces:
- name: br0
  type: linux-bridge
  state: up
  lldp: {enabled: true}
  bridge:
    options: {stp: {enabled: false}}
    port:
    - name: eth0
`)
	s, err := Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Interfaces) != 1 || s.Interfaces[0].Filtering() || s.Interfaces[0].Ports()[0].Trunked() != nil {
		t.Errorf("parsed %+v", s)
	}
}

func TestParseNamesTheField(t *testing.T) {
	_, err := Parse([]byte("interfaces: {name: 3"))
	if err == nil || !strings.HasPrefix(err.Error(), "desiredState does not parse: ") {
		t.Errorf("error = %v, want it to name desiredState", err)
	}
}

func TestEmptyStateHasNoInterfaces(t *testing.T) {
	s, err := Parse(nil)
	if err != nil || len(s.Interfaces) != 0 {
		t.Errorf("Parse(nil) = %+v, %v", s, err)
	}
	var plain Interface
	if plain.Ports() != nil || plain.Filtering() {
		t.Error("an interface without bridge settings has no ports and no filtering")
	}
}
