package profile

import (
	"context"
	"fmt"
	"time"

	nmstateshared "github.com/nmstate/kubernetes-nmstate/api/shared"
	nmstatev1 "github.com/nmstate/kubernetes-nmstate/api/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
	"github.com/jianfenliu/vmoperator/controller/desired"
	"github.com/jianfenliu/vmoperator/controller/status"
)

// Annotations on the shared policies, so the host-network reconciler can
// remove an interface after its last user is gone.
const (
	annotationHostInterface     = "vm.example.com/host-interface"
	annotationHostInterfaceType = "vm.example.com/host-interface-type"
	annotationAbsentRequestedAt = "vm.example.com/absent-requested-at"
)

// hostNetworks lists the host sides a profile needs built.
func hostNetworks(profile *vmv1alpha1.VirtualMachineProfile) []desired.HostNetwork {
	var hosts []desired.HostNetwork
	for i := range profile.Spec.Networks {
		if host, ok := desired.HostNetworkFor(profile, &profile.Spec.Networks[i]); ok {
			hosts = append(hosts, host)
		}
	}
	return hosts
}

// reconcileHostNetwork checks the shared policies this profile's networks
// need. The policies themselves are written by ReconcileHostInterface, which
// merges every user of an interface.
func (r *Reconciler) reconcileHostNetwork(ctx context.Context, profile *vmv1alpha1.VirtualMachineProfile, observed *status.Observed) error {
	hosts := hostNetworks(profile)
	if len(hosts) == 0 || observed.Networks.Failed {
		return nil
	}
	if !r.Deps.NMState {
		observed.Networks = status.Wait(vmv1alpha1.ReasonDependencyMissing,
			"building %s %s on %s needs kubernetes-nmstate (nmstate.io/v1), which is not installed",
			hosts[0].Type, hosts[0].Interface, hosts[0].Uplink)
		return nil
	}
	for _, host := range hosts {
		check, err := r.checkHostNetwork(ctx, host)
		if err != nil || check != nil {
			if check != nil {
				observed.Networks = *check
			}
			return err
		}
	}
	return nil
}

func (r *Reconciler) checkHostNetwork(ctx context.Context, host desired.HostNetwork) (*status.Check, error) {
	users, err := r.hostInterfaceUsers(ctx, host.Interface)
	if err != nil {
		return nil, err
	}
	if _, _, err := desired.Merge(users); err != nil {
		check := status.Problem(vmv1alpha1.ReasonHostNetworkFailed, "profiles disagree on a shared host interface: %v", err)
		return &check, nil
	}
	var policy nmstatev1.NodeNetworkConfigurationPolicy
	err = r.Client.Get(ctx, client.ObjectKey{Name: desired.NNCPName(host.Interface)}, &policy)
	if apierrors.IsNotFound(err) {
		check := status.Wait(vmv1alpha1.ReasonHostNetworkPending, "waiting for NodeNetworkConfigurationPolicy %s (%s %s)",
			desired.NNCPName(host.Interface), host.Type, host.Interface)
		return &check, nil
	}
	if err != nil {
		return nil, err
	}
	return policyCheck(&policy, host), nil
}

// policyCheck reads nmstate's verdict on a policy.
func policyCheck(policy *nmstatev1.NodeNetworkConfigurationPolicy, host desired.HostNetwork) *status.Check {
	for _, c := range policy.Status.Conditions {
		if c.Status != corev1.ConditionTrue {
			continue
		}
		switch c.Type {
		case nmstateshared.NodeNetworkConfigurationPolicyConditionAvailable:
			return nil
		case nmstateshared.NodeNetworkConfigurationPolicyConditionDegraded:
			check := status.Check{Failed: true, Holds: true, Reason: vmv1alpha1.ReasonHostNetworkFailed,
				Message: fmt.Sprintf("nmstate could not apply policy %s (%s %s): %s", policy.Name, host.Type, host.Interface, c.Message)}
			return &check
		}
	}
	check := status.Wait(vmv1alpha1.ReasonHostNetworkPending, "nmstate is applying policy %s (%s %s on %s)",
		policy.Name, host.Type, host.Interface, host.Uplink)
	return &check
}

