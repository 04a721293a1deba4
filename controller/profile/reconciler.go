package profile

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
	"github.com/jianfenliu/vmoperator/controller/apply"
	"github.com/jianfenliu/vmoperator/controller/attach"
	"github.com/jianfenliu/vmoperator/controller/nodewake"
	"github.com/jianfenliu/vmoperator/controller/placement"
	"github.com/jianfenliu/vmoperator/controller/status"
)

// ReadyObserver is told how long a profile took from creation to its first Ready.
type ReadyObserver interface {
	ObserveTimeToReady(d time.Duration)
}

// Reconciler turns a VirtualMachineProfile into its children and its status.
type Reconciler struct {
	Client client.Client
	// APIReader reads from the apiserver, bypassing the cache, where acting on
	// a stale cache would lose something: before adopting a child left
	// without owner (liveForAdoption).
	APIReader client.Reader
	Scheme    *k8sruntime.Scheme
	Recorder  events.EventRecorder
	// Deps says which optional APIs (KubeVirt, CDI, Multus, nmstate) the cluster serves.
	Deps Dependencies
	// LeaseNamespace holds the agents' per-node Leases.
	LeaseNamespace string
	// AllowEmulation places VMs on nodes without usable KVM (KubeVirt's useEmulation).
	AllowEmulation bool
	// Networks says how undeclared host networks and shared attachments are treated.
	Networks attach.Policy
	// Index remembers what each profile needs from nodes (filled here, read
	// by the event handlers and the node labeller).
	Index *placement.Index
	// Ready, if set, receives the time from creation to Ready.
	Ready ReadyObserver
	// Now is the clock; tests may replace it.
	Now func() time.Time
	// Workers is how many profiles reconcile at once (0: one). A profile is
	// never reconciled by two workers at the same time.
	Workers int
	// StatusInterval is the least time between two status writes of one
	// profile that only record progress (nothing wrong): a change within it
	// is written when it ends, folded with whatever came next. Zero writes
	// every change at once.
	StatusInterval time.Duration
	// CapabilityWakeInterval is the least time between two re-queues that
	// one node's changes (its NodeCapability, its labels) cause; changes
	// within it are delivered together at its end. Zero re-queues on
	// every change.
	CapabilityWakeInterval time.Duration
	// nodeWakes applies CapabilityWakeInterval (made by SetupWithManager).
	nodeWakes *nodewake.Limiter
	// lastStatusWrite remembers when each profile's status was last written
	// (types.NamespacedName → time.Time), for StatusInterval.
	lastStatusWrite sync.Map
}

func (r *Reconciler) applier() apply.Applier { return apply.Applier{Client: r.Client} }

// step is one part of the reconcile. It records what it found in observed.
// An error means the step could not finish (the apiserver refused or did
// not answer); the runner turns it into a check on the step's part, so the
// status says what could not be done instead of passing it.
type step struct {
	name string
	run  func(ctx context.Context, profile *vmv1alpha1.VirtualMachineProfile, observed *status.Observed) error
	// fail records the step's error in observed.
	fail func(observed *status.Observed, check status.Check)
}

// Reconcile brings one profile's children and status up to date.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	var profile vmv1alpha1.VirtualMachineProfile
	err := r.Client.Get(ctx, req.NamespacedName, &profile)
	if apierrors.IsNotFound(err) {
		// Nothing to collect: children still owned by the deleted profile
		// go with the garbage collector (also one a reconcile racing the
		// deletion created, which carries the deleted UID), and children an
		// orphan deletion (kubectl delete --cascade=orphan) left without
		// owner are kept, as asked, for a profile re-created with this
		// name to adopt (ownershipOf).
		r.Index.Delete(req.NamespacedName)
		r.lastStatusWrite.Delete(req.NamespacedName)
		return ctrl.Result{}, nil
	}
	if err != nil {
		return ctrl.Result{}, fmt.Errorf("read profile %s: %w", req.NamespacedName, err)
	}
	if !profile.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, r.finalizeLegacy(ctx, &profile)
	}
	observed := &status.Observed{RunStrategy: profile.Spec.EffectiveRunStrategy()}
	reconcileErr := r.runSteps(ctx, &profile, observed)
	if err := r.writeStatus(ctx, &profile, observed, reconcileErr == nil); err != nil {
		return ctrl.Result{}, errors.Join(reconcileErr, err)
	}
	if reconcileErr == nil {
		reconcileErr = r.dropLegacyFinalizer(ctx, &profile)
	}
	return ctrl.Result{RequeueAfter: observed.RecheckAfter}, reconcileErr
}

