package profile

import (
	"context"
	"fmt"
	"time"

	apiequality "k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
	"github.com/jianfenliu/vmoperator/controller/status"
)

// Finalizer keeps a deleted profile until its retained disks are released and
// the shared host-network policies it was the last user of are removed.
const Finalizer = "vm.example.com/cleanup"

// ReadyObserver is told how long a profile took from creation to its first Ready.
type ReadyObserver interface {
	ObserveTimeToReady(d time.Duration)
}

// Reconciler turns a VirtualMachineProfile into its children and its status.
type Reconciler struct {
	Client   client.Client
	Scheme   *k8sruntime.Scheme
	Recorder events.EventRecorder
	// Deps says which optional APIs (KubeVirt, CDI, Multus, nmstate) the cluster serves.
	Deps Dependencies
	// DefaultSRIOVResource is the device-plugin resource of SR-IOV networks
	// that do not name one.
	DefaultSRIOVResource string
	// LeaseNamespace holds the agents' per-node Leases.
	LeaseNamespace string
	// AllowEmulation places VMs on nodes without usable KVM (KubeVirt's useEmulation).
	AllowEmulation bool
	// Ready, if set, receives the time from creation to Ready.
	Ready ReadyObserver
	// Now is the clock; tests may replace it.
	Now func() time.Time
}

// step is one part of the reconcile. It records what it found in observed
// and returns an error only for failures worth a retry (API errors).
type step func(ctx context.Context, profile *vmv1alpha1.VirtualMachineProfile, observed *status.Observed) error

// Reconcile brings one profile's children and status up to date.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	var profile vmv1alpha1.VirtualMachineProfile
	if err := r.Client.Get(ctx, req.NamespacedName, &profile); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !profile.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, r.finalize(ctx, &profile)
	}
	if !controllerutil.ContainsFinalizer(&profile, Finalizer) {
		// The patch triggers the next reconcile, which does the work.
		patch := client.MergeFrom(profile.DeepCopy())
		controllerutil.AddFinalizer(&profile, Finalizer)
		return ctrl.Result{}, r.Client.Patch(ctx, &profile, patch)
	}
	observed := &status.Observed{RunStrategy: profile.Spec.EffectiveRunStrategy()}
	reconcileErr := r.runSteps(ctx, &profile, observed)
	if err := r.writeStatus(ctx, &profile, observed, reconcileErr == nil); err != nil {
		return ctrl.Result{}, err
	}
	return ctrl.Result{}, reconcileErr
}

func (r *Reconciler) runSteps(ctx context.Context, profile *vmv1alpha1.VirtualMachineProfile, observed *status.Observed) error {
	steps := []step{
		r.reconcileNetworks,
		r.reconcileHostNetwork,
		r.reconcileDisks,
		r.reconcileCloudInit,
		r.reconcilePlacement,
		r.reconcileVM,
	}
	for _, run := range steps {
		if err := run(ctx, profile, observed); err != nil {
			r.event(profile, "Warning", "ReconcileFailed", "%v", err)
			return err
		}
	}
	return nil
}

// writeStatus computes the new status and writes it only when it differs
// from the stored one: one write per reconcile at most, none at rest.
func (r *Reconciler) writeStatus(ctx context.Context, profile *vmv1alpha1.VirtualMachineProfile, observed *status.Observed, succeeded bool) error {
	original := profile.DeepCopy()
	next := &profile.Status
	wasReady := meta.IsStatusConditionTrue(next.Conditions, vmv1alpha1.ConditionReady)
	previousReady := meta.FindStatusCondition(original.Status.Conditions, vmv1alpha1.ConditionReady)
	next.Phase = status.Phase(observed)
	next.Networks = status.Networks(profile, observed.VMI)
	next.Volumes = observed.VolumeStatuses
	next.VMName, next.NodeName = "", ""
	if observed.VM != nil {
		next.VMName = observed.VM.Name
	}
	if observed.VMI != nil {
		next.NodeName = observed.VMI.Status.NodeName
	}
	setCondition(next, profile.Generation, status.Ready(observed))
	setCondition(next, profile.Generation, status.NetworksConfigured(observed))
	setCondition(next, profile.Generation, status.VolumesBound(observed))
	setOptionalCondition(next, profile.Generation, vmv1alpha1.ConditionScheduled, status.Scheduled(observed))
	setOptionalCondition(next, profile.Generation, "RestartRequired", status.RestartRequired(observed))
	next.Placement = observed.Placement
	if succeeded {
		next.ObservedGeneration = profile.Generation
	}
	if apiequality.Semantic.DeepEqual(original.Status, profile.Status) {
		return nil
	}
	if err := r.Client.Status().Patch(ctx, profile, client.MergeFrom(original)); err != nil {
		return fmt.Errorf("write status: %w", err)
	}
	r.warnOnNewProblem(profile, observed, previousReady)
	if !wasReady && meta.IsStatusConditionTrue(next.Conditions, vmv1alpha1.ConditionReady) && r.Ready != nil {
		r.Ready.ObserveTimeToReady(r.now().Sub(profile.CreationTimestamp.Time))
	}
	return nil
}

// warnOnNewProblem records a Warning event when the profile runs into a
// problem it did not have before: once per problem, not once per reconcile.
func (r *Reconciler) warnOnNewProblem(profile *vmv1alpha1.VirtualMachineProfile, observed *status.Observed, previous *metav1.Condition) {
	ready := status.Ready(observed)
	if ready.Status == metav1.ConditionTrue || !observed.Holds() && status.Phase(observed) != vmv1alpha1.PhaseError {
		return
	}
	if previous != nil && previous.Reason == ready.Reason && previous.Message == ready.Message {
		return
	}
	r.event(profile, "Warning", ready.Reason, "%s", ready.Message)
}

// setCondition keeps the transition time when the status did not change, so
// an unchanged condition compares equal and causes no write.
func setCondition(s *vmv1alpha1.VirtualMachineProfileStatus, generation int64, c metav1.Condition) {
	c.ObservedGeneration = generation
	meta.SetStatusCondition(&s.Conditions, c)
}

func setOptionalCondition(s *vmv1alpha1.VirtualMachineProfileStatus, generation int64, conditionType string, c *metav1.Condition) {
	if c == nil {
		meta.RemoveStatusCondition(&s.Conditions, conditionType)
		return
	}
	setCondition(s, generation, *c)
}

func (r *Reconciler) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

// event records an event on the profile. Messages never carry secret data:
// callers pass names, never contents.
func (r *Reconciler) event(profile *vmv1alpha1.VirtualMachineProfile, eventType, reason, format string, args ...any) {
	if r.Recorder == nil {
		return
	}
	r.Recorder.Eventf(profile, nil, eventType, reason, reason, format, args...)
}
