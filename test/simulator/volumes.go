package simulator

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kubevirtv1 "kubevirt.io/api/core/v1"
	cdiv1 "kubevirt.io/containerized-data-importer-api/pkg/apis/core/v1beta1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

func (s *Simulator) setupVolumes(mgr ctrl.Manager) error {
	err := ctrl.NewControllerManagedBy(mgr).Named("sim-cdi").
		For(&cdiv1.DataVolume{}).
		Owns(&corev1.PersistentVolumeClaim{}).
		Complete(ctrlFunc(s.reconcileDataVolume))
	if err != nil {
		return fmt.Errorf("set up controller sim-cdi: %w", err)
	}
	err = ctrl.NewControllerManagedBy(mgr).Named("sim-pv-binder").
		For(&corev1.PersistentVolumeClaim{}).
		// A WaitForFirstConsumer claim binds once an instance using it is scheduled.
		Watches(&kubevirtv1.VirtualMachineInstance{}, handler.EnqueueRequestsFromMapFunc(claimsOfInstance)).
		Complete(ctrlFunc(s.reconcileClaim))
	if err != nil {
		return fmt.Errorf("set up controller sim-pv-binder: %w", err)
	}
	return nil
}

func claimsOfInstance(_ context.Context, obj client.Object) []reconcile.Request {
	var requests []reconcile.Request
	for _, name := range claimNames(obj.(*kubevirtv1.VirtualMachineInstance)) {
		requests = append(requests, reconcile.Request{NamespacedName: client.ObjectKey{Namespace: obj.GetNamespace(), Name: name}})
	}
	return requests
}

// Switches of the simulated CDI, as labels on a namespace: a test turns
// upstream behaviour on for the DataVolumes in its namespace only.
const (
	// LabelCDIImportError makes every import in the namespace fail the way
	// CDI retries forever (CDI pkg/controller/util.go
	// setAnnotationsFromPodWithPrefix, pkg/controller/datavolume/
	// import-controller.go updateStatusPhase: only a fatal error sets
	// Failed): the phase stays ImportInProgress (value "Error") or
	// ImportScheduled (value "ImagePullFailed"), restartCount grows with a
	// doubling backoff, and the Running condition is False with the value as
	// reason. Removing the label lets the next retry succeed.
	LabelCDIImportError = "sim.vm.example.com/cdi-import-error"
	// LabelCDIFilesystemOverhead inflates the request of every claim CDI
	// makes for a DataVolume's storage by this overhead ("0.06", CDI's
	// default, pkg/common/common.go DefaultGlobalOverhead), as CDI's
	// renderPvcSpecVolumeSize does for Filesystem volumes (pkg/controller/
	// datavolume/util.go, pkg/util/util.go GetRequiredSpace).
	LabelCDIFilesystemOverhead = "sim.vm.example.com/cdi-filesystem-overhead"
	// LabelCDIHoldClaims ("true") keeps CDI from making claims in the
	// namespace until the label goes: a slow CDI, so that the VM exists
	// before its claim, as KubeVirt sees it on a busy cluster
	// (pkg/virt-controller/watch/vmi/datavolumes.go, "PVC ... does not
	// exist, waiting for it to appear").
	LabelCDIHoldClaims = "sim.vm.example.com/cdi-hold-claims"
)

// cdiSwitches are the switches set on a namespace.
type cdiSwitches struct {
	importError string
	overhead    float64
	holdClaims  bool
}

func (s *Simulator) cdiSwitchesOf(ctx context.Context, namespace string) (cdiSwitches, error) {
	var ns corev1.Namespace
	if err := s.client.Get(ctx, client.ObjectKey{Name: namespace}, &ns); err != nil {
		return cdiSwitches{}, fmt.Errorf("read the CDI switches of namespace %s: %w", namespace, err)
	}
	switches := cdiSwitches{importError: ns.Labels[LabelCDIImportError], holdClaims: ns.Labels[LabelCDIHoldClaims] == "true"}
	if value, ok := ns.Labels[LabelCDIFilesystemOverhead]; ok {
		overhead, err := strconv.ParseFloat(value, 64)
		if err != nil || overhead < 0 || overhead >= 1 {
			return switches, fmt.Errorf("namespace %s: label %s=%q is no overhead in [0, 1)", namespace, LabelCDIFilesystemOverhead, value)
		}
		switches.overhead = overhead
	}
	return switches, nil
}

// holdClaimsRecheck is how often a held claim is looked at again.
const holdClaimsRecheck = time.Second

