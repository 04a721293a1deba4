package hostnetwork

import (
	"context"
	"errors"
	"fmt"
	"time"

	nmstatev1 "github.com/nmstate/kubernetes-nmstate/api/v1"
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
		return ctrl.Result{}, client.IgnoreNotFound(err)
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
	applyErr := r.applyPolicies(ctx, &hostNetwork, plan)
	report := statusOf(&hostNetwork, world, plan)
	report.ObservedGeneration = hostNetwork.Generation
	if applyErr != nil {
		reason, _ := apply.Classify(applyErr)
		report.Conditions = []metav1.Condition{{Type: vmv1alpha1.ConditionReady, Status: metav1.ConditionUnknown, Reason: reason,
			Message: "writing its policies failed: " + applyErr.Error()}}
		report.ObservedGeneration = original.Status.ObservedGeneration
	}
	return ctrl.Result{}, errors.Join(applyErr, r.writeStatus(ctx, original, &hostNetwork, report))
}

// applyPolicies writes the policies of a managed network (one per uplink
// group) unless it is in conflict, and reverts and deletes those of groups
// it no longer has.
func (r *Reconciler) applyPolicies(ctx context.Context, hostNetwork *vmv1alpha1.HostNetwork, plan plan) error {
	if !hostNetwork.Spec.Managed || !r.NMState || plan.conflict != nil {
		return nil
	}
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
		case desired.HostNetworkOf(existing) != hostNetwork.Name:
			return fmt.Errorf("policy %s exists and was not made for HostNetwork %s; it is left untouched", policy.Name, hostNetwork.Name)
		}
		wrote, err := applier.Apply(ctx, policyOrNil(existing), policy)
		if err != nil {
			return err
		}
		if wrote {
			log.FromContext(ctx).V(1).Info("policy written", "policy", policy.Name)
		}
	}
	stale, err := r.policiesOf(ctx, hostNetwork.Name)
	if err != nil {
		return err
	}
	var errs []error
	for i := range stale {
		if !wanted[stale[i].Name] {
			_, _, err := r.revert(ctx, hostNetwork, &stale[i])
			errs = append(errs, err)
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
	conditions := original.Status.Conditions
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