// hostInterfaceUsers are the live profiles that need a host interface.
func (r *Reconciler) hostInterfaceUsers(ctx context.Context, hostInterface string) ([]desired.HostNetwork, error) {
	var profiles vmv1alpha1.VirtualMachineProfileList
	if err := r.Client.List(ctx, &profiles, client.MatchingFields{indexHostInterface: hostInterface}); err != nil {
		return nil, err
	}
	var users []desired.HostNetwork
	for i := range profiles.Items {
		if !profiles.Items[i].DeletionTimestamp.IsZero() {
			continue
		}
		for _, host := range hostNetworks(&profiles.Items[i]) {
			if host.Interface == hostInterface {
				users = append(users, host)
			}
		}
	}
	return users, nil
}

// ReconcileHostInterface keeps the shared policy of one host interface
// (the request's name) equal to the merge of what its users need. When the
// last user is gone it applies state: absent, waits for nmstate to apply it,
// then deletes the policy (deleting alone would leave the host configured).
func (r *Reconciler) ReconcileHostInterface(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	hostInterface := req.Name
	users, err := r.hostInterfaceUsers(ctx, hostInterface)
	if err != nil {
		return ctrl.Result{}, err
	}
	var existing nmstatev1.NodeNetworkConfigurationPolicy
	err = r.Client.Get(ctx, client.ObjectKey{Name: desired.NNCPName(hostInterface)}, &existing)
	found := err == nil
	if err != nil && !apierrors.IsNotFound(err) {
		return ctrl.Result{}, err
	}
	if found && existing.Labels[desired.LabelManagedBy] != desired.ManagedByValue {
		return ctrl.Result{}, nil // someone else's policy: never touched
	}
	if len(users) > 0 {
		merged, vlans, err := desired.Merge(users)
		if err != nil {
			return ctrl.Result{}, nil // the users' profiles report the disagreement
		}
		return ctrl.Result{}, r.applyPolicy(ctx, existingOrNil(found, &existing), merged, desired.DesiredState(merged, vlans), "")
	}
	if !found {
		return ctrl.Result{}, nil
	}
	return ctrl.Result{}, r.removePolicy(ctx, &existing)
}

func existingOrNil(found bool, policy *nmstatev1.NodeNetworkConfigurationPolicy) client.Object {
	if !found {
		return nil
	}
	return policy
}

func (r *Reconciler) applyPolicy(ctx context.Context, existing client.Object, host desired.HostNetwork, state nmstateshared.State, absentAt string) error {
	policy := desired.NNCP(host, state)
	policy.Annotations = map[string]string{annotationHostInterface: host.Interface, annotationHostInterfaceType: host.Type}
	if absentAt != "" {
		policy.Annotations[annotationAbsentRequestedAt] = absentAt
	}
	return r.applyIfChanged(ctx, existing, policy)
}

// removePolicy runs the two steps of removing a host interface.
func (r *Reconciler) removePolicy(ctx context.Context, policy *nmstatev1.NodeNetworkConfigurationPolicy) error {
	host := desired.HostNetwork{
		Interface:    policy.Annotations[annotationHostInterface],
		Type:         policy.Annotations[annotationHostInterfaceType],
		NodeSelector: policy.Spec.NodeSelector,
	}
	requested, asked := policy.Annotations[annotationAbsentRequestedAt]
	if !asked {
		return r.applyPolicy(ctx, policy, host, desired.AbsentState(host), r.now().UTC().Format(time.RFC3339))
	}
	requestedAt, err := time.Parse(time.RFC3339, requested)
	if err != nil || !absentApplied(policy, requestedAt) {
		return nil // the policy's status change brings us back
	}
	return client.IgnoreNotFound(r.Client.Delete(ctx, policy))
}

// absentApplied says nmstate reported the policy Available after the
// absent state was requested.
func absentApplied(policy *nmstatev1.NodeNetworkConfigurationPolicy, requestedAt time.Time) bool {
	for _, c := range policy.Status.Conditions {
		if c.Type == nmstateshared.NodeNetworkConfigurationPolicyConditionAvailable && c.Status == corev1.ConditionTrue {
			return !c.LastTransitionTime.Time.Before(requestedAt)
		}
	}
	return false
}
