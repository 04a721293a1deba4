package hostnetwork

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	nmstatev1 "github.com/nmstate/kubernetes-nmstate/api/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	kubevirtv1 "kubevirt.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
	"github.com/jianfenliu/vmoperator/controller/apply"
	"github.com/jianfenliu/vmoperator/controller/attach"
	"github.com/jianfenliu/vmoperator/controller/desired"
)

// splitPolicies separates a HostNetwork's group policies (what it builds)
// from its revert policies (what it is undoing).
func splitPolicies(all []nmstatev1.NodeNetworkConfigurationPolicy) (groups, reverts []*nmstatev1.NodeNetworkConfigurationPolicy) {
	for i := range all {
		if isRevert(&all[i]) {
			reverts = append(reverts, &all[i])
		} else {
			groups = append(groups, &all[i])
		}
	}
	return groups, reverts
}

// isRevert says whether a policy of a HostNetwork only undoes: a revert
// policy, or (before this release) a group policy rewritten in place to
// revert, which carries the revert deadline.
func isRevert(policy *nmstatev1.NodeNetworkConfigurationPolicy) bool {
	_, rewritten := policy.Annotations[vmv1alpha1.AnnotationRevertDeadline]
	return policy.Labels[vmv1alpha1.LabelPolicyRole] == vmv1alpha1.PolicyRoleRevert || rewritten
}

// revertAnnotations say what a revert undoes and until when it waits.
func (r *Reconciler) revertAnnotations(what string) map[string]string {
	deadline := r.now().Add(r.revertTimeout()).UTC().Truncate(time.Second)
	return map[string]string{vmv1alpha1.AnnotationReverts: what, vmv1alpha1.AnnotationRevertDeadline: deadline.Format(time.RFC3339)}
}

// nodeRevert is the revert policy for what one node loses, merged with a
// revert for it still under way (its interfaces stay, the new ones join).
func (r *Reconciler) nodeRevert(h *vmv1alpha1.HostNetwork, node string, lost []desired.BuiltInterface, nodes []corev1.Node,
	pending *nmstatev1.NodeNetworkConfigurationPolicy) (*nmstatev1.NodeNetworkConfigurationPolicy, error) {
	selector, err := hostnameSelector(node, nodes)
	if err != nil {
		return nil, err
	}
	if pending != nil && pending.Annotations[vmv1alpha1.AnnotationReverts] != "node "+node {
		// Two targets hash alike (one in 16^6 at least): wait for the other.
		return nil, fmt.Errorf("revert policy %s is under way for %s; the revert on node %s waits for it", pending.Name, pending.Annotations[vmv1alpha1.AnnotationReverts], node)
	}
	var merged built
	if pending != nil {
		earlier, err := revertInterfaces(pending)
		if err != nil {
			return nil, err
		}
		for _, iface := range earlier {
			merged.add(iface)
		}
	}
	for _, iface := range lost {
		merged.add(iface)
	}
	return desired.RevertPolicy(h.Name, "node "+node, selector, desired.RevertOf(merged.order), r.revertAnnotations("node "+node)), nil
}

// ensureRevert creates a revert policy, or updates the pending one of its
// name when it would revert more. It says whether it wrote.
func (r *Reconciler) ensureRevert(ctx context.Context, want, pending *nmstatev1.NodeNetworkConfigurationPolicy) (bool, error) {
	if pending != nil {
		have, err := revertInterfaces(pending)
		if err != nil {
			return false, err
		}
		wanted, err := revertInterfaces(want)
		if err != nil {
			return false, err
		}
		if sameInterfaces(have, wanted) {
			return false, nil
		}
	}
	if _, err := (apply.Applier{Client: r.Client}).Apply(ctx, policyOrNil(pending), want); err != nil {
		if apierrors.IsAlreadyExists(err) {
			return true, nil // not in the cache yet: it is under way
		}
		return false, fmt.Errorf("write revert policy %s: %w", want.Name, err)
	}
	return true, nil
}

func sameInterfaces(a, b []desired.BuiltInterface) bool {
	return slices.EqualFunc(a, b, func(x, y desired.BuiltInterface) bool {
		return x.Name == y.Name && x.Type == y.Type && (x.VFs == nil) == (y.VFs == nil)
	})
}

