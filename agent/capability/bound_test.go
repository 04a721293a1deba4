package capability

import (
	"encoding/json"
	"fmt"
	"testing"

	apiequality "k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"

	"github.com/jianfenliu/vmoperator/agent/probe/probetest"
	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
)

func statusBytes(t *testing.T, s vmv1alpha1.NodeCapabilityStatus) int {
	t.Helper()
	raw, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	return len(raw)
}

// TestVLANNodeFitsTheBound: a node with a bridge for each of the 4,094
// VLANs, its VLAN interface as the port, and a trunk bridge carrying all
// of them is reported whole, well within the bound.
func TestVLANNodeFitsTheBound(t *testing.T) {
	s := Build(Input{KVM: kvmOK, Links: probetest.VLANNode()})
	size := statusBytes(t, s)
	t.Logf("4,094-VLAN node: status %d bytes (%.2f MiB), bound %d", size, float64(size)/(1<<20), MaxStatusBytes)
	if size > MaxStatusBytes {
		t.Fatalf("status of %d bytes is over the bound of %d", size, MaxStatusBytes)
	}
	if c := meta.FindStatusCondition(s.Conditions, vmv1alpha1.ConditionTruncated); c != nil {
		t.Fatalf("nothing should be cut: %+v", c)
	}
	if len(s.Bridges) != probetest.AllVLANs+1 || len(s.VLANs) != probetest.AllVLANs {
		t.Fatalf("%d bridges and %d VLAN interfaces, want %d and %d", len(s.Bridges), len(s.VLANs), probetest.AllVLANs+1, probetest.AllVLANs)
	}
	trunk := s.Bridges[len(s.Bridges)-1]
	if trunk.Name != "br-trunk" || len(trunk.Ports) != 1 || trunk.Ports[0].VLANs != "2-4095" {
		t.Fatalf("trunk %+v", trunk)
	}
}

// TestOversizedNodeIsCutAndSaysSo: three NICs with a bridge per VLAN each
// are over the bound. The status is cut to fit, from the end of its
// longest lists, and the Truncated condition names what is missing; the
// same node cuts the same way every time, so it costs no write at rest.
func TestOversizedNodeIsCutAndSaysSo(t *testing.T) {
	in := Input{KVM: kvmOK, Links: probetest.VLANNode("eth1", "eth2", "eth3")}
	full := vmv1alpha1.NodeCapabilityStatus{Bridges: bridges(in.Links), VLANs: vlans(in.Links)}
	s := Build(in)
	size := statusBytes(t, s)
	t.Logf("three NICs' worth of VLAN bridges: %d bytes uncut, %d cut, bound %d", statusBytes(t, full), size, MaxStatusBytes)
	if size > MaxStatusBytes {
		t.Fatalf("status of %d bytes is over the bound of %d", size, MaxStatusBytes)
	}
	c := meta.FindStatusCondition(s.Conditions, vmv1alpha1.ConditionTruncated)
	if c == nil || c.Status != "True" || c.Reason != vmv1alpha1.ReasonSizeBoundExceeded {
		t.Fatalf("Truncated condition %+v", c)
	}
	t.Logf("Truncated: %s", c.Message)
	if len(s.Bridges) >= len(full.Bridges) || len(s.VLANs) >= len(full.VLANs) {
		t.Fatalf("%d of %d bridges and %d of %d VLAN interfaces kept: the longest lists should both be cut",
			len(s.Bridges), len(full.Bridges), len(s.VLANs), len(full.VLANs))
	}
	if !apiequality.Semantic.DeepEqual(s.Bridges, full.Bridges[:len(s.Bridges)]) || !apiequality.Semantic.DeepEqual(s.VLANs, full.VLANs[:len(s.VLANs)]) {
		t.Fatal("what is kept must be the lists' beginnings, unchanged")
	}
	if len(s.Uplinks) != 5 || s.KVM == nil {
		t.Fatalf("the short lists are not cut: %d uplinks, KVM %v", len(s.Uplinks), s.KVM)
	}
	cutBridges, cutVLANs := len(full.Bridges)-len(s.Bridges), len(full.VLANs)-len(s.VLANs)
	want := fmt.Sprintf("left out to keep this status within %d bytes: the last %d of %d bridges (%s to br-trunk); the last %d of %d VLAN interfaces (%s to eth3.999)",
		MaxStatusBytes, cutBridges, len(full.Bridges), full.Bridges[len(s.Bridges)].Name, cutVLANs, len(full.VLANs), full.VLANs[len(s.VLANs)].Name)
	if c.Message != want {
		t.Errorf("message %q\nwant    %q", c.Message, want)
	}
	if !apiequality.Semantic.DeepEqual(s, Build(in)) {
		t.Error("two builds of the same node are cut differently")
	}
}
