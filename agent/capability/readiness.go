package capability

import (
	"fmt"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/jianfenliu/vmoperator/agent/probe"
	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
)

// maxSkippedListed bounds how many skipped entries a message names, so a
// node with hundreds of unreadable interfaces still gets a readable condition.
const maxSkippedListed = 10

// Outcome is how one probe's last run went. The zero value is a full success.
type Outcome struct {
	// Err is set when the probe failed as a whole.
	Err error
	// Kept is set with Err when the status reports the data of the probe's
	// last successful run instead; without it there was none to report.
	Kept bool
	// Skipped are the entries an otherwise successful run left out.
	Skipped []probe.Skipped
}

// reason is "" for a full success.
func (o Outcome) reason() string {
	switch {
	case o.Err != nil:
		return vmv1alpha1.ReasonProbeFailed
	case len(o.Skipped) > 0:
		return vmv1alpha1.ReasonProbePartial
	}
	return ""
}

// probeOutcome is one probe, named for messages, with its outcome.
type probeOutcome struct {
	Outcome
	name      string // how Ready's message names the probe
	data      string // what of its data the status reports
	condition string
}

// conditions are Ready, KVMReady and NetworkReady, then one per probe, in a
// fixed order so that an unchanged node builds identical conditions.
func conditions(in Input) []metav1.Condition {
	probes := []probeOutcome{
		{Outcome: in.LinksProbe, name: "links", data: "links", condition: vmv1alpha1.ConditionLinksProbed},
		{Outcome: in.BridgeVLANsProbe, name: "bridge VLANs", data: "port VLANs", condition: vmv1alpha1.ConditionBridgeVLANsProbed},
		{Outcome: in.SRIOVProbe, name: "SR-IOV", data: "PFs", condition: vmv1alpha1.ConditionSRIOVProbed},
	}
	out := []metav1.Condition{readyCondition(probes), kvmCondition(in.KVM), networkCondition(in)}
	for _, p := range probes {
		out = append(out, probeCondition(p))
	}
	if in.VLANCounting != nil {
		out = append(out, vlanCountersCondition(*in.VLANCounting))
	}
	return out
}

// VLANCounting is the outcome of the last attach of the per-VLAN counters.
type VLANCounting struct {
	// Hook is how they are attached: tcx, clsact, or none.
	Hook string
	// Err is why some or all ports are not counted; Unavailable says it was
	// all of them, because the programs cannot be loaded here.
	Err         error
	Unavailable bool
	// Counted are the ports planned for counting, Cut those left out by the
	// limit MaxPorts (vlantraffic.Limit).
	Counted, Cut, MaxPorts int
}

// vlanCountersCondition never counts ports in its message, so that a port
// coming or going does not rewrite the status.
func vlanCountersCondition(v VLANCounting) metav1.Condition {
	switch {
	case v.Unavailable:
		return condition(vmv1alpha1.ConditionVLANCountersReady, false, vmv1alpha1.ReasonBPFUnavailable, oneLine(v.Err))
	case v.Err != nil:
		return condition(vmv1alpha1.ConditionVLANCountersReady, false, vmv1alpha1.ReasonAttachFailed, oneLine(v.Err))
	case v.Cut > 0:
		return condition(vmv1alpha1.ConditionVLANCountersReady, false, vmv1alpha1.ReasonPortLimitReached, fmt.Sprintf(
			"more ports to count than --vlan-counter-max-ports=%d: counting on the first %d (PFs, bonds, uplinks, then bridge ports, by name); vmop_node_vlan_ports{state=\"skipped\"} says how many are not",
			v.MaxPorts, v.MaxPorts))
	case v.Hook == "none":
		return condition(vmv1alpha1.ConditionVLANCountersReady, true, vmv1alpha1.ReasonCounting, "no uplink or bridge port to count on")
	}
	return condition(vmv1alpha1.ConditionVLANCountersReady, true, vmv1alpha1.ReasonCounting, "per-VLAN counters attached with "+v.Hook+" to every uplink and bridge port")
}