// revertInterfaces are the interfaces a revert policy undoes, in its order.
func revertInterfaces(policy *nmstatev1.NodeNetworkConfigurationPolicy) ([]desired.BuiltInterface, error) {
	undone, err := desired.Reverted(policy.Spec.DesiredState)
	if err != nil {
		return nil, fmt.Errorf("revert policy %s: %w", policy.Name, err)
	}
	return undone, nil
}

// revertWait is one revert still under way.
type revertWait struct {
	policy   string
	what     string
	pending  []string
	deadline time.Time
}

// followReverts moves every revert of a HostNetwork on: one that would
// undo what the plan builds on its node again is trimmed (or dropped),
// one every selected node applied is done, one past its deadline is done
// with a RevertTimedOut event. A done revert is deleted, unless keepDone
// (a deletion keeps them until the HostNetwork is gone, so that no
// reconcile on a stale cache writes them again). It returns those still waiting.
func (r *Reconciler) followReverts(ctx context.Context, h *vmv1alpha1.HostNetwork, reverts []*nmstatev1.NodeNetworkConfigurationPolicy,
	after map[string]*built, nodes []corev1.Node, written map[string]bool, keepDone bool) ([]revertWait, error) {
	var waits []revertWait
	for _, policy := range reverts {
		if written[policy.Name] {
			// Rewritten this round: the copy read before is stale.
			waits = append(waits, revertWait{policy: policy.Name, what: policy.Annotations[vmv1alpha1.AnnotationReverts],
				pending: selectedNodes(policy, nodes), deadline: r.now().Add(r.revertTimeout())})
			continue
		}
		selected := selectedNodes(policy, nodes)
		interfaces, err := revertInterfaces(policy)
		if err != nil {
			return nil, err
		}
		left := interfaces
		for _, node := range selected {
			left = keptBy(left, after[node])
		}
		if len(left) == 0 {
			if err := r.deletePolicy(ctx, policy); err != nil {
				return nil, err
			}
			continue
		}
		if len(left) < len(interfaces) {
			trimmed := policy.DeepCopy()
			trimmed.Spec.DesiredState = desired.RevertOf(left)
			trimmed.Annotations = r.revertAnnotations(policy.Annotations[vmv1alpha1.AnnotationReverts])
			if _, err := (apply.Applier{Client: r.Client}).Apply(ctx, policy, trimmed); err != nil {
				return nil, fmt.Errorf("trim revert policy %s: %w", policy.Name, err)
			}
			waits = append(waits, revertWait{policy: policy.Name, what: policy.Annotations[vmv1alpha1.AnnotationReverts], pending: selected,
				deadline: r.now().Add(r.revertTimeout())})
			continue
		}
		wait, err := r.followRevert(ctx, h, policy, selected, keepDone)
		if err != nil {
			return nil, err
		}
		if wait != nil {
			waits = append(waits, *wait)
		}
	}
	return waits, nil
}

// followRevert deletes a revert once every node it selects applied its
// generation, or at its deadline; until then it says what it waits for.
func (r *Reconciler) followRevert(ctx context.Context, h *vmv1alpha1.HostNetwork, policy *nmstatev1.NodeNetworkConfigurationPolicy,
	selected []string, keepDone bool) (*revertWait, error) {
	raw := policy.Annotations[vmv1alpha1.AnnotationRevertDeadline]
	deadline, err := time.Parse(time.RFC3339, raw)
	if err != nil {
		deadline = r.now() // a mangled deadline gives up now rather than never
	}
	pending, err := r.pendingNodes(ctx, policy, selected)
	if err != nil {
		return nil, err
	}
	what := policy.Annotations[vmv1alpha1.AnnotationReverts]
	if what == "" {
		what = "policy " + policy.Name
	}
	if len(pending) > 0 && r.now().Before(deadline) {
		return &revertWait{policy: policy.Name, what: what, pending: pending, deadline: deadline}, nil
	}
	if len(pending) > 0 && policy.Annotations[annotationGaveUp] == "" {
		r.event(h, policy, corev1.EventTypeWarning, vmv1alpha1.ReasonRevertTimedOut,
			"nmstate did not apply revert policy %s (%s) on %s by %s; it is deleted and those nodes keep what was built: remove it by hand",
			policy.Name, what, strings.Join(pending, ", "), raw)
		if keepDone {
			return nil, r.markGaveUp(ctx, policy)
		}
	}
	if keepDone {
		return nil, nil
	}
	return nil, r.deletePolicy(ctx, policy)
}