// reconcileDataVolume plays CDI: a claim named like the DataVolume, then the
// import "succeeds" once the claim is bound (or retries, see
// LabelCDIImportError).
func (s *Simulator) reconcileDataVolume(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	var dv cdiv1.DataVolume
	if err := s.client.Get(ctx, req.NamespacedName, &dv); err != nil || !dv.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	switches, err := s.cdiSwitchesOf(ctx, dv.Namespace)
	if err != nil {
		return ctrl.Result{}, err
	}
	var claim corev1.PersistentVolumeClaim
	err = s.client.Get(ctx, req.NamespacedName, &claim)
	if apierrors.IsNotFound(err) {
		if switches.holdClaims {
			return ctrl.Result{RequeueAfter: holdClaimsRecheck}, nil
		}
		if err := s.client.Create(ctx, claimFor(&dv, switches.overhead), client.FieldOwner(FieldOwner)); err != nil {
			return ctrl.Result{}, fmt.Errorf("create PersistentVolumeClaim %s for its DataVolume: %w", req.NamespacedName, err)
		}
		return ctrl.Result{}, nil
	}
	if err != nil {
		return ctrl.Result{}, fmt.Errorf("get PersistentVolumeClaim %s: %w", req.NamespacedName, err)
	}
	next := dv.Status.DeepCopy()
	next.ClaimName = claim.Name
	var result ctrl.Result
	switch {
	case switches.importError != "" && next.Phase != cdiv1.Succeeded:
		result.RequeueAfter = importRetry(next, switches.importError, importSource(&dv), time.Now())
	case claim.Status.Phase == corev1.ClaimBound:
		next.Phase, next.Progress = cdiv1.Succeeded, "100.0%"
		importCompleted(next)
	case s.waitsForConsumer(ctx, claim.Spec.StorageClassName):
		next.Phase, next.Progress = cdiv1.WaitForFirstConsumer, "N/A"
	default:
		next.Phase, next.Progress = cdiv1.ImportScheduled, "N/A"
	}
	if apiequality.Semantic.DeepEqual(&dv.Status, next) {
		return result, nil
	}
	dv.Status = *next
	if err := s.client.Status().Update(ctx, &dv, client.FieldOwner(FieldOwner)); err != nil {
		return ctrl.Result{}, fmt.Errorf("update the status of DataVolume %s/%s: %w", dv.Namespace, dv.Name, err)
	}
	return result, nil
}

// importRetry plays a failing importer pod restarted by the kubelet: the
// phase CDI keeps while it retries, Running=False with the reason and a
// message as CDI renders them, and restartCount raised once per backoff
// (kubelet doubles it; 1 s here, up to a minute, so tests see retries
// quickly). It returns when to look again.
func importRetry(status *cdiv1.DataVolumeStatus, reason, source string, now time.Time) time.Duration {
	status.Phase, status.Progress = cdiv1.ImportInProgress, "N/A"
	message := "Unable to process data: " + source + ": unexpected status code 401 Unauthorized"
	if reason == "ImagePullFailed" {
		// CDI: fmt.Sprintf("%s: %s", common.ImagePullFailureText, image).
		status.Phase, message = cdiv1.ImportScheduled, "failed to pull image: "+source
	}
	backoff := min(time.Second<<min(status.RestartCount, 6), time.Minute)
	running := findDVCondition(status, cdiv1.DataVolumeRunning)
	if running == nil {
		status.Conditions = append(status.Conditions, cdiv1.DataVolumeCondition{Type: cdiv1.DataVolumeRunning})
		running = &status.Conditions[len(status.Conditions)-1]
	}
	if running.Status == corev1.ConditionFalse && running.Reason == reason {
		if wait := running.LastHeartbeatTime.Add(backoff).Sub(now); wait > 0 {
			return wait
		}
		status.RestartCount++
	}
	stamp := metav1.NewTime(now)
	if running.Status != corev1.ConditionFalse {
		running.LastTransitionTime = stamp
	}
	running.Status, running.Reason, running.Message, running.LastHeartbeatTime = corev1.ConditionFalse, reason, message, stamp
	return backoff
}

// importCompleted sets what CDI leaves on a finished import: Running=False
// with the importer pod's terminated reason, Completed.
func importCompleted(status *cdiv1.DataVolumeStatus) {
	running := findDVCondition(status, cdiv1.DataVolumeRunning)
	if running == nil || running.Reason == "Completed" {
		return
	}
	running.Status, running.Reason, running.Message = corev1.ConditionFalse, "Completed", "Import Complete"
	running.LastTransitionTime, running.LastHeartbeatTime = metav1.Now(), metav1.Now()
}

func findDVCondition(status *cdiv1.DataVolumeStatus, conditionType cdiv1.DataVolumeConditionType) *cdiv1.DataVolumeCondition {
	for i := range status.Conditions {
		if status.Conditions[i].Type == conditionType {
			return &status.Conditions[i]
		}
	}
	return nil
}

