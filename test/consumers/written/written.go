// Package written runs the consumers on what the controller wrote, as the
// apiserver holds it at the end of a scenario.
package written

import (
	"context"
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	kubevirtv1 "kubevirt.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
	"github.com/jianfenliu/vmoperator/controller/desired"
	"github.com/jianfenliu/vmoperator/test/consumers"
)

// Judged counts the objects each consumer judged.
type Judged struct {
	// VMs is VirtualMachines KubeVirt's own validation admitted or refused.
	VMs int
	// NetworkData is network-data Secrets rendered by cloud-init (each for
	// both guest families).
	NetworkData int
	// Skipped are VMs whose profile had not converged (its latest
	// generation not yet observed), so their children may lag its spec.
	Skipped int
}

func (j Judged) String() string {
	return fmt.Sprintf("KubeVirt v1.8.0 judged %d VMs; cloud-init rendered %d network-data (Debian and RHEL-family), %d skipped as not converged", j.VMs, j.NetworkData, j.Skipped)
}

// CheckNamespace runs the consumers on every object the operator wrote in
// namespace, as the apiserver holds them now: every VM through KubeVirt's
// validation, and each VM's network-data Secret, as KubeVirt hands it to
// the guest, through cloud-init against its profile.
func CheckNamespace(ctx context.Context, c client.Reader, namespace string, kubevirt *consumers.KubeVirtAdmitter) (Judged, error) {
	var judged Judged
	var vms kubevirtv1.VirtualMachineList
	if err := c.List(ctx, &vms, client.InNamespace(namespace), client.MatchingLabels{desired.LabelManagedBy: desired.ManagedByValue}); err != nil {
		return judged, err
	}
	var errs []error
	if len(vms.Items) > 0 {
		verdicts, err := kubevirt.Admit(vms.Items)
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
		err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: vm.Labels[desired.LabelProfile]}, &profile)
		if err != nil || profile.Status.ObservedGeneration != profile.Generation {
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
		if err := consumers.CheckNetworkData(data, consumers.ExpectedGuest(&profile, macsOf(&vm))); err != nil {
			errs = append(errs, fmt.Errorf("VM %s/%s network-data: %w", namespace, vm.Name, err))
		}
	}
	return judged, errors.Join(errs...)
}

// networkDataOf reads the Secret KubeVirt's cloudInitNoCloud takes the
// guest's network-data from.
func networkDataOf(ctx context.Context, c client.Reader, vm *kubevirtv1.VirtualMachine) (string, error) {
	if vm.Spec.Template == nil {
		return "", nil
	}
	for _, volume := range vm.Spec.Template.Spec.Volumes {
		source := volume.CloudInitNoCloud
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

func macsOf(vm *kubevirtv1.VirtualMachine) map[string]string {
	macs := map[string]string{}
	for _, iface := range vm.Spec.Template.Spec.Domain.Devices.Interfaces {
		macs[iface.Name] = iface.MacAddress
	}
	return macs
}
