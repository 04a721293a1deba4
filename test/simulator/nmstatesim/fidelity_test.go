package nmstatesim

import (
	"slices"
	"strings"
	"testing"

	"github.com/jianfenliu/vmoperator/api/nmstate"
)

// TestRenderPortDefault: a port without vlan: of a linux-bridge that is up
// becomes trunk 2-4094, as kubernetes-nmstate writes it into the
// enactment (pkg/bridge/bridge.go); ports with vlan:, bridges going
// absent and other types are left alone, and fields outside the model
// stay.
func TestRenderPortDefault(t *testing.T) {
	raw := []byte(`
interfaces:
- name: br-plain
  type: linux-bridge
  state: up
  lldp: {enabled: true}
  bridge:
    port:
    - name: eth1
    - name: eth2
      vlan: {mode: trunk, trunk-tags: [{id: 100}]}
- name: br-gone
  type: linux-bridge
  state: absent
  bridge:
    port:
    - name: eth3
- name: eth4
  type: ethernet
  state: up
`)
	out, err := renderPortDefault(raw)
	if err != nil {
		t.Fatal(err)
	}
	state, err := nmstate.Parse(out)
	if err != nil {
		t.Fatalf("the rendering does not parse: %v\n%s", err, out)
	}
	ports := state.Interfaces[0].Ports()
	if got := ports[0].Trunked(); len(got) != 4093 || got[0] != 2 || got[len(got)-1] != 4094 || ports[0].VLAN.Mode != "trunk" {
		t.Errorf("eth1 (no vlan:) renders as %v in mode %v, want trunk 2-4094", bounds(got), ports[0].VLAN)
	}
	if got := ports[1].Trunked(); !slices.Equal(got, []int{100}) {
		t.Errorf("eth2 (trunk 100) renders as %v", got)
	}
	if p := state.Interfaces[1].Ports(); p[0].VLAN != nil {
		t.Errorf("a bridge going absent got a port default: %+v", p[0].VLAN)
	}
	if !strings.Contains(string(out), "lldp") {
		t.Errorf("fields outside the model are lost:\n%s", out)
	}
}

func bounds(ids []int) []int {
	if len(ids) == 0 {
		return nil
	}
	return []int{ids[0], ids[len(ids)-1]}
}
