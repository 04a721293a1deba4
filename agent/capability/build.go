package capability

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/jianfenliu/vmoperator/agent/probe"
	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
)

// ovsDatapath is the link the OVS kernel module creates for its datapath;
// it is not a bridge anyone can attach to.
const ovsDatapath = "ovs-system"

// Input is everything the probes found in one round.
type Input struct {
	KVM      vmv1alpha1.KVMStatus
	Links    probe.Snapshot
	LinksErr error
	SRIOV    []vmv1alpha1.SRIOVPF
	SRIOVErr error
	Policies []vmv1alpha1.PolicyVerification
	// ExtraUplinks names links to report as uplinks besides NICs and bonds,
	// for nodes whose uplinks are virtual (and for tests in namespaces).
	ExtraUplinks []string
}

// Build assembles the status. Conditions carry no LastTransitionTime; the
// publisher merges them with the stored ones so that times move only when a
// condition's status does.
func Build(in Input) vmv1alpha1.NodeCapabilityStatus {
	kvm := in.KVM
	status := vmv1alpha1.NodeCapabilityStatus{KVM: &kvm, SRIOV: in.SRIOV, Policies: in.Policies}
	if in.LinksErr == nil {
		status.Bridges = bridges(in.Links)
		status.VLANs = vlans(in.Links)
		status.Bonds = bonds(in.Links)
		status.OVSBridges = ovsBridges(in.Links)
		status.Uplinks = uplinks(in.Links, in.ExtraUplinks)
	}
	status.Conditions = []metav1.Condition{readyCondition(in), kvmCondition(in.KVM), networkCondition(in)}
	return status
}

func up(l probe.Link) bool { return l.AdminUp && l.Carrier }

func membersOf(snap probe.Snapshot, master string) []probe.Link {
	var members []probe.Link
	for _, l := range snap.Links {
		if l.Master == master {
			members = append(members, l)
		}
	}
	return members
}

func bridges(snap probe.Snapshot) []vmv1alpha1.BridgeStatus {
	var out []vmv1alpha1.BridgeStatus
	for _, l := range snap.Links {
		if l.Kind != probe.KindBridge {
			continue
		}
		br := vmv1alpha1.BridgeStatus{Name: l.Name, Up: up(l), VLANFiltering: l.VLANFiltering, MTU: int32(l.MTU)}
		for _, port := range membersOf(snap, l.Name) {
			br.Ports = append(br.Ports, bridgePort(port, l.VLANFiltering))
		}
		out = append(out, br)
	}
	return out
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
	for _, l := range snap.Links {
		if l.Kind != probe.KindBond {
			continue
		}
		bond := vmv1alpha1.BondStatus{Name: l.Name, Mode: l.BondMode, Up: up(l), ActiveMember: l.BondActive}
		for _, m := range membersOf(snap, l.Name) {
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

func readyCondition(in Input) metav1.Condition {
	var errs []error
	if in.LinksErr != nil {
		errs = append(errs, fmt.Errorf("links: %w", in.LinksErr))
	}
	if in.SRIOVErr != nil {
		errs = append(errs, fmt.Errorf("SR-IOV: %w", in.SRIOVErr))
	}
	if err := errors.Join(errs...); err != nil {
		return condition(vmv1alpha1.ConditionReady, false, vmv1alpha1.ReasonProbeFailed, strings.ReplaceAll(err.Error(), "\n", "; "))
	}
	return condition(vmv1alpha1.ConditionReady, true, vmv1alpha1.ReasonProbeSucceeded, "every probe succeeded")
}

func kvmCondition(kvm vmv1alpha1.KVMStatus) metav1.Condition {
	if !kvm.Available {
		return condition(vmv1alpha1.ConditionKVMReady, false, vmv1alpha1.ReasonKVMUnavailable, kvm.Reason)
	}
	msg := fmt.Sprintf("KVM API version %d", kvm.APIVersion)
	switch {
	case kvm.Vendor == "":
		msg += "; the CPU advertises neither vmx nor svm"
	case kvm.Nested:
		msg += fmt.Sprintf("; %s, nested virtualisation on", kvm.Vendor)
	default:
		msg += fmt.Sprintf("; %s, nested virtualisation off", kvm.Vendor)
	}
	return condition(vmv1alpha1.ConditionKVMReady, true, vmv1alpha1.ReasonKVMAvailable, msg)
}

func networkCondition(in Input) metav1.Condition {
	if in.LinksErr != nil {
		return condition(vmv1alpha1.ConditionNetworkReady, false, vmv1alpha1.ReasonProbeFailed, "links: "+in.LinksErr.Error())
	}
	var unverified []string
	for _, p := range in.Policies {
		if !p.Verified {
			unverified = append(unverified, fmt.Sprintf("%s: %s", p.Name, p.Message))
		}
	}
	if len(unverified) > 0 {
		return condition(vmv1alpha1.ConditionNetworkReady, false, vmv1alpha1.ReasonPolicyUnverified, strings.Join(unverified, "; "))
	}
	return condition(vmv1alpha1.ConditionNetworkReady, true, vmv1alpha1.ReasonProbeSucceeded,
		fmt.Sprintf("links probed; %d policies verified", len(in.Policies)))
}

func condition(typ string, ok bool, reason, message string) metav1.Condition {
	status := metav1.ConditionFalse
	if ok {
		status = metav1.ConditionTrue
	}
	return metav1.Condition{Type: typ, Status: status, Reason: reason, Message: message}
}
