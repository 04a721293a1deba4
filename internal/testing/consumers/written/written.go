// Package written runs the consumers on what the controller wrote, as the
// apiserver holds it at the end of a scenario.
package written

import (
	"context"
	"errors"
	"fmt"
	"testing"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	kubevirtv1 "kubevirt.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
	"github.com/jianfenliu/vmoperator/internal/testing/consumers"
)

// Judged counts the objects each consumer judged.
type Judged struct {
	// VMs is VirtualMachines KubeVirt's own validation admitted or refused.
	VMs int
	// NADs is NetworkAttachmentDefinitions a reference CNI plugin ran
	// (ADD, CHECK, DEL); NADsNotRun says, by reason, how many this host
	// could not run.
	NADs       int
	NADsNotRun map[string]int
	// NetworkData is network-data Secrets rendered by cloud-init (each for
	// both guest families).
	NetworkData int
	// Skipped are VMs whose profile had not converged (its latest
	// generation not yet observed), or whose networks the latest generation
	// has refused (the VM keeps the last admitted ones, by design), so their
	// children may lag its spec.
	Skipped int
}

func (j Judged) String() string {
	return fmt.Sprintf("KubeVirt v1.8.0 judged %d VMs; cloud-init rendered %d network-data (Debian and RHEL-family), %d skipped as not converged; the CNI plugins ran %d NADs, not %v",
		j.VMs, j.NetworkData, j.Skipped, j.NADs, j.NADsNotRun)
}

// Consumers are the long-lived parts of the consumers a suite shares.
type Consumers struct {
	KubeVirt  *consumers.KubeVirtAdmitter
	CNIBinDir string
}

// Start starts the consumers a suite shares; stop ends them.
func Start() (with Consumers, stop func(), err error) {
	if with.CNIBinDir, err = consumers.CNIBinDir(); err != nil {
		return with, nil, err
	}
	if with.KubeVirt, err = consumers.StartKubeVirtAdmitter(); err != nil {
		return with, nil, err
	}
	return with, func() { _ = with.KubeVirt.Close() }, nil
}

// CheckNamespace runs the consumers on every object the operator wrote in
// namespace, as the apiserver holds them now: every VM through KubeVirt's
// validation, each VM's network-data Secret, as KubeVirt hands it to the
// guest, through cloud-init against its profile, and every NAD through its
// CNI plugin with the MAC of the VM interface that uses it.
func CheckNamespace(t testing.TB, c client.Reader, namespace string, with Consumers) (Judged, error) {
	t.Helper()
	ctx := context.Background()
	judged := Judged{NADsNotRun: map[string]int{}}
	var vms kubevirtv1.VirtualMachineList
	if err := c.List(ctx, &vms, client.InNamespace(namespace), client.MatchingLabels{vmv1alpha1.LabelManagedBy: vmv1alpha1.ManagedByValue}); err != nil {
		return judged, fmt.Errorf("list the VirtualMachines in %s: %w", namespace, err)
	}
	var errs []error
	if len(vms.Items) > 0 {
		verdicts, err := with.KubeVirt.Admit(vms.Items)
		if err != nil {
			return judged, err
		}
		judged.VMs = len(verdicts)
		if err := consumers.RefusedVMs(verdicts); err != nil {
			errs = append(errs, err)
		}
	}
	for _, vm := range vms.Items {
		var profile vmv1alpha1.VirtualMachineProfile
		err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: vm.Labels[vmv1alpha1.LabelProfile]}, &profile)
		if err != nil || profile.Status.ObservedGeneration != profile.Generation ||
			meta.IsStatusConditionFalse(profile.Status.Conditions, vmv1alpha1.ConditionNetworksConfigured) {
			judged.Skipped++
			continue
		}
		data, err := networkDataOf(ctx, c, &vm)
		if err != nil {
			errs = append(errs, fmt.Errorf("VM %s/%s: %w", namespace, vm.Name, err))
			continue
		}
		if data == "" {
			continue
		}
		judged.NetworkData++
		if err := consumers.CheckNetworkData(data, consumers.ExpectedGuest(&profile, consumers.InterfaceMACs(&vm))); err != nil {
			errs = append(errs, fmt.Errorf("VM %s/%s network-data: %w", namespace, vm.Name, err))
		}
	}
	if err := checkNADs(t, c, namespace, with.CNIBinDir, vms.Items, &judged); err != nil {
		errs = append(errs, err)
	}
	return judged, errors.Join(errs...)
}

// checkNADs runs every NAD the operator wrote in namespace through its plugin.
func checkNADs(t testing.TB, c client.Reader, namespace, binDir string, vms []kubevirtv1.VirtualMachine, judged *Judged) error {
	var nads nadv1.NetworkAttachmentDefinitionList
	if err := c.List(context.Background(), &nads, client.InNamespace(namespace), client.MatchingLabels{vmv1alpha1.LabelManagedBy: vmv1alpha1.ManagedByValue}); err != nil {
		return fmt.Errorf("list the NADs in %s: %w", namespace, err)
	}
	var errs []error
	for _, nad := range nads.Items {
		skipped, err := consumers.CheckNAD(t, binDir, []byte(nad.Spec.Config), macOfNAD(vms, namespace, nad.Name))
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("NAD %s/%s: %w\nconfig: %s", namespace, nad.Name, err, nad.Spec.Config))
		case skipped != "":
			judged.NADsNotRun[skipped]++
		default:
			judged.NADs++
		}
	}
	return errors.Join(errs...)
}

// macOfNAD is the MAC of the VM interface whose Multus network is the NAD,
// which KubeVirt asks Multus for; "" when no VM uses it.
func macOfNAD(vms []kubevirtv1.VirtualMachine, namespace, nad string) string {
	for _, vm := range vms {
		if vm.Spec.Template == nil {
			continue
		}
		for _, network := range vm.Spec.Template.Spec.Networks {
			if network.Multus == nil || (network.Multus.NetworkName != nad && network.Multus.NetworkName != namespace+"/"+nad) {
				continue
			}
			for _, iface := range vm.Spec.Template.Spec.Domain.Devices.Interfaces {
				if iface.Name == network.Name {
					return iface.MacAddress
				}
			}
		}
	}
	return ""
}

// networkDataOf is the guest's network-data as KubeVirt's cloudInitNoCloud
// takes it: inline, or from the Secret it names.
func networkDataOf(ctx context.Context, c client.Reader, vm *kubevirtv1.VirtualMachine) (string, error) {
	if vm.Spec.Template == nil {
		return "", nil
	}
	for _, volume := range vm.Spec.Template.Spec.Volumes {
		source := volume.CloudInitNoCloud
		if source != nil && source.NetworkData != "" {
			return source.NetworkData, nil // inline
		}
		if source == nil || source.NetworkDataSecretRef == nil {
			continue
		}
		var secret corev1.Secret
		if err := c.Get(ctx, client.ObjectKey{Namespace: vm.Namespace, Name: source.NetworkDataSecretRef.Name}, &secret); err != nil {
			return "", fmt.Errorf("network-data Secret %s: %w", source.NetworkDataSecretRef.Name, err)
		}
		return string(secret.Data["networkdata"]), nil
	}
	return "", nil
}
