package placement

import (
	"context"
	"fmt"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	kubevirtv1 "kubevirt.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/jianfenliu/vmoperator/api/agentlease"
	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
)

// ReadNodes reads every node with its capability and agent liveness (its
// Lease in leaseNamespace) through c, the cache in the controller.
func ReadNodes(ctx context.Context, c client.Reader, leaseNamespace string, now time.Time) ([]Node, error) {
	var nodes corev1.NodeList
	if err := c.List(ctx, &nodes); err != nil {
		return nil, fmt.Errorf("list Nodes: %w", err)
	}
	var capabilities vmv1alpha1.NodeCapabilityList
	if err := c.List(ctx, &capabilities); err != nil {
		return nil, fmt.Errorf("list NodeCapabilities: %w", err)
	}
	var leases coordinationv1.LeaseList
	if err := c.List(ctx, &leases, client.InNamespace(leaseNamespace)); err != nil {
		return nil, fmt.Errorf("list agent Leases in %s: %w", leaseNamespace, err)
	}
	byName := make(map[string]*vmv1alpha1.NodeCapabilityStatus, len(capabilities.Items))
	for i := range capabilities.Items {
		byName[capabilities.Items[i].Name] = &capabilities.Items[i].Status
	}
	expiry := make(map[string]time.Time, len(leases.Items))
	for i := range leases.Items {
		expiry[leases.Items[i].Name] = agentlease.Expiry(&leases.Items[i])
	}
	out := make([]Node, 0, len(nodes.Items))
	for i := range nodes.Items {
		node := &nodes.Items[i]
		silent := time.Duration(0)
		until, reported := expiry[node.Name]
		switch {
		case !reported || until.IsZero():
			silent = max(now.Sub(node.CreationTimestamp.Time), time.Second) // never reported
		case !now.Before(until):
			silent = max(now.Sub(until), time.Second)
		}
		out = append(out, Node{Name: node.Name, Labels: node.Labels, Unschedulable: node.Spec.Unschedulable,
			Capability: byName[node.Name], SilentFor: silent})
	}
	return out, nil
}

// SpreadShortage explains when every eligible node already runs a VM of
// another profile with antiAffinity, so this one cannot be placed.
func SpreadShortage(ctx context.Context, c client.Reader, profile *vmv1alpha1.VirtualMachineProfile, eligible []string) (string, error) {
	var instances kubevirtv1.VirtualMachineInstanceList
	if err := c.List(ctx, &instances, client.MatchingLabels{vmv1alpha1.LabelSpread: "true"}); err != nil {
		return "", fmt.Errorf("list the instances of spread profiles: %w", err)
	}
	taken := map[string]bool{}
	for i := range instances.Items {
		vmi := &instances.Items[i]
		mine := vmi.Namespace == profile.Namespace && vmi.Labels[vmv1alpha1.LabelProfile] == profile.Name
		if !mine && vmi.Status.NodeName != "" {
			taken[vmi.Status.NodeName] = true
		}
	}
	for _, node := range eligible {
		if !taken[node] {
			return "", nil
		}
	}
	return fmt.Sprintf("antiAffinity needs a node without another spreading VM, but all %d eligible node(s) run one", len(eligible)), nil
}

// SelectorKeys are the node label keys the profile's own nodeSelector uses.
func SelectorKeys(profile *vmv1alpha1.VirtualMachineProfile) []string {
	if profile.Spec.HighAvailability == nil {
		return nil
	}
	keys := make([]string, 0, len(profile.Spec.HighAvailability.NodeSelector))
	for key := range profile.Spec.HighAvailability.NodeSelector {
		keys = append(keys, key)
	}
	return keys
}
