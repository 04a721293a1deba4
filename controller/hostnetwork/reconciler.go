package hostnetwork

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	nmstatev1 "github.com/nmstate/kubernetes-nmstate/api/v1"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/log"

	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
	"github.com/jianfenliu/vmoperator/controller/apply"
	"github.com/jianfenliu/vmoperator/controller/attach"
	"github.com/jianfenliu/vmoperator/controller/desired"
)

// DefaultRevertTimeout bounds how long a deletion waits for nmstate to
// revert the host side before it deletes the policies anyway.
const DefaultRevertTimeout = 5 * time.Minute

// Reconciler keeps each HostNetwork's policies and status.
type Reconciler struct {
	Client   client.Client
	Recorder events.EventRecorder
	// NMState says whether kubernetes-nmstate is installed.
	NMState bool
	// KubeVirt says whether KubeVirt is installed: without it no VM runs
	// on a network, and no edit is held for one.
	KubeVirt bool
	// Networks is the profile reconciler's policy, to find a network's users.
	Networks attach.Policy
	// RevertTimeout bounds the wait for a deletion's revert (DefaultRevertTimeout if zero).
	RevertTimeout time.Duration
	// CapabilityWakeInterval is the least time between two re-queues one
	// node's capability or label changes cause (0: every change at once).
	CapabilityWakeInterval time.Duration
	Now                    func() time.Time
}

func (r *Reconciler) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

func (r *Reconciler) revertTimeout() time.Duration {
	if r.RevertTimeout > 0 {
		return r.RevertTimeout
	}
	return DefaultRevertTimeout
}

// Reconcile brings one HostNetwork's policies and status up to date.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	var hostNetwork vmv1alpha1.HostNetwork
	if err := r.Client.Get(ctx, req.NamespacedName, &hostNetwork); err != nil {
		if apierrors.IsNotFound(err) {
			return ctrl.Result{}, r.deleteLeftReverts(ctx, req.Name)
		}
		return ctrl.Result{}, fmt.Errorf("read HostNetwork %s: %w", req.Name, err)
	}
	if !hostNetwork.DeletionTimestamp.IsZero() {
		return r.reconcileDeletion(ctx, &hostNetwork)
	}
	if !controllerutil.ContainsFinalizer(&hostNetwork, vmv1alpha1.FinalizerHostNetwork) {
		patch := client.MergeFrom(hostNetwork.DeepCopy())
		controllerutil.AddFinalizer(&hostNetwork, vmv1alpha1.FinalizerHostNetwork)
		if err := r.Client.Patch(ctx, &hostNetwork, patch); err != nil {
			return ctrl.Result{}, fmt.Errorf("add finalizer to HostNetwork %s: %w", hostNetwork.Name, err)
		}
	}
	original := hostNetwork.DeepCopy()
	world, err := r.observe(ctx)
	if err != nil {
		return ctrl.Result{}, err
	}
	plan := planOf(&hostNetwork, world)
	edit, applyErr := r.applyPolicies(ctx, &hostNetwork, world, plan)
	report := statusOf(&hostNetwork, world, plan)
	report.ObservedGeneration = hostNetwork.Generation
	report.BuiltOn = original.Status.BuiltOn
	if edit.builtOn != nil {
		report.BuiltOn = edit.builtOn
	}
	if applyErr != nil {
		reason, _ := apply.Classify(applyErr)
		report.Conditions = []metav1.Condition{{Type: vmv1alpha1.ConditionReady, Status: metav1.ConditionUnknown, Reason: reason,
			Message: "writing its policies failed: " + applyErr.Error()}}
		report.ObservedGeneration = original.Status.ObservedGeneration
	}
	if edit.held != nil {
		report.Conditions = append(report.Conditions, *edit.held)
		if was := meta.FindStatusCondition(original.Status.Conditions, vmv1alpha1.ConditionEditHeld); was == nil || was.Message != edit.held.Message {
			r.event(&hostNetwork, nil, corev1.EventTypeWarning, vmv1alpha1.ReasonEditHeld, "%s", edit.held.Message)
		}
	}
	return requeueAt(r.now(), edit.waits), errors.Join(applyErr, r.writeStatus(ctx, original, &hostNetwork, report))
}

// requeueAt wakes the reconcile at the first revert deadline (enactments
// wake it before, as nodes apply the reverts).
func requeueAt(now time.Time, waits []revertWait) ctrl.Result {
	next := time.Time{}
	for _, w := range waits {
		if next.IsZero() || w.deadline.Before(next) {
			next = w.deadline
		}
	}
	if next.IsZero() {
		return ctrl.Result{}
	}
	return ctrl.Result{RequeueAfter: max(next.Sub(now), time.Second)}
}

