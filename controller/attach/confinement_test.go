package attach

import (
	"encoding/json"
	"testing"

	"k8s.io/utils/ptr"

	"github.com/jianfenliu/vmoperator/api/nmstate"
	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
	"github.com/jianfenliu/vmoperator/controller/desired"
)

// TestSRIOVAttachmentConfinesItsVF: on a managed SR-IOV HostNetwork with
// allowedVLANs (no kernel here has a VF), a profile on an allowed VLAN gets
// a NAD that has the PF tag the VF's traffic with that VLAN, checks the
// VF's source MAC and does not trust the guest; the nmstate policy only
// sets the VF count and builds no VLAN link that could carry other VLANs;
// untagged, the same profile is refused.
func TestSRIOVAttachmentConfinesItsVF(t *testing.T) {
	fast := hn("fast", 1, vmv1alpha1.HostNetworkSpec{Type: "sriov", Managed: true, Uplinks: []vmv1alpha1.Uplink{{Interface: "ens1f0"}},
		SRIOV: &vmv1alpha1.HostSRIOV{ResourceName: "intel.com/sriov_a", NumVFs: ptr.To[int32](8)}, AllowedVLANs: []vmv1alpha1.VLANRange{"200"}})
	in := Inputs{HostNetworks: []vmv1alpha1.HostNetwork{fast}}
	tagged := profileWith("ns", vmv1alpha1.NetworkConfig{Name: "biz", Type: "sriov", HostNetwork: "fast", VLANID: ptr.To[int32](200)})
	attachments, refusal := Resolve(tagged, in)
	if refusal != nil {
		t.Fatal(refusal)
	}
	nad, err := desired.NAD(tagged, attachments[0])
	if err != nil {
		t.Fatal(err)
	}
	var config struct {
		Type, SpoofChk, Trust string
		VLAN                  int32
	}
	if err := json.Unmarshal([]byte(nad.Spec.Config), &config); err != nil {
		t.Fatal(err)
	}
	if config.Type != "sriov" || config.VLAN != 200 || config.SpoofChk != "on" || config.Trust != "off" ||
		nad.Annotations[vmv1alpha1.AnnotationResourceName] != "intel.com/sriov_a" {
		t.Fatalf("NAD %s: want sriov on VLAN 200, spoofchk on, trust off, resource intel.com/sriov_a; annotations %v", nad.Spec.Config, nad.Annotations)
	}
	state, err := desired.HostNetworkState(&fast, &fast.Spec.Uplinks[0])
	if err != nil {
		t.Fatal(err)
	}
	doc, err := nmstate.Parse(state.Raw)
	if err != nil {
		t.Fatal(err)
	}
	if len(doc.Interfaces) != 1 || doc.Interfaces[0].Name != "ens1f0" || doc.Interfaces[0].Ethernet == nil ||
		doc.Interfaces[0].Ethernet.SRIOV == nil || *doc.Interfaces[0].Ethernet.SRIOV.TotalVFs != 8 || doc.Interfaces[0].VLAN != nil {
		t.Fatalf("policy: want only ens1f0 with 8 VFs, got %s", state.Raw)
	}
	untagged := profileWith("ns", vmv1alpha1.NetworkConfig{Name: "biz", Type: "sriov", HostNetwork: "fast"})
	if _, refusal := Resolve(untagged, in); reasonOf(refusal) != vmv1alpha1.ReasonVLANNotAllowed {
		t.Fatalf("an untagged VF sits on the PF's native VLAN: want VLANNotAllowed, got %+v", refusal)
	}
}