func importSource(dv *cdiv1.DataVolume) string {
	if dv.Spec.Source != nil && dv.Spec.Source.Registry != nil && dv.Spec.Source.Registry.URL != nil {
		return *dv.Spec.Source.Registry.URL
	}
	return "the source"
}

// claimFor is the claim CDI makes for a DataVolume: its labels and
// annotations (CDI copies both, pkg/controller/datavolume/controller-base.go
// newPersistentVolumeClaim), its storage, and the request inflated by the
// filesystem overhead for Filesystem volumes.
func claimFor(dv *cdiv1.DataVolume, overhead float64) *corev1.PersistentVolumeClaim {
	claim := &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{
			Name:            dv.Name,
			Namespace:       dv.Namespace,
			Labels:          dv.Labels,
			Annotations:     dv.Annotations,
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(dv, cdiv1.SchemeGroupVersion.WithKind("DataVolume"))},
		},
	}
	if dv.Spec.Storage != nil {
		claim.Spec.AccessModes = dv.Spec.Storage.AccessModes
		claim.Spec.Resources = *dv.Spec.Storage.Resources.DeepCopy()
		claim.Spec.StorageClassName = dv.Spec.Storage.StorageClassName
		claim.Spec.VolumeMode = dv.Spec.Storage.VolumeMode
		if size, ok := claim.Spec.Resources.Requests[corev1.ResourceStorage]; ok && overhead > 0 &&
			(claim.Spec.VolumeMode == nil || *claim.Spec.VolumeMode == corev1.PersistentVolumeFilesystem) {
			claim.Spec.Resources.Requests[corev1.ResourceStorage] = withOverhead(size, overhead)
		}
	}
	if len(claim.Spec.AccessModes) == 0 {
		claim.Spec.AccessModes = []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce}
	}
	return claim
}

// withOverhead is CDI's GetRequiredSpace: the size aligned up to 1 MiB,
// times one plus the overhead, rounded up to a byte.
func withOverhead(size resource.Quantity, overhead float64) resource.Quantity {
	const align = 1 << 20
	aligned := (size.Value() + align - 1) / align * align
	return *resource.NewQuantity(int64(math.Ceil(float64(aligned)*(1+overhead))), resource.BinarySI)
}

func (s *Simulator) waitsForConsumer(ctx context.Context, className *string) bool {
	if className == nil {
		return false
	}
	var class storagev1.StorageClass
	if err := s.client.Get(ctx, client.ObjectKey{Name: *className}, &class); err != nil {
		return false
	}
	return class.VolumeBindingMode != nil && *class.VolumeBindingMode == storagev1.VolumeBindingWaitForFirstConsumer
}

// reconcileClaim plays the PV binder and the resizer: bind (at once, or for
// WaitForFirstConsumer classes once a scheduled instance uses the claim), and
// grow the capacity when the request grows.
func (s *Simulator) reconcileClaim(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	var claim corev1.PersistentVolumeClaim
	if err := s.client.Get(ctx, req.NamespacedName, &claim); err != nil || !claim.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if claim.Status.Phase != corev1.ClaimBound && s.waitsForConsumer(ctx, claim.Spec.StorageClassName) {
		consumed, err := s.consumedByScheduledInstance(ctx, &claim)
		if err != nil || !consumed {
			return ctrl.Result{}, err
		}
	}
	next := claim.Status.DeepCopy()
	next.Phase = corev1.ClaimBound
	next.AccessModes = claim.Spec.AccessModes
	next.Capacity = corev1.ResourceList{corev1.ResourceStorage: claim.Spec.Resources.Requests[corev1.ResourceStorage]}
	if apiequality.Semantic.DeepEqual(&claim.Status, next) {
		return ctrl.Result{}, nil
	}
	claim.Status = *next
	if err := s.client.Status().Update(ctx, &claim, client.FieldOwner(FieldOwner)); err != nil {
		return ctrl.Result{}, fmt.Errorf("update the status of PersistentVolumeClaim %s/%s: %w", claim.Namespace, claim.Name, err)
	}
	return ctrl.Result{}, nil
}

func (s *Simulator) consumedByScheduledInstance(ctx context.Context, claim *corev1.PersistentVolumeClaim) (bool, error) {
	var instances kubevirtv1.VirtualMachineInstanceList
	if err := s.client.List(ctx, &instances, client.InNamespace(claim.Namespace)); err != nil {
		return false, fmt.Errorf("list VirtualMachineInstances in %s: %w", claim.Namespace, err)
	}
	for i := range instances.Items {
		if instances.Items[i].Status.NodeName != "" && contains(claimNames(&instances.Items[i]), claim.Name) {
			return true, nil
		}
	}
	return false, nil
}