// edit is what applying a HostNetwork's plan came to.
type edit struct {
	// held, when set, is why the plan is not applied.
	held *metav1.Condition
	// waits are the reverts still under way.
	waits []revertWait
	// builtOn, when set, is the new builtOn record: the plan was written.
	// Unset (an edit held, a write failed), the record stays, and so does
	// what it remembers of nodes that left the nodeSelector.
	builtOn []vmv1alpha1.PolicyNodes
}

// applyPolicies applies a managed network's plan node by node. It compares
// what the group policies build on each node with what the plan builds
// there. When a node would lose something while VMs on the network run
// there, nothing of the edit is written: the EditHeld condition says why.
// Otherwise each node that loses something first gets a revert policy of
// its own (so the loss is recorded before any group policy changes), then
// the group policies are written and those of groups gone are deleted
// (deleting a policy does not touch the host): a node that keeps an
// interface is never told to remove it.
func (r *Reconciler) applyPolicies(ctx context.Context, h *vmv1alpha1.HostNetwork, w world, plan plan) (edit, error) {
	if !h.Spec.Managed || !r.NMState || plan.conflict != nil {
		return edit{}, nil
	}
	all, err := r.policiesOf(ctx, h.Name)
	if err != nil {
		return edit{}, err
	}
	groups, reverts := splitPolicies(all)
	before, err := builtOn(groups, w.nodes)
	if err != nil {
		return edit{}, err
	}
	if err := departed(before, groups, h.Status.BuiltOn, w.nodes); err != nil {
		return edit{}, err
	}
	after, err := builtOn(plan.policies, w.nodes)
	if err != nil {
		return edit{}, err
	}
	losses := lossesOf(before, after)
	if len(losses) > 0 {
		vms, err := r.vmsByNode(ctx, h.Name)
		if err != nil {
			return edit{}, err
		}
		if stops := blocked(losses, vms); len(stops) > 0 {
			// What the group policies build stays; reverts under way go on.
			waits, err := r.followReverts(ctx, h, reverts, before, w.nodes, nil, false)
			return edit{held: heldCondition(h, stops), waits: waits}, err
		}
	}
	written, err := r.recordReverts(ctx, h, losses, reverts, w.nodes)
	if err != nil {
		return edit{}, err
	}
	if err := r.writeGroups(ctx, h, plan, groups); err != nil {
		return edit{}, err
	}
	waits, err := r.followReverts(ctx, h, reverts, after, w.nodes, written, false)
	if err != nil {
		return edit{}, err
	}
	// A node that left is now remembered by its revert policy, not the record.
	return edit{waits: waits, builtOn: builtRecord(plan.policies, w.nodes)}, nil
}

// heldCondition says which nodes hold an edit back (at most maxProblems).
func heldCondition(h *vmv1alpha1.HostNetwork, stops []string) *metav1.Condition {
	listed := strings.Join(stops[:min(len(stops), maxProblems)], "; ")
	if len(stops) > maxProblems {
		listed += fmt.Sprintf("; and %d more node(s)", len(stops)-maxProblems)
	}
	return &metav1.Condition{Type: vmv1alpha1.ConditionEditHeld, Status: metav1.ConditionTrue, Reason: vmv1alpha1.ReasonInUse,
		Message: fmt.Sprintf("HostNetwork %s: generation %d is not applied, it would take from %d node(s) what VMs there use: %s; it is applied once those VMs are gone",
			h.Name, h.Generation, len(stops), listed)}
}

// recordReverts writes a revert policy for each node that loses something,
// merged with one under way for it. It returns the names it wrote.
func (r *Reconciler) recordReverts(ctx context.Context, h *vmv1alpha1.HostNetwork, losses map[string]loss,
	reverts []*nmstatev1.NodeNetworkConfigurationPolicy, nodes []corev1.Node) (map[string]bool, error) {
	byName := map[string]*nmstatev1.NodeNetworkConfigurationPolicy{}
	for _, policy := range reverts {
		byName[policy.Name] = policy
	}
	written := map[string]bool{}
	for _, node := range slices.Sorted(maps.Keys(losses)) {
		if len(losses[node].revert) == 0 {
			continue
		}
		pending := byName[desired.RevertPolicyName(h.Name, "node "+node)]
		want, err := r.nodeRevert(h, node, losses[node].revert, nodes, pending)
		if err != nil {
			return nil, fmt.Errorf("HostNetwork %s: %w", h.Name, err)
		}
		wrote, err := r.ensureRevert(ctx, want, pending)
		if err != nil {
			return nil, err
		}
		if wrote {
			written[want.Name] = true
			r.event(h, want, corev1.EventTypeNormal, vmv1alpha1.ReasonReverting, "asked nmstate to remove %s from node %s (revert policy %s); waiting until %s",
				strings.Join(losses[node].what(), ", "), node, want.Name, want.Annotations[vmv1alpha1.AnnotationRevertDeadline])
		}
	}
	return written, nil
}