// runSteps runs every step, even after one failed: each part reports on its
// own, and the VM is always observed. The VM is only written when every
// step succeeded and nothing holds it.
func (r *Reconciler) runSteps(ctx context.Context, profile *vmv1alpha1.VirtualMachineProfile, observed *status.Observed) error {
	blocker := func(o *status.Observed, check status.Check) { o.Blockers = append(o.Blockers, check) }
	steps := []step{
		{"networks", r.reconcileNetworks, func(o *status.Observed, c status.Check) { o.Networks = c }},
		{"disks", r.reconcileDisks, func(o *status.Observed, c status.Check) { o.Volumes = c }},
		{"cloud-init", r.reconcileCloudInit, blocker},
		{"placement", r.reconcilePlacement, blocker},
	}
	logger := log.FromContext(ctx)
	var errs []error
	for _, s := range steps {
		if err := s.run(ctx, profile, observed); err != nil {
			logger.Error(err, "reconcile step failed", "step", s.name)
			s.fail(observed, failedCheck(s.name, err))
			errs = append(errs, err)
		}
	}
	if !r.Deps.KubeVirt {
		blocker(observed, status.Wait(vmv1alpha1.ReasonDependencyMissing,
			"KubeVirt (kubevirt.io/v1 VirtualMachine) is not installed; networks and disks are prepared, the VM waits"))
	}
	if len(errs) == 0 && !observed.Holds() {
		if err := r.applyVM(ctx, profile, observed); err != nil {
			logger.Error(err, "reconcile step failed", "step", "VM")
			blocker(observed, failedCheck("VM", err))
			errs = append(errs, err)
		}
	} else if len(errs) == 0 {
		logger.V(1).Info("VM held", "reason", firstHold(observed))
	}
	if err := r.observeVM(ctx, profile, observed); err != nil {
		logger.Error(err, "reconcile step failed", "step", "observe VM")
		blocker(observed, failedCheck("VM", err)) // else the status would report the VM as not made
		errs = append(errs, err)
	} else {
		explainRunningExclusion(observed)
		if err := r.recoverFromNodeLoss(ctx, profile, observed); err != nil {
			logger.Error(err, "reconcile step failed", "step", "node loss")
			blocker(observed, failedCheck("node loss", err))
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// failedCheck says what a failed step means for its part: a definitive
// refusal (quota, admission, RBAC, invalid) needs someone to act; anything
// else leaves the part unknown until a retry succeeds.
func failedCheck(part string, err error) status.Check {
	reason, definitive := apply.Classify(err)
	if definitive {
		return status.Problem(reason, "%s: %v", part, err)
	}
	return status.Unknown(reason, "%s could not be checked: %v", part, err)
}

func firstHold(observed *status.Observed) string {
	for _, check := range append(append([]status.Check{}, observed.Blockers...), observed.Networks, observed.Volumes) {
		if check.Failed && check.Holds {
			return check.Reason
		}
	}
	return ""
}

// writeStatus computes the new status and writes it only when it differs
// from the stored one: one write per reconcile at most, none at rest.
func (r *Reconciler) writeStatus(ctx context.Context, profile *vmv1alpha1.VirtualMachineProfile, observed *status.Observed, succeeded bool) error {
	original := profile.DeepCopy()
	next := &profile.Status
	wasReady := meta.IsStatusConditionTrue(next.Conditions, vmv1alpha1.ConditionReady)
	previousReady := meta.FindStatusCondition(original.Status.Conditions, vmv1alpha1.ConditionReady)
	next.Phase = status.Phase(observed)
	next.Networks = status.Networks(profile, observed.VMI, observed.Attachments)
	next.Addresses = status.Addresses(next.Networks)
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
	setOptionalCondition(next, profile.Generation, vmv1alpha1.ConditionRestartRequired, status.RestartRequired(observed))
	next.Placement = observed.Placement
	if succeeded {
		next.ObservedGeneration = profile.Generation
	}
	if apiequality.Semantic.DeepEqual(original.Status, profile.Status) || status.OnlyBrief(observed) {
		return nil
	}
	if wait := r.progressWait(profile, observed); wait > 0 {
		observed.RecheckAfter = shortest(observed.RecheckAfter, wait)
		return nil
	}
	if err := r.Client.Status().Patch(ctx, profile, client.MergeFrom(original)); err != nil {
		return fmt.Errorf("write status of profile %s/%s: %w", profile.Namespace, profile.Name, err)
	}
	r.lastStatusWrite.Store(client.ObjectKeyFromObject(profile), r.now())
	log.FromContext(ctx).V(1).Info("status written", "phase", next.Phase, "ready", meta.FindStatusCondition(next.Conditions, vmv1alpha1.ConditionReady).Reason)
	r.warnOnNewProblem(profile, observed, previousReady)
	if !wasReady && meta.IsStatusConditionTrue(next.Conditions, vmv1alpha1.ConditionReady) && r.Ready != nil {
		r.Ready.ObserveTimeToReady(r.now().Sub(profile.CreationTimestamp.Time))
	}
	return nil
}

// progressWait is how long a status that records only progress waits
// before it is written, so that a profile moving through several states
// within StatusInterval (claim bound, VM created, instance scheduled,
// running) gets one write for them. A status that says something is wrong
// is written at once. It folds states that follow within the interval
// (two status writes per profile at 60 profiles in make bench); at 1,000,
// where the simulator takes seconds between states, it saves none (3.3).
func (r *Reconciler) progressWait(profile *vmv1alpha1.VirtualMachineProfile, observed *status.Observed) time.Duration {
	if r.StatusInterval <= 0 || status.Warns(observed) {
		return 0
	}
	last, ok := r.lastStatusWrite.Load(client.ObjectKeyFromObject(profile))
	if !ok {
		return 0
	}
	return last.(time.Time).Add(r.StatusInterval).Sub(r.now())
}

// shortest is the shorter of two waits, zero meaning none.
func shortest(a, b time.Duration) time.Duration {
	if a <= 0 || (b > 0 && b < a) {
		return b
	}
	return a
}

// warnOnNewProblem records a Warning event when the profile runs into a
// problem it did not have before: once per problem, not once per reconcile
// or retry. Its reason is the Ready condition's.
func (r *Reconciler) warnOnNewProblem(profile *vmv1alpha1.VirtualMachineProfile, observed *status.Observed, previous *metav1.Condition) {
	ready := status.Ready(observed)
	if ready.Status == metav1.ConditionTrue || !status.Warns(observed) {
		return
	}
	if previous != nil && previous.Reason == ready.Reason && previous.Message == ready.Message {
		return
	}
	r.event(profile, nil, corev1.EventTypeWarning, ready.Reason, "%s", ready.Message)
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

// event records an event on the profile about related, the child object
// it concerns (nil for none). Naming the child matters beyond kubectl: the
// events API folds events with the same reason and objects into one series
// and keeps only the first message, so "created Secret" would hide
// "created VirtualMachine" a moment later. Messages never carry secret
// data: callers pass names, never contents.
func (r *Reconciler) event(profile *vmv1alpha1.VirtualMachineProfile, related client.Object, eventType, reason, format string, args ...any) {
	if r.Recorder == nil {
		return
	}
	r.Recorder.Eventf(profile, related, eventType, reason, reason, format, args...)
}
