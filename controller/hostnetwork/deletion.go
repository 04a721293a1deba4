package hostnetwork

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"

	nmstateshared "github.com/nmstate/kubernetes-nmstate/api/shared"
	nmstatev1 "github.com/nmstate/kubernetes-nmstate/api/v1"
	nmstatev1beta1 "github.com/nmstate/kubernetes-nmstate/api/v1beta1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
	"github.com/jianfenliu/vmoperator/controller/attach"
	"github.com/jianfenliu/vmoperator/controller/desired"
)

// maxUsersListed bounds the profiles a Deleting condition names.
const maxUsersListed = 10

// reconcileDeletion holds a deleted HostNetwork while profiles use it, then
// reverts its host side (bounded), then lets it go. Every wait is in the
// Deleting condition, with what it waits for and until when.
func (r *Reconciler) reconcileDeletion(ctx context.Context, h *vmv1alpha1.HostNetwork) (ctrl.Result, error) {
	if !controllerutil.ContainsFinalizer(h, vmv1alpha1.FinalizerHostNetwork) {
		return ctrl.Result{}, nil
	}
	original := h.DeepCopy()
	users, err := attach.Reader{Client: r.Client, Multus: true, Policy: r.Networks}.Users(ctx, h.Name)
	if err != nil {
		return ctrl.Result{}, err
	}
	if len(users) > 0 {
		next := h.Status.DeepCopy()
		next.Conditions = []metav1.Condition{{Type: vmv1alpha1.ConditionDeleting, Status: metav1.ConditionTrue, Reason: vmv1alpha1.ReasonInUse,
			Message: "waits until no profile uses it; used by " + listUsers(users)}}
		return ctrl.Result{}, r.writeStatus(ctx, original, h, *next)
	}
	w, err := r.observe(ctx)
	if err != nil {
		return ctrl.Result{}, err
	}
	all, err := r.policiesOf(ctx, h.Name)
	if err != nil {
		return ctrl.Result{}, err
	}
	groups, reverts := splitPolicies(all)
	started, err := r.startReverts(ctx, h, planOf(h, w), groups, reverts, w.nodes)
	if err != nil {
		return ctrl.Result{}, err
	}
	followed, err := r.followReverts(ctx, h, reverts, nil, w.nodes, nil, true)
	if err != nil {
		return ctrl.Result{}, err
	}
	waits := append(started, followed...)
	if len(waits) > 0 {
		status := h.Status.DeepCopy()
		status.Conditions = []metav1.Condition{revertingCondition(waits)}
		err := r.writeStatus(ctx, original, h, *status)
		result := requeueAt(r.now(), waits)
		if len(started) > 0 && (result.IsZero() || result.RequeueAfter > time.Second) {
			result.RequeueAfter = time.Second // the reverts just started are followed once the cache has them
		}
		return result, err
	}
	patch := client.MergeFrom(h.DeepCopy())
	controllerutil.RemoveFinalizer(h, vmv1alpha1.FinalizerHostNetwork)
	if err := client.IgnoreNotFound(r.Client.Patch(ctx, h, patch)); err != nil {
		return ctrl.Result{}, fmt.Errorf("remove finalizer of HostNetwork %s: %w", h.Name, err)
	}
	return ctrl.Result{}, nil
}

func revertingCondition(waits []revertWait) metav1.Condition {
	parts := make([]string, 0, len(waits))
	next := time.Time{}
	for _, w := range waits {
		parts = append(parts, fmt.Sprintf("%s (%s) on %s", w.policy, w.what, nodesOrPending(w.pending)))
		if next.IsZero() || w.deadline.Before(next) {
			next = w.deadline
		}
	}
	message := fmt.Sprintf("waits for nmstate to revert the host side (%s) until %s; after that the policies are deleted and what is left on those nodes is the admin's to remove",
		strings.Join(parts, "; "), next.UTC().Format(time.RFC3339))
	return metav1.Condition{Type: vmv1alpha1.ConditionDeleting, Status: metav1.ConditionTrue, Reason: vmv1alpha1.ReasonReverting, Message: message}
}