// writeGroups writes the plan's group policies and deletes those of
// groups it no longer has.
func (r *Reconciler) writeGroups(ctx context.Context, h *vmv1alpha1.HostNetwork, plan plan, groups []*nmstatev1.NodeNetworkConfigurationPolicy) error {
	applier := apply.Applier{Client: r.Client}
	wanted := map[string]bool{}
	for _, policy := range plan.policies {
		wanted[policy.Name] = true
		existing := &nmstatev1.NodeNetworkConfigurationPolicy{}
		err := r.Client.Get(ctx, client.ObjectKeyFromObject(policy), existing)
		switch {
		case apierrors.IsNotFound(err):
			existing = nil
		case err != nil:
			return fmt.Errorf("read policy %s: %w", policy.Name, err)
		case desired.HostNetworkOf(existing) != h.Name:
			return fmt.Errorf("policy %s exists and was not made for HostNetwork %s; it is left untouched", policy.Name, h.Name)
		}
		wrote, err := applier.Apply(ctx, policyOrNil(existing), policy)
		if err != nil {
			return err
		}
		if wrote {
			log.FromContext(ctx).V(1).Info("policy written", "policy", policy.Name)
		}
	}
	var errs []error
	for _, policy := range groups {
		if !wanted[policy.Name] {
			errs = append(errs, r.deletePolicy(ctx, policy))
		}
	}
	return errors.Join(errs...)
}

func policyOrNil(policy *nmstatev1.NodeNetworkConfigurationPolicy) client.Object {
	if policy == nil {
		return nil
	}
	return policy
}

// policiesOf lists the policies the operator made for a HostNetwork.
func (r *Reconciler) policiesOf(ctx context.Context, name string) ([]nmstatev1.NodeNetworkConfigurationPolicy, error) {
	if !r.NMState {
		return nil, nil
	}
	var list nmstatev1.NodeNetworkConfigurationPolicyList
	if err := r.Client.List(ctx, &list, client.MatchingLabels{vmv1alpha1.LabelManagedBy: vmv1alpha1.ManagedByValue, vmv1alpha1.LabelHostNetwork: name}); err != nil {
		return nil, fmt.Errorf("list policies of HostNetwork %s: %w", name, err)
	}
	return list.Items, nil
}

// writeStatus writes the status when it changed, keeping condition
// transition times of conditions whose status did not change.
func (r *Reconciler) writeStatus(ctx context.Context, original, hostNetwork *vmv1alpha1.HostNetwork, next vmv1alpha1.HostNetworkStatus) error {
	// A copy: SetStatusCondition changes a condition in place, and changing
	// original's would leave a new message out of the patch from original
	// (and, when only a message changed, skip the write altogether).
	conditions := slices.Clone(original.Status.Conditions)
	for _, c := range next.Conditions {
		c.ObservedGeneration = hostNetwork.Generation
		meta.SetStatusCondition(&conditions, c)
	}
	for _, c := range original.Status.Conditions {
		if meta.FindStatusCondition(next.Conditions, c.Type) == nil {
			meta.RemoveStatusCondition(&conditions, c.Type)
		}
	}
	next.Conditions = conditions
	if apiequality.Semantic.DeepEqual(original.Status, next) {
		return nil
	}
	hostNetwork.Status = next
	if err := r.Client.Status().Patch(ctx, hostNetwork, client.MergeFrom(original)); err != nil {
		return fmt.Errorf("write status of HostNetwork %s: %w", hostNetwork.Name, err)
	}
	return nil
}

// event records an event on the HostNetwork about its policy (see the
// profile reconciler's event on why the related object is named).
func (r *Reconciler) event(hostNetwork *vmv1alpha1.HostNetwork, policy client.Object, eventType, reason, format string, args ...any) {
	if r.Recorder != nil {
		r.Recorder.Eventf(hostNetwork, policy, eventType, reason, reason, format, args...)
	}
}
