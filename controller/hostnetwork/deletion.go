package hostnetwork

import (
	"context"
	"fmt"
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
	"github.com/jianfenliu/vmoperator/controller/apply"
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
	policies, err := r.policiesOf(ctx, h.Name)
	if err != nil {
		return ctrl.Result{}, err
	}
	var waiting []string
	var next time.Time
	for i := range policies {
		pending, deadline, err := r.revert(ctx, h, &policies[i])
		if err != nil {
			return ctrl.Result{}, err
		}
		if len(pending) > 0 || !deadline.IsZero() {
			waiting = append(waiting, fmt.Sprintf("%s on %s", policies[i].Name, nodesOrPending(pending)))
			if next.IsZero() || deadline.Before(next) {
				next = deadline
			}
		}
	}
	if len(waiting) > 0 {
		status := h.Status.DeepCopy()
		status.Conditions = []metav1.Condition{{Type: vmv1alpha1.ConditionDeleting, Status: metav1.ConditionTrue, Reason: vmv1alpha1.ReasonReverting,
			Message: fmt.Sprintf("waits for nmstate to revert the host side (%s) until %s; after that the policies are deleted and what is left on those nodes is the admin's to remove",
				strings.Join(waiting, "; "), next.UTC().Format(time.RFC3339))}}
		err := r.writeStatus(ctx, original, h, *status)
		return ctrl.Result{RequeueAfter: max(next.Sub(r.now()), time.Second)}, err
	}
	patch := client.MergeFrom(h.DeepCopy())
	controllerutil.RemoveFinalizer(h, vmv1alpha1.FinalizerHostNetwork)
	if err := client.IgnoreNotFound(r.Client.Patch(ctx, h, patch)); err != nil {
		return ctrl.Result{}, fmt.Errorf("remove finalizer of HostNetwork %s: %w", h.Name, err)
	}
	return ctrl.Result{}, nil
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

// revert runs the two steps of removing a policy's host side: apply the
// revert state (once, marking the deadline), then delete the policy when
// every node's enactment applied that generation, or when the deadline
// passed. It returns the nodes still pending and the deadline while it
// waits; both empty once the policy is deleted.
func (r *Reconciler) revert(ctx context.Context, h *vmv1alpha1.HostNetwork, policy *nmstatev1.NodeNetworkConfigurationPolicy) ([]string, time.Time, error) {
	raw, marked := policy.Annotations[vmv1alpha1.AnnotationRevertDeadline]
	if !marked {
		deadline := r.now().Add(r.revertTimeout()).UTC().Truncate(time.Second)
		state, err := desired.RevertState(policy.Spec.DesiredState)
		if err != nil {
			return nil, time.Time{}, fmt.Errorf("policy %s: %w", policy.Name, err)
		}
		want := &nmstatev1.NodeNetworkConfigurationPolicy{
			TypeMeta: metav1.TypeMeta{APIVersion: nmstatev1.GroupVersion.String(), Kind: "NodeNetworkConfigurationPolicy"},
			ObjectMeta: metav1.ObjectMeta{Name: policy.Name, Labels: policy.Labels, OwnerReferences: policy.OwnerReferences,
				Annotations: map[string]string{vmv1alpha1.AnnotationRevertDeadline: deadline.Format(time.RFC3339)}},
			Spec: nmstateshared.NodeNetworkConfigurationPolicySpec{NodeSelector: policy.Spec.NodeSelector, DesiredState: state},
		}
		if _, err := (apply.Applier{Client: r.Client}).Apply(ctx, policy, want); err != nil {
			return nil, time.Time{}, err
		}
		r.event(h, policy, corev1.EventTypeNormal, vmv1alpha1.ReasonReverting, "asked nmstate to revert what policy %s built; waiting until %s", policy.Name, deadline.Format(time.RFC3339))
		// Every node that enacted the policy has the revert still to apply.
		enacted, err := r.enactedNodes(ctx, policy)
		return enacted, deadline, err
	}
	deadline, err := time.Parse(time.RFC3339, raw)
	if err != nil {
		deadline = r.now() // a mangled deadline gives up now rather than never
	}
	pending, err := r.pendingNodes(ctx, policy)
	if err != nil {
		return nil, time.Time{}, err
	}
	if len(pending) > 0 && r.now().Before(deadline) {
		return pending, deadline, nil
	}
	if len(pending) > 0 {
		r.event(h, policy, corev1.EventTypeWarning, vmv1alpha1.ReasonRevertTimedOut,
			"nmstate did not revert policy %s on %s by %s; the policy is deleted and those nodes keep what it built: remove it by hand",
			policy.Name, strings.Join(pending, ", "), raw)
	}
	if err := client.IgnoreNotFound(r.Client.Delete(ctx, policy, client.Preconditions{UID: &policy.UID})); err != nil {
		return nil, time.Time{}, fmt.Errorf("delete policy %s: %w", policy.Name, err)
	}
	return nil, time.Time{}, nil
}

// pendingNodes are the nodes whose enactment of the policy has not applied
// its current generation. A node without an enactment never had it.
func (r *Reconciler) pendingNodes(ctx context.Context, policy *nmstatev1.NodeNetworkConfigurationPolicy) ([]string, error) {
	return r.nodesOfEnactments(ctx, policy, func(e *nmstatev1beta1.NodeNetworkConfigurationEnactment) bool {
		available := e.Status.Conditions.Find(nmstateshared.NodeNetworkConfigurationEnactmentConditionAvailable)
		return e.Status.PolicyGeneration < policy.Generation || available == nil || available.Status != corev1.ConditionTrue
	})
}

// enactedNodes are the nodes that have an enactment of the policy.
func (r *Reconciler) enactedNodes(ctx context.Context, policy *nmstatev1.NodeNetworkConfigurationPolicy) ([]string, error) {
	return r.nodesOfEnactments(ctx, policy, func(*nmstatev1beta1.NodeNetworkConfigurationEnactment) bool { return true })
}

func (r *Reconciler) nodesOfEnactments(ctx context.Context, policy *nmstatev1.NodeNetworkConfigurationPolicy,
	keep func(*nmstatev1beta1.NodeNetworkConfigurationEnactment) bool) ([]string, error) {
	var list nmstatev1beta1.NodeNetworkConfigurationEnactmentList
	if err := r.Client.List(ctx, &list, client.MatchingLabels{nmstateshared.EnactmentPolicyLabel: policy.Name}); err != nil {
		return nil, fmt.Errorf("list enactments of policy %s: %w", policy.Name, err)
	}
	var nodes []string
	for i := range list.Items {
		if keep(&list.Items[i]) {
			nodes = append(nodes, list.Items[i].Labels[nmstateshared.EnactmentNodeLabel])
		}
	}
	sort.Strings(nodes)
	return nodes, nil
}