// startReverts writes, for each group policy, a revert policy on the
// group's nodes, then deletes the group policies. The groups are those
// that exist, and those the spec declares: with a foreground deletion the
// garbage collector deletes the owned group policies before this runs,
// and the spec (kept by the finalizer) still says what they built. The
// reverts are owned by nothing, so that collection cannot take them. It
// returns a wait for each revert it wrote (or found under way but not yet
// in the cache), so that the Deleting condition names its policy, nodes
// and deadline at once: the finalizer goes only in a reconcile that wrote
// none and waits for none. Applied reverts stay until the HostNetwork is gone, so
// that a reconcile reading a stale HostNetwork finds them and writes none
// again; the reconcile of the gone HostNetwork deletes them.
func (r *Reconciler) startReverts(ctx context.Context, h *vmv1alpha1.HostNetwork, p plan,
	groups, reverts []*nmstatev1.NodeNetworkConfigurationPolicy, nodes []corev1.Node) ([]revertWait, error) {
	sources := map[string]*nmstatev1.NodeNetworkConfigurationPolicy{}
	if h.Spec.Managed && r.NMState && p.conflict == nil {
		for _, policy := range p.policies {
			sources[policy.Name] = policy
		}
	}
	for _, policy := range groups {
		sources[policy.Name] = policy
	}
	under := map[string]bool{}
	for _, policy := range reverts {
		under[policy.Name] = true
	}
	var started []revertWait
	for _, name := range slices.Sorted(maps.Keys(sources)) {
		source := sources[name]
		what := "policy " + name
		if under[desired.RevertPolicyName(h.Name, what)] {
			continue
		}
		state, err := desired.RevertState(source.Spec.DesiredState)
		if err != nil {
			return nil, fmt.Errorf("policy %s: %w", name, err)
		}
		if undone, err := desired.Reverted(state); err != nil || len(undone) == 0 {
			continue // it built nothing a revert takes away (a NIC's MTU)
		}
		want := desired.RevertPolicy(h.Name, what, source.Spec.NodeSelector, state, r.revertAnnotations(what))
		wrote, err := r.ensureRevert(ctx, want, nil)
		if err != nil {
			return nil, err
		}
		if wrote {
			deadline, err := time.Parse(time.RFC3339, want.Annotations[vmv1alpha1.AnnotationRevertDeadline])
			if err != nil {
				deadline = r.now().Add(r.revertTimeout())
			}
			started = append(started, revertWait{policy: want.Name, what: what, pending: selectedNodes(want, nodes), deadline: deadline})
			r.event(h, want, corev1.EventTypeNormal, vmv1alpha1.ReasonReverting, "asked nmstate to revert what policy %s built (revert policy %s); waiting until %s",
				name, want.Name, want.Annotations[vmv1alpha1.AnnotationRevertDeadline])
		}
	}
	var errs []error
	for _, policy := range groups {
		errs = append(errs, r.deletePolicy(ctx, policy))
	}
	return started, errors.Join(errs...)
}

func nodesOrPending(nodes []string) string {
	if len(nodes) == 0 {
		return "no node yet"
	}
	return strings.Join(nodes, ", ")
}

func listUsers(users []types.NamespacedName) string {
	names := make([]string, 0, len(users))
	for _, u := range users {
		names = append(names, u.String())
	}
	sort.Strings(names)
	text := strings.Join(names[:min(len(names), maxUsersListed)], ", ")
	if len(names) > maxUsersListed {
		text += fmt.Sprintf(" and %d more", len(names)-maxUsersListed)
	}
	return fmt.Sprintf("%d profile(s): %s", len(names), text)
}

// pendingNodes are the nodes a policy selects whose enactment has not
// applied its current generation. A node without an enactment has not
// applied it either.
func (r *Reconciler) pendingNodes(ctx context.Context, policy *nmstatev1.NodeNetworkConfigurationPolicy, selected []string) ([]string, error) {
	var list nmstatev1beta1.NodeNetworkConfigurationEnactmentList
	if err := r.Client.List(ctx, &list, client.MatchingLabels{nmstateshared.EnactmentPolicyLabel: policy.Name}); err != nil {
		return nil, fmt.Errorf("list enactments of policy %s: %w", policy.Name, err)
	}
	applied := map[string]bool{}
	for i := range list.Items {
		e := &list.Items[i]
		available := e.Status.Conditions.Find(nmstateshared.NodeNetworkConfigurationEnactmentConditionAvailable)
		if e.Status.PolicyGeneration >= policy.Generation && available != nil && available.Status == corev1.ConditionTrue {
			applied[e.Labels[nmstateshared.EnactmentNodeLabel]] = true
		}
	}
	var pending []string
	for _, node := range selected {
		if !applied[node] {
			pending = append(pending, node)
		}
	}
	return pending, nil
}