// annotationGaveUp on a revert kept after its deadline says the timeout
// was reported.
const annotationGaveUp = "vm.example.com/revert-gave-up"

func (r *Reconciler) markGaveUp(ctx context.Context, policy *nmstatev1.NodeNetworkConfigurationPolicy) error {
	patch := client.MergeFrom(policy.DeepCopy())
	policy.Annotations[annotationGaveUp] = "true"
	if err := client.IgnoreNotFound(r.Client.Patch(ctx, policy, patch)); err != nil {
		return fmt.Errorf("mark revert policy %s timed out: %w", policy.Name, err)
	}
	return nil
}

// deleteLeftReverts deletes the reverts of a HostNetwork that is gone: a
// deletion keeps them, applied, until then.
func (r *Reconciler) deleteLeftReverts(ctx context.Context, name string) error {
	all, err := r.policiesOf(ctx, name)
	if err != nil {
		return err
	}
	_, reverts := splitPolicies(all)
	var errs []error
	for _, policy := range reverts {
		errs = append(errs, r.deletePolicy(ctx, policy))
	}
	return errors.Join(errs...)
}

func (r *Reconciler) deletePolicy(ctx context.Context, policy *nmstatev1.NodeNetworkConfigurationPolicy) error {
	if err := client.IgnoreNotFound(r.Client.Delete(ctx, policy, client.Preconditions{UID: &policy.UID})); err != nil {
		return fmt.Errorf("delete policy %s: %w", policy.Name, err)
	}
	return nil
}

// selectedNodes are the nodes a policy's nodeSelector picks now, sorted.
func selectedNodes(policy *nmstatev1.NodeNetworkConfigurationPolicy, nodes []corev1.Node) []string {
	selector := labels.SelectorFromSet(policy.Spec.NodeSelector)
	var out []string
	for i := range nodes {
		if selector.Matches(labels.Set(nodes[i].Labels)) {
			out = append(out, nodes[i].Name)
		}
	}
	slices.Sort(out)
	return out
}

// vmsByNode maps each node to the profiles (namespace/name) whose VM runs
// there on the HostNetwork: a profile attaching to it (as a deletion
// counts users) or whose status still shows it there, with a VMI on the
// node (status.nodeName, and a live migration's target until it completes).
func (r *Reconciler) vmsByNode(ctx context.Context, name string) (map[string][]string, error) {
	if !r.KubeVirt {
		return nil, nil
	}
	users, err := attach.Reader{Client: r.Client, Multus: true, Policy: r.Networks}.Users(ctx, name)
	if err != nil {
		return nil, err
	}
	var profiles vmv1alpha1.VirtualMachineProfileList
	if err := r.Client.List(ctx, &profiles); err != nil {
		return nil, fmt.Errorf("list profiles: %w", err)
	}
	for i := range profiles.Items {
		for _, network := range profiles.Items[i].Status.Networks {
			if network.HostNetwork == name {
				users = append(users, client.ObjectKeyFromObject(&profiles.Items[i]))
				break
			}
		}
	}
	slices.SortFunc(users, func(a, b types.NamespacedName) int { return strings.Compare(a.String(), b.String()) })
	users = slices.Compact(users)
	out := map[string][]string{}
	for _, user := range users {
		var vmi kubevirtv1.VirtualMachineInstance
		key := types.NamespacedName{Namespace: user.Namespace, Name: vmv1alpha1.VMName(user.Name)}
		if err := r.Client.Get(ctx, key, &vmi); err != nil {
			if apierrors.IsNotFound(err) {
				continue
			}
			return nil, fmt.Errorf("read VMI %s: %w", key, err)
		}
		if vmi.IsFinal() {
			continue // stopped: no port on any node
		}
		for _, node := range nodesOfVMI(&vmi) {
			out[node] = append(out[node], user.String())
		}
	}
	return out, nil
}

func nodesOfVMI(vmi *kubevirtv1.VirtualMachineInstance) []string {
	var nodes []string
	if vmi.Status.NodeName != "" {
		nodes = append(nodes, vmi.Status.NodeName)
	}
	if m := vmi.Status.MigrationState; m != nil && !m.Completed && m.TargetNode != "" && m.TargetNode != vmi.Status.NodeName {
		nodes = append(nodes, m.TargetNode)
	}
	return nodes
}
