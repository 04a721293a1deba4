package simulator

import (
	"context"
	"fmt"

	nmstateshared "github.com/nmstate/kubernetes-nmstate/api/shared"
	nmstatev1 "github.com/nmstate/kubernetes-nmstate/api/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

func (s *Simulator) setupPolicies(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).Named("sim-nmstate").
		For(&nmstatev1.NodeNetworkConfigurationPolicy{}).
		Complete(ctrlFunc(s.reconcilePolicy))
}

// reconcilePolicy plays nmstate's handler: every new generation of a policy
// becomes Available, with a fresh transition time, as a successful apply does.
func (s *Simulator) reconcilePolicy(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	var policy nmstatev1.NodeNetworkConfigurationPolicy
	if err := s.client.Get(ctx, req.NamespacedName, &policy); err != nil || !policy.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	applied := fmt.Sprintf("applied generation %d (simulated)", policy.Generation)
	for _, c := range policy.Status.Conditions {
		if c.Type == nmstateshared.NodeNetworkConfigurationPolicyConditionAvailable && c.Message == applied {
			return ctrl.Result{}, nil
		}
	}
	now := metav1.Now()
	policy.Status.Conditions = nmstateshared.ConditionList{
		{Type: nmstateshared.NodeNetworkConfigurationPolicyConditionAvailable, Status: corev1.ConditionTrue,
			Reason: "SuccessfullyConfigured", Message: applied, LastTransitionTime: now, LastHeartbeatTime: now},
		{Type: nmstateshared.NodeNetworkConfigurationPolicyConditionDegraded, Status: corev1.ConditionFalse,
			Reason: "SuccessfullyConfigured", LastTransitionTime: now, LastHeartbeatTime: now},
	}
	return ctrl.Result{}, s.client.Status().Update(ctx, &policy, client.FieldOwner(FieldOwner))
}
