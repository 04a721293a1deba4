package profile

import (
	"context"
	"fmt"
	"time"

	nmstateshared "github.com/nmstate/kubernetes-nmstate/api/shared"
	nmstatev1 "github.com/nmstate/kubernetes-nmstate/api/v1"
	nmstatev1beta1 "github.com/nmstate/kubernetes-nmstate/api/v1beta1"
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
		check := status.Settling(vmv1alpha1.ReasonHostNetworkPending, "waiting for NodeNetworkConfigurationPolicy %s (%s %s)",
			desired.NNCPName(host.Interface), host.Type, host.Interface)
		return &check, nil
	}
	if err != nil {
		return nil, err
	}
	return r.policyCheck(ctx, &policy, host)
}

// policyCheck reads nmstate's verdict on the current generation of a policy:
// applied when every node's enactment reports that generation Available.
func (r *Reconciler) policyCheck(ctx context.Context, policy *nmstatev1.NodeNetworkConfigurationPolicy, host desired.HostNetwork) (*status.Check, error) {
	verdict, err := r.enactments(ctx, policy)
	if err != nil {
		return nil, err
	}
	switch {
	case verdict.failure != "":
		check := status.Check{Failed: true, Holds: true, Reason: vmv1alpha1.ReasonHostNetworkFailed,
			Message: fmt.Sprintf("nmstate could not apply policy %s (%s %s): %s", policy.Name, host.Type, host.Interface, verdict.failure)}
		return &check, nil
	case !verdict.applied || !policyAvailable(policy):
		check := status.Settling(vmv1alpha1.ReasonHostNetworkPending, "nmstate is applying policy %s (%s %s on %s)",
			policy.Name, host.Type, host.Interface, host.Uplink)
		return &check, nil
	}
	return nil, nil
}

func policyAvailable(policy *nmstatev1.NodeNetworkConfigurationPolicy) bool {
	for _, c := range policy.Status.Conditions {
		if c.Type == nmstateshared.NodeNetworkConfigurationPolicyConditionAvailable && c.Status == corev1.ConditionTrue {
			return true
		}
	}
	return false
}

// enactmentVerdict sums up the per-node enactments of one policy generation.
type enactmentVerdict struct {
	// applied: every enactment reports this generation Available.
	applied bool
	// failure is the first node's failure message, if any node failed.
	failure string
}

// enactments reads nmstate's per-node enactments of a policy. An enactment
// speaks for the policy's current generation only once its policyGeneration
// caught up, so a stale Available from an older spec is never taken for done.
func (r *Reconciler) enactments(ctx context.Context, policy *nmstatev1.NodeNetworkConfigurationPolicy) (enactmentVerdict, error) {
	var list nmstatev1beta1.NodeNetworkConfigurationEnactmentList
	if err := r.Client.List(ctx, &list, client.MatchingLabels{nmstateshared.EnactmentPolicyLabel: policy.Name}); err != nil {
		return enactmentVerdict{}, err
	}
	verdict := enactmentVerdict{applied: true}
	for i := range list.Items {
		enactment := &list.Items[i]
		current := enactment.Status.PolicyGeneration >= policy.Generation
		failing := enactmentCondition(enactment, nmstateshared.NodeNetworkConfigurationEnactmentConditionFailing)
		if current && failing != nil && verdict.failure == "" {
			verdict.failure = enactment.Labels[nmstateshared.EnactmentNodeLabel] + ": " + failing.Message
		}
		if !current || enactmentCondition(enactment, nmstateshared.NodeNetworkConfigurationEnactmentConditionAvailable) == nil {
			verdict.applied = false
		}
	}
	return verdict, nil
}

// enactmentCondition returns the condition of that type when it is True.
func enactmentCondition(enactment *nmstatev1beta1.NodeNetworkConfigurationEnactment, conditionType nmstateshared.ConditionType) *nmstateshared.Condition {
	for i, c := range enactment.Status.Conditions {
		if c.Type == conditionType && c.Status == corev1.ConditionTrue {
			return &enactment.Status.Conditions[i]
		}
	}
	return nil
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
		return ctrl.Result{}, r.applyPolicy(ctx, policyOrNil(found, &existing), merged, desired.DesiredState(merged, vlans), "")
	}
	if !found {
		return ctrl.Result{}, nil
	}
	return ctrl.Result{}, r.removePolicy(ctx, &existing)
}

func policyOrNil(found bool, policy *nmstatev1.NodeNetworkConfigurationPolicy) client.Object {
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
	_, err := r.applier().Apply(ctx, existing, policy)
	return err
}

// removePolicy runs the two steps of removing a host interface: apply
// state absent, then — once every node's enactment applied that generation —
// delete the policy. Nodes without an enactment never had the interface.
func (r *Reconciler) removePolicy(ctx context.Context, policy *nmstatev1.NodeNetworkConfigurationPolicy) error {
	if _, asked := policy.Annotations[annotationAbsentRequestedAt]; !asked {
		host := desired.HostNetwork{
			Interface:    policy.Annotations[annotationHostInterface],
			Type:         policy.Annotations[annotationHostInterfaceType],
			NodeSelector: policy.Spec.NodeSelector,
		}
		return r.applyPolicy(ctx, policy, host, desired.AbsentState(host), r.now().UTC().Format(time.RFC3339))
	}
	// The cached policy carries the marker, so its generation is the absent one (or later).
	verdict, err := r.enactments(ctx, policy)
	if err != nil || !verdict.applied {
		return err // an enactment's change brings us back
	}
	return client.IgnoreNotFound(r.Client.Delete(ctx, policy))
}
