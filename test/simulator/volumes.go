package simulator

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
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

// reconcileDataVolume plays CDI: a claim named like the DataVolume, then the
// import "succeeds" once the claim is bound.
func (s *Simulator) reconcileDataVolume(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	var dv cdiv1.DataVolume
	if err := s.client.Get(ctx, req.NamespacedName, &dv); err != nil || !dv.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	var claim corev1.PersistentVolumeClaim
	err := s.client.Get(ctx, req.NamespacedName, &claim)
	if apierrors.IsNotFound(err) {
		if err := s.client.Create(ctx, claimFor(&dv), client.FieldOwner(FieldOwner)); err != nil {
			return ctrl.Result{}, fmt.Errorf("create PersistentVolumeClaim %s for its DataVolume: %w", req.NamespacedName, err)
		}
		return ctrl.Result{}, nil
	}
	if err != nil {
		return ctrl.Result{}, fmt.Errorf("get PersistentVolumeClaim %s: %w", req.NamespacedName, err)
	}
	next := dv.Status.DeepCopy()
	next.ClaimName = claim.Name
	switch {
	case claim.Status.Phase == corev1.ClaimBound:
		next.Phase, next.Progress = cdiv1.Succeeded, "100.0%"
	case s.waitsForConsumer(ctx, claim.Spec.StorageClassName):
		next.Phase, next.Progress = cdiv1.WaitForFirstConsumer, "N/A"
	default:
		next.Phase, next.Progress = cdiv1.ImportScheduled, "N/A"
	}
	if apiequality.Semantic.DeepEqual(&dv.Status, next) {
		return ctrl.Result{}, nil
	}
	dv.Status = *next
	if err := s.client.Status().Update(ctx, &dv, client.FieldOwner(FieldOwner)); err != nil {
		return ctrl.Result{}, fmt.Errorf("update the status of DataVolume %s/%s: %w", dv.Namespace, dv.Name, err)
	}
	return ctrl.Result{}, nil
}

func claimFor(dv *cdiv1.DataVolume) *corev1.PersistentVolumeClaim {
	claim := &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{
			Name:            dv.Name,
			Namespace:       dv.Namespace,
			Labels:          dv.Labels,
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(dv, cdiv1.SchemeGroupVersion.WithKind("DataVolume"))},
		},
	}
	if dv.Spec.Storage != nil {
		claim.Spec.AccessModes = dv.Spec.Storage.AccessModes
		claim.Spec.Resources = dv.Spec.Storage.Resources
		claim.Spec.StorageClassName = dv.Spec.Storage.StorageClassName
	}
	if len(claim.Spec.AccessModes) == 0 {
		claim.Spec.AccessModes = []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce}
	}
	return claim
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
