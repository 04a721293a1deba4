package profile

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
	"github.com/jianfenliu/vmoperator/controller/desired"
	"github.com/jianfenliu/vmoperator/controller/status"
)

// secretMetadata is a Secret read through a metadata-only watch: the
// controller learns whether a Secret exists without ever holding its data.
func secretMetadata() *metav1.PartialObjectMetadata {
	meta := &metav1.PartialObjectMetadata{}
	meta.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Secret"))
	return meta
}

// reconcileCloudInit writes the cloud-init Secret (network data for every
// network) and checks that the SSH key Secret exists. The key itself goes to
// the guest through KubeVirt's accessCredentials; the controller never reads it.
func (r *Reconciler) reconcileCloudInit(ctx context.Context, profile *vmv1alpha1.VirtualMachineProfile, observed *status.Observed) error {
	if name := profile.Spec.SSHKeySecret; name != "" {
		err := r.Client.Get(ctx, client.ObjectKey{Namespace: profile.Namespace, Name: name}, secretMetadata())
		if apierrors.IsNotFound(err) {
			observed.Blockers = append(observed.Blockers, status.Wait(vmv1alpha1.ReasonSecretMissing,
				"sshKeySecret %s does not exist in namespace %s", name, profile.Namespace))
		} else if err != nil {
			return err
		}
	}
	secret, err := desired.CloudInitSecret(profile)
	if err != nil {
		return err
	}
	existing := secretMetadata()
	err = r.Client.Get(ctx, client.ObjectKeyFromObject(secret), existing)
	switch {
	case apierrors.IsNotFound(err):
		return r.applyIfChanged(ctx, nil, secret)
	case err != nil:
		return err
	case ownershipOf(existing, profile) == foreign:
		observed.Blockers = append(observed.Blockers, nameConflict(secret))
		return nil
	}
	return r.applyIfChanged(ctx, existing, secret)
}
