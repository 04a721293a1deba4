package profile

import (
	"context"
	"fmt"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"

	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
	"github.com/jianfenliu/vmoperator/controller/attach"
	"github.com/jianfenliu/vmoperator/controller/desired"
	"github.com/jianfenliu/vmoperator/controller/identity"
	"github.com/jianfenliu/vmoperator/controller/revoke"
	"github.com/jianfenliu/vmoperator/controller/status"
)

// reconcileNetworks resolves each network against the declared host
// networks (refusing what no HostNetwork allows), refuses a static address
// or MAC another profile keeps on the same segment, creates an attachment for each
// network without nadName, and checks that the named ones exist.
func (r *Reconciler) reconcileNetworks(ctx context.Context, profile *vmv1alpha1.VirtualMachineProfile, observed *status.Observed) error {
	observed.Networks = status.Pass(vmv1alpha1.ReasonNetworksReady, fmt.Sprintf("%d network(s) attached", len(profile.Spec.Networks)))
	attachments, refusal, err := r.attachReader().Resolve(ctx, profile)
	if err != nil {
		return err
	}
	if refusal != nil {
		return r.revoker().Revoke(ctx, profile, refusal, observed)
	}
	observed.Attachments = attachments
	if conflict, err := r.identities().Conflicts(ctx, profile, attachments, observed); err != nil || conflict != nil {
		if conflict != nil {
			observed.Networks = *conflict
		}
		return err
	}
	for _, a := range attachments {
		check, err := r.reconcileAttachment(ctx, profile, a)
		if err != nil {
			return err
		}
		if check != nil {
			observed.Networks = *check
			return nil
		}
	}
	return r.removeUnusedNADs(ctx, profile)
}

func (r *Reconciler) attachReader() attach.Reader {
	return attach.Reader{Client: r.Client, Multus: r.Deps.Multus, Policy: r.Networks}
}

// identities decides which profile keeps a static address or MAC; it
// resolves the other profiles' networks as this reconciler does.
func (r *Reconciler) identities() identity.Checker {
	return identity.Checker{Client: r.Client, KubeVirt: r.Deps.KubeVirt, Networks: r.attachReader(), Now: r.now}
}

func (r *Reconciler) revoker() revoke.Revoker {
	return revoke.Revoker{Client: r.Client, KubeVirt: r.Deps.KubeVirt, Multus: r.Deps.Multus, Event: r.event}
}

func (r *Reconciler) reconcileAttachment(ctx context.Context, profile *vmv1alpha1.VirtualMachineProfile, a desired.Attachment) (*status.Check, error) {
	if !r.Deps.Multus {
		check := status.Wait(vmv1alpha1.ReasonDependencyMissing,
			"network %s needs a NetworkAttachmentDefinition, but Multus (k8s.cni.cncf.io/v1) is not installed", a.Network.Name)
		return &check, nil
	}
	if a.Named {
		return r.checkNamedNAD(ctx, a)
	}
	nad, err := desired.NAD(profile, a)
	if err != nil {
		return nil, err
	}
	return r.apply(ctx, profile, nad)
}

func (r *Reconciler) checkNamedNAD(ctx context.Context, a desired.Attachment) (*status.Check, error) {
	err := r.Client.Get(ctx, a.NAD, &nadv1.NetworkAttachmentDefinition{})
	if apierrors.IsNotFound(err) {
		check := status.Wait(vmv1alpha1.ReasonNADMissing,
			"network %s uses NetworkAttachmentDefinition %s, which does not exist in namespace %s", a.Network.Name, a.NAD.Name, a.NAD.Namespace)
		return &check, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read NetworkAttachmentDefinition %s: %w", a.NAD, err)
	}
	return nil, nil
}

// removeUnusedNADs deletes the attachments the operator made for networks
// since removed from the profile (attachments hold no data).
func (r *Reconciler) removeUnusedNADs(ctx context.Context, profile *vmv1alpha1.VirtualMachineProfile) error {
	wanted := map[string]bool{}
	for i := range profile.Spec.Networks {
		if profile.Spec.Networks[i].NADName == "" {
			wanted[desired.NADName(profile.Name, profile.Spec.Networks[i].Name)] = true
		}
	}
	_, err := r.revoker().DeleteNADs(ctx, profile, wanted, "its network was removed")
	return err
}
