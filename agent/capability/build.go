package capability

import (
	"slices"

	"github.com/jianfenliu/vmoperator/agent/probe"
	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
)

// ovsDatapath is the link the OVS kernel module creates for its datapath;
// it is not a bridge anyone can attach to.
const ovsDatapath = "ovs-system"

// Input is what the agent reports in one round: this round's probe
// results, or, for a probe that failed, the last good ones it kept.
type Input struct {
	KVM vmv1alpha1.KVMStatus
	// Links are the links to report, their bridge VLANs filled in.
	Links    probe.Snapshot
	SRIOV    []vmv1alpha1.SRIOVPF
	Policies []vmv1alpha1.PolicyVerification
	// How each probe went; the zero Outcome is a full success.
	LinksProbe       Outcome
	BridgeVLANsProbe Outcome
	SRIOVProbe       Outcome
	// PoliciesErr is why the policies could not be verified this round;
	// Policies are then the last verified ones.
	PoliciesErr error
	// VLANCounting is how the per-VLAN counters fare; nil leaves their
	// condition out (an agent built without them, as in most tests).
	VLANCounting *VLANCounting
	// ExtraUplinks names links to report as uplinks besides NICs and bonds,
	// for nodes whose uplinks are virtual (and for tests in namespaces).
	ExtraUplinks []string
}

// Build assembles the status, within MaxStatusBytes and every string
// within its CRD maxLength (clamp). Conditions carry no
// LastTransitionTime; the publisher merges them with the stored ones so
// that times move only when a condition's status does.
func Build(in Input) vmv1alpha1.NodeCapabilityStatus {
	kvm := in.KVM
	return fit(clamp(vmv1alpha1.NodeCapabilityStatus{
		KVM:        &kvm,
		Bridges:    bridges(in.Links),
		VLANs:      vlans(in.Links),
		Bonds:      bonds(in.Links),
		OVSBridges: ovsBridges(in.Links),
		Uplinks:    uplinks(in.Links, in.ExtraUplinks),
		SRIOV:      in.SRIOV,
		Policies:   in.Policies,
		Conditions: conditions(in),
	}))
}

func up(l probe.Link) bool { return l.AdminUp && l.Carrier }

// membersByMaster groups the links by the bridge or bond they are
// enslaved to, in snapshot order: once, not per master, because a node
// with a bridge per VLAN has thousands of each.
func membersByMaster(snap probe.Snapshot) map[string][]probe.Link {
	members := map[string][]probe.Link{}
	for _, l := range snap.Links {
		if l.Master != "" {
			members[l.Master] = append(members[l.Master], l)
		}
	}
	return members
}

func bridges(snap probe.Snapshot) []vmv1alpha1.BridgeStatus {
	var out []vmv1alpha1.BridgeStatus
	members := membersByMaster(snap)
	for _, l := range snap.Links {
		if l.Kind != probe.KindBridge {
			continue
		}
		br := vmv1alpha1.BridgeStatus{Name: l.Name, Up: up(l), VLANFiltering: l.VLANFiltering, MTU: int32(l.MTU)}
		for _, port := range members[l.Name] {
			if !perVMPort(port) {
				br.Ports = append(br.Ports, bridgePort(port, l.VLANFiltering))
			}
		}
		out = append(out, br)
	}
	return out
}

// perVMPort says whether a bridge port is one VM's or pod's: a tap, or the
// host end of a veth whose peer is in another namespace (a pod's). Such
// ports come and go with their VMs and placement reads none of them, so
// listing them would rewrite the NodeCapability, and wake the controller,
// on every VM start and stop. A veth whose peer stays in the host's
// namespace links two bridges, or stands in for an uplink, and is kept.
func perVMPort(l probe.Link) bool {
	return l.Kind == probe.KindTuntap || (l.Kind == probe.KindVeth && l.PeerElsewhere)
}

// bridgePort reports VLANs only on filtering bridges: a non-filtering bridge
// still lists the default VLAN 1 per port, but forwards every tag, so VLAN 1
// there would mislead placement.
func bridgePort(port probe.Link, filtering bool) vmv1alpha1.BridgePort {
	p := vmv1alpha1.BridgePort{Name: port.Name, Up: up(port)}
	if filtering {
		p.VLANs = vmv1alpha1.FormatVLANs(port.PortVLANs)
		p.PVID = int32(port.PVID)
	}
	return p
}

func vlans(snap probe.Snapshot) []vmv1alpha1.VLANInterface {
	var out []vmv1alpha1.VLANInterface
	for _, l := range snap.Links {
		if l.Kind == probe.KindVLAN {
			out = append(out, vmv1alpha1.VLANInterface{Name: l.Name, ID: int32(l.VLANID), Parent: l.Parent, Up: up(l)})
		}
	}
	return out
}

func bonds(snap probe.Snapshot) []vmv1alpha1.BondStatus {
	var out []vmv1alpha1.BondStatus
	members := membersByMaster(snap)
	for _, l := range snap.Links {
		if l.Kind != probe.KindBond {
			continue
		}
		bond := vmv1alpha1.BondStatus{Name: l.Name, Mode: l.BondMode, Up: up(l), ActiveMember: l.BondActive}
		for _, m := range members[l.Name] {
			bond.Members = append(bond.Members, m.Name)
		}
		out = append(out, bond)
	}
	return out
}

func ovsBridges(snap probe.Snapshot) []vmv1alpha1.OVSBridgeStatus {
	var out []vmv1alpha1.OVSBridgeStatus
	for _, l := range snap.Links {
		if l.Kind == probe.KindOVS && l.Name != ovsDatapath {
			out = append(out, vmv1alpha1.OVSBridgeStatus{Name: l.Name, Up: up(l)})
		}
	}
	return out
}

// IsUplink says whether a link is reported as an uplink: a NIC (netlink
// kind "device", but not lo), a bond, or one named explicitly.
func IsUplink(l probe.Link, extra []string) bool {
	return (l.Kind == probe.KindDevice && !l.Loopback) || l.Kind == probe.KindBond || slices.Contains(extra, l.Name)
}

func uplinks(snap probe.Snapshot, extra []string) []vmv1alpha1.UplinkStatus {
	var out []vmv1alpha1.UplinkStatus
	for _, l := range snap.Links {
		if IsUplink(l, extra) {
			out = append(out, vmv1alpha1.UplinkStatus{
				Name: l.Name, Up: l.AdminUp, Carrier: l.Carrier, SpeedMbps: int32(l.SpeedMbps), MTU: int32(l.MTU),
			})
		}
	}
	return out
}