// readyCondition is True only when every probe fully succeeded. Otherwise
// it names each probe that did not and how; a failure outranks a partial
// result in its reason. The details are in the probes' own conditions.
func readyCondition(probes []probeOutcome) metav1.Condition {
	var notOK []string
	reason := ""
	for _, p := range probes {
		r := p.reason()
		if r == "" {
			continue
		}
		notOK = append(notOK, fmt.Sprintf("%s (%s)", p.name, r))
		if reason == "" || r == vmv1alpha1.ReasonProbeFailed {
			reason = r
		}
	}
	if len(notOK) == 0 {
		return condition(vmv1alpha1.ConditionReady, true, vmv1alpha1.ReasonProbeSucceeded, "every probe succeeded")
	}
	return condition(vmv1alpha1.ConditionReady, false, reason, "probes that did not fully succeed: "+strings.Join(notOK, ", "))
}

// probeCondition reports one probe. Its message holds no counts or times,
// only what failed and why, so an unchanged failure builds an unchanged
// condition and costs no write.
func probeCondition(p probeOutcome) metav1.Condition {
	switch {
	case p.Err != nil && p.Kept:
		return condition(p.condition, false, vmv1alpha1.ReasonProbeFailed,
			fmt.Sprintf("%s; the %s reported are from the last successful probe", oneLine(p.Err), p.data))
	case p.Err != nil:
		return condition(p.condition, false, vmv1alpha1.ReasonProbeFailed,
			fmt.Sprintf("%s; no probe has succeeded since the agent started, so no %s are reported", oneLine(p.Err), p.data))
	case len(p.Skipped) > 0:
		return condition(p.condition, false, vmv1alpha1.ReasonProbePartial, skippedMessage(p.Skipped))
	}
	return condition(p.condition, true, vmv1alpha1.ReasonProbeSucceeded, p.name+" probed")
}

// skippedMessage names each skipped entry and why, up to maxSkippedListed.
func skippedMessage(skipped []probe.Skipped) string {
	parts := make([]string, 0, min(len(skipped), maxSkippedListed)+1)
	for _, s := range skipped[:min(len(skipped), maxSkippedListed)] {
		parts = append(parts, fmt.Sprintf("skipped %s: %s", s.Name, s.Reason))
	}
	if more := len(skipped) - maxSkippedListed; more > 0 {
		parts = append(parts, fmt.Sprintf("and %d more skipped", more))
	}
	return strings.Join(parts, "; ")
}

func kvmCondition(kvm vmv1alpha1.KVMStatus) metav1.Condition {
	if !kvm.Available {
		return condition(vmv1alpha1.ConditionKVMReady, false, vmv1alpha1.ReasonKVMUnavailable, kvm.Reason)
	}
	// The agent in the chart holds no device: the kernel's misc device
	// vouches for /dev/kvm, and no API version was asked.
	msg := "the kernel offers /dev/kvm"
	if kvm.APIVersion != 0 {
		msg = fmt.Sprintf("KVM API version %d", kvm.APIVersion)
	}
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

// networkCondition is about the policies; it also turns False when the
// links could not be dumped, as before LinksProbed existed, because no
// policy can be checked then.
func networkCondition(in Input) metav1.Condition {
	switch {
	case in.LinksProbe.Err != nil:
		return condition(vmv1alpha1.ConditionNetworkReady, false, vmv1alpha1.ReasonProbeFailed, "links: "+oneLine(in.LinksProbe.Err))
	case in.PoliciesErr != nil:
		return condition(vmv1alpha1.ConditionNetworkReady, false, vmv1alpha1.ReasonProbeFailed,
			fmt.Sprintf("verifying policies: %s; the policies reported are from the last successful verification", oneLine(in.PoliciesErr)))
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

// oneLine keeps joined errors on one line of a condition message.
func oneLine(err error) string {
	return strings.ReplaceAll(err.Error(), "\n", "; ")
}

func condition(typ string, ok bool, reason, message string) metav1.Condition {
	status := metav1.ConditionFalse
	if ok {
		status = metav1.ConditionTrue
	}
	return metav1.Condition{Type: typ, Status: status, Reason: reason, Message: message}
}
