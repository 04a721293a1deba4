package profile

import (
	"context"

	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
	"github.com/jianfenliu/vmoperator/controller/status"
	"github.com/jianfenliu/vmoperator/controller/volumes"
)

// volumes reconciles the profile's disks (package volumes).
func (r *Reconciler) volumes() *volumes.Reconciler {
	return &volumes.Reconciler{Client: r.Client, APIReader: r.APIReader, Recorder: r.Recorder, CDI: r.Deps.CDI}
}

// reconcileDisks creates and reports each disk's volume (volumes.Reconcile).
func (r *Reconciler) reconcileDisks(ctx context.Context, profile *vmv1alpha1.VirtualMachineProfile, observed *status.Observed) error {
	return r.volumes().Reconcile(ctx, profile, observed)
}
