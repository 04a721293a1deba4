package profile

import (
	"context"
	"fmt"

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
			return fmt.Errorf("read sshKeySecret %s: %w", name, err)
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
		existing = nil
	case err != nil:
		return fmt.Errorf("read cloud-init Secret %s: %w", secret.Name, err)
	}
	if existing != nil {
		if check := ownershipCheck(existing, secret, profile); check != nil {
			observed.Blockers = append(observed.Blockers, *check)
			return nil
		}
	}
	// The cache holds Secrets' metadata only: the applier judges their data
	// by who manages it (a hand edit takes over the fields it changed).
	_, err = r.applier().Apply(ctx, existingOrNil(existing), secret)
	return err
}

// existingOrNil keeps a typed nil out of the client.Object interface.
func existingOrNil(meta *metav1.PartialObjectMetadata) client.Object {
	if meta == nil {
		return nil
	}
	return meta
}
