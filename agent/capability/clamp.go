package capability

import (
	"slices"

	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
)

// Bounds of the fields the CRD bounds with literals only; the shared ones
// are in api/v1alpha1 (bounds.go).
const (
	maxVendorLength     = 16
	maxBondModeLength   = 32
	maxPCIAddressLength = 32
	maxDriverLength     = 64
	maxPolicyNameLength = 253 // an object name
	maxEnactmentLength  = 64
	// maxConditionMessageLength is metav1.Condition's own maxLength.
	maxConditionMessageLength = 32768
)

// clamp cuts every string of the status to the maxLength its CRD field
// has, so that no status the agent builds is refused at admission: a
// refused write would leave the last one standing, however stale. The
// kernel keeps names within their bounds already; messages and reasons
// carry error texts of any length, and a policy's kernel summary grows
// with its interfaces. It copies the lists it changes that Build took from
// its input, so the input is never modified.
func clamp(s vmv1alpha1.NodeCapabilityStatus) vmv1alpha1.NodeCapabilityStatus {
	name := func(v *string) { *v = vmv1alpha1.Truncate(*v, vmv1alpha1.MaxInterfaceNameLength) }
	if s.KVM != nil {
		kvm := *s.KVM
		kvm.Vendor = vmv1alpha1.Truncate(kvm.Vendor, maxVendorLength)
		kvm.Reason = vmv1alpha1.Truncate(kvm.Reason, vmv1alpha1.MaxAgentMessageLength)
		s.KVM = &kvm
	}
	s.Bridges = slices.Clone(s.Bridges)
	for i := range s.Bridges {
		b := &s.Bridges[i]
		name(&b.Name)
		b.Ports = slices.Clone(b.Ports)
		for j := range b.Ports {
			name(&b.Ports[j].Name)
			b.Ports[j].VLANs = vmv1alpha1.Truncate(b.Ports[j].VLANs, vmv1alpha1.MaxVLANListLength)
		}
	}
	s.VLANs = slices.Clone(s.VLANs)
	for i := range s.VLANs {
		name(&s.VLANs[i].Name)
		name(&s.VLANs[i].Parent)
	}
	s.Bonds = slices.Clone(s.Bonds)
	for i := range s.Bonds {
		b := &s.Bonds[i]
		name(&b.Name)
		name(&b.ActiveMember)
		b.Mode = vmv1alpha1.Truncate(b.Mode, maxBondModeLength)
		b.Members = slices.Clone(b.Members)
		for j := range b.Members {
			name(&b.Members[j])
		}
	}
	s.OVSBridges = slices.Clone(s.OVSBridges)
	for i := range s.OVSBridges {
		name(&s.OVSBridges[i].Name)
	}
	s.Uplinks = slices.Clone(s.Uplinks)
	for i := range s.Uplinks {
		name(&s.Uplinks[i].Name)
	}
	s.SRIOV = slices.Clone(s.SRIOV)
	for i := range s.SRIOV {
		pf := &s.SRIOV[i]
		name(&pf.Name)
		pf.PCIAddress = vmv1alpha1.Truncate(pf.PCIAddress, maxPCIAddressLength)
		pf.Driver = vmv1alpha1.Truncate(pf.Driver, maxDriverLength)
	}
	s.Policies = slices.Clone(s.Policies)
	for i := range s.Policies {
		p := &s.Policies[i]
		p.Name = vmv1alpha1.Truncate(p.Name, maxPolicyNameLength)
		p.Enactment = vmv1alpha1.Truncate(p.Enactment, maxEnactmentLength)
		p.Kernel = vmv1alpha1.Truncate(p.Kernel, vmv1alpha1.MaxAgentMessageLength)
		p.Message = vmv1alpha1.Truncate(p.Message, vmv1alpha1.MaxAgentMessageLength)
	}
	s.Conditions = slices.Clone(s.Conditions)
	for i := range s.Conditions {
		s.Conditions[i].Message = vmv1alpha1.Truncate(s.Conditions[i].Message, maxConditionMessageLength)
	}
	return s
}
