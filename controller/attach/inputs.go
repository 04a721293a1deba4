package attach

import (
	"context"
	"fmt"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	kubevirtv1 "kubevirt.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
	"github.com/jianfenliu/vmoperator/controller/desired"
)

// Reader reads what resolution needs, from the controller's cache.
type Reader struct {
	Client client.Reader
	// Multus says whether NetworkAttachmentDefinitions exist to be read.
	Multus bool
	Policy Policy
}

// Inputs reads the HostNetworks, the labels of the profile's namespace and
// the attachments its networks name.
func (r Reader) Inputs(ctx context.Context, profile *vmv1alpha1.VirtualMachineProfile) (Inputs, error) {
	hostNetworks, err := r.HostNetworks(ctx)
	if err != nil {
		return Inputs{}, err
	}
	return r.InputsWith(ctx, profile, hostNetworks)
}

// HostNetworks lists every HostNetwork.
func (r Reader) HostNetworks(ctx context.Context) ([]vmv1alpha1.HostNetwork, error) {
	var list vmv1alpha1.HostNetworkList
	if err := r.Client.List(ctx, &list); err != nil {
		return nil, fmt.Errorf("list HostNetworks: %w", err)
	}
	return list.Items, nil
}

// InputsWith reads the rest for a profile, given the HostNetworks (so that
// callers resolving many profiles list them once).
func (r Reader) InputsWith(ctx context.Context, profile *vmv1alpha1.VirtualMachineProfile, hostNetworks []vmv1alpha1.HostNetwork) (Inputs, error) {
	in := Inputs{HostNetworks: hostNetworks, NADs: map[types.NamespacedName]*nadv1.NetworkAttachmentDefinition{}, Policy: r.Policy}
	namespace := NamespaceMetadata()
	if err := r.Client.Get(ctx, client.ObjectKey{Name: profile.Namespace}, namespace); err != nil {
		return in, fmt.Errorf("read namespace %s: %w", profile.Namespace, err)
	}
	in.NamespaceLabels = namespace.Labels
	if !r.Multus {
		return in, nil
	}
	for i := range profile.Spec.Networks {
		if profile.Spec.Networks[i].NADName == "" {
			continue
		}
		key := desired.NADKey(profile, &profile.Spec.Networks[i])
		var nad nadv1.NetworkAttachmentDefinition
		err := r.Client.Get(ctx, key, &nad)
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			return in, fmt.Errorf("read NetworkAttachmentDefinition %s: %w", key, err)
		}
		in.NADs[key] = &nad
	}
	return in, nil
}

// NamespaceMetadata is a Namespace read through a metadata-only watch:
// only its labels matter (HostNetworks select namespaces by label).
func NamespaceMetadata() *metav1.PartialObjectMetadata {
	meta := &metav1.PartialObjectMetadata{}
	meta.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Namespace"))
	return meta
}

// Users lists the profiles whose networks attach to a HostNetwork: those
// it admits, and those it revoked whose instance still runs there.
func (r Reader) Users(ctx context.Context, hostNetwork string) ([]types.NamespacedName, error) {
	hostNetworks, err := r.HostNetworks(ctx)
	if err != nil {
		return nil, err
	}
	var profiles vmv1alpha1.VirtualMachineProfileList
	if err := r.Client.List(ctx, &profiles); err != nil {
		return nil, fmt.Errorf("list profiles: %w", err)
	}
	var users []types.NamespacedName
	for i := range profiles.Items {
		profile := &profiles.Items[i]
		in, err := r.InputsWith(ctx, profile, hostNetworks)
		if err != nil {
			return nil, err
		}
		attachments, err := r.heldAttachments(ctx, profile, in)
		if err != nil {
			return nil, err
		}
		for _, a := range attachments {
			if a.HostNetworkName() == hostNetwork {
				users = append(users, client.ObjectKeyFromObject(profile))
				break
			}
		}
	}
	return users, nil
}

// heldAttachments are where a profile's networks are attached: as
// resolved when it is admitted; as its instance was attached when access
// was revoked and the instance still lives (it still uses the HostNetwork,
// and holds its addresses there); none otherwise.
func (r Reader) heldAttachments(ctx context.Context, profile *vmv1alpha1.VirtualMachineProfile, in Inputs) ([]desired.Attachment, error) {
	attachments, refusal := Resolve(profile, in)
	if refusal == nil {
		return attachments, nil
	}
	if !refusal.Revokes {
		return nil, nil
	}
	lives, err := r.InstanceLives(ctx, profile)
	if err != nil || !lives {
		return nil, err
	}
	in.Held = true
	attachments, refusal = Resolve(profile, in)
	if refusal != nil {
		return nil, nil
	}
	return attachments, nil
}

// Resolve reads what resolution needs and resolves the profile's networks
// (see the function Resolve).
func (r Reader) Resolve(ctx context.Context, profile *vmv1alpha1.VirtualMachineProfile) ([]desired.Attachment, *Refusal, error) {
	in, err := r.Inputs(ctx, profile)
	if err != nil {
		return nil, nil, err
	}
	attachments, refusal := Resolve(profile, in)
	return attachments, refusal, nil
}

// Held reads what resolution needs and returns where the profile's
// networks are attached (see heldAttachments).
func (r Reader) Held(ctx context.Context, profile *vmv1alpha1.VirtualMachineProfile) ([]desired.Attachment, error) {
	in, err := r.Inputs(ctx, profile)
	if err != nil {
		return nil, err
	}
	return r.heldAttachments(ctx, profile, in)
}

// InstanceLives says whether the profile's VM instance exists (running,
// starting or shutting down). Without KubeVirt there is none.
func (r Reader) InstanceLives(ctx context.Context, profile *vmv1alpha1.VirtualMachineProfile) (bool, error) {
	key := client.ObjectKey{Namespace: profile.Namespace, Name: vmv1alpha1.VMName(profile.Name)}
	err := r.Client.Get(ctx, key, &kubevirtv1.VirtualMachineInstance{})
	switch {
	case err == nil:
		return true, nil
	case apierrors.IsNotFound(err) || meta.IsNoMatchError(err):
		return false, nil
	}
	return false, fmt.Errorf("read VirtualMachineInstance %s: %w", key, err)
}
