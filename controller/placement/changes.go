package placement

import (
	"slices"

	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
)

// ChangedRequirements are the requirement labels whose availability differs
// between two capabilities (nil: nothing offered). A bridge whose ports or
// VLANs changed counts under its bridge label and the labels of the host
// networks on it; a changed probe condition counts for everything.
func ChangedRequirements(old, updated *vmv1alpha1.NodeCapabilityStatus, wanted []Requirement, offers []HostNetworkOffer) map[string]bool {
	offered := func(c *vmv1alpha1.NodeCapabilityStatus) map[string]string {
		if c == nil {
			return map[string]string{}
		}
		return NodeLabels(c, wanted, offers)
	}
	before, after := offered(old), offered(updated)
	changed := map[string]bool{}
	for label := range before {
		if _, ok := after[label]; !ok {
			changed[label] = true
		}
	}
	for label := range after {
		if _, ok := before[label]; !ok {
			changed[label] = true
		}
	}
	bridges := func(c *vmv1alpha1.NodeCapabilityStatus) map[string]vmv1alpha1.BridgeStatus {
		out := map[string]vmv1alpha1.BridgeStatus{}
		if c != nil {
			for _, b := range c.Bridges {
				out[b.Name] = b
			}
		}
		return out
	}
	oldBridges, newBridges := bridges(old), bridges(updated)
	touched := map[string]bool{}
	for name, b := range newBridges {
		if previous, ok := oldBridges[name]; !ok || !apiequality.Semantic.DeepEqual(withoutPortVLANs(previous), withoutPortVLANs(b)) {
			touched[name] = true
		}
	}
	for name := range oldBridges {
		if _, ok := newBridges[name]; !ok {
			touched[name] = true
		}
	}
	for name := range touched {
		changed[BridgeLabel(name)] = true
		for _, offer := range offers {
			if offer.Bridge == name {
				changed[HostNetworkLabel(offer.Name)] = true
			}
		}
	}
	if old != nil && updated != nil && !apiequality.Semantic.DeepEqual(conditionsOnly(old), conditionsOnly(updated)) {
		for label := range before {
			changed[label] = true
		}
		for label := range after {
			changed[label] = true
		}
	}
	return changed
}

// withoutPortVLANs is a bridge less its ports' VLAN lists. A VLAN a port
// gains or loses changes that (bridge, VLAN) label, which the label
// comparison above catches for every wanted VLAN; waking every profile on
// the bridge for it woke 1,000 profiles where 100 used the VLAN (make bench,
// BenchmarkRequeuesPerCapabilityChange).
func withoutPortVLANs(b vmv1alpha1.BridgeStatus) vmv1alpha1.BridgeStatus {
	ports := make([]vmv1alpha1.BridgePort, len(b.Ports))
	for i, port := range b.Ports {
		port.VLANs, port.PVID = "", 0
		ports[i] = port
	}
	b.Ports = ports
	return b
}

// conditionsOnly strips the transition times, which change with the status.
func conditionsOnly(c *vmv1alpha1.NodeCapabilityStatus) []metav1.Condition {
	out := make([]metav1.Condition, 0, len(c.Conditions))
	for _, condition := range c.Conditions {
		condition.LastTransitionTime = metav1.Time{}
		out = append(out, condition)
	}
	return out
}

// ChangedLabelKeys lists the keys whose value differs between two label sets.
func ChangedLabelKeys(a, b map[string]string) []string {
	var keys []string
	for key, value := range a {
		if other, ok := b[key]; !ok || other != value {
			keys = append(keys, key)
		}
	}
	for key := range b {
		if _, ok := a[key]; !ok {
			keys = append(keys, key)
		}
	}
	slices.Sort(keys)
	return keys
}
