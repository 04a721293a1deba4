package simulator

import (
	"context"
	"fmt"

	nmstateshared "github.com/nmstate/kubernetes-nmstate/api/shared"
	nmstatev1 "github.com/nmstate/kubernetes-nmstate/api/v1"
	nmstatev1beta1 "github.com/nmstate/kubernetes-nmstate/api/v1beta1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

func (s *Simulator) setupPolicies(mgr ctrl.Manager) error {
	err := ctrl.NewControllerManagedBy(mgr).Named("sim-nmstate").
		For(&nmstatev1.NodeNetworkConfigurationPolicy{}).
		Complete(ctrlFunc(s.reconcilePolicy))
	if err != nil {
		return fmt.Errorf("set up controller sim-nmstate: %w", err)
	}
	return nil
}

// LabelNMStateStuck on a Node makes the simulated nmstate never finish there:
// its enactments stay Progressing (for tests of bounded waits).
const LabelNMStateStuck = "sim.vm.example.com/nmstate-stuck"

// reconcilePolicy plays nmstate: each node the policy selects gets an
// enactment that reports the policy's current generation Available (or,
// on a stuck node, Progressing forever), then the policy turns Available.
func (s *Simulator) reconcilePolicy(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	var policy nmstatev1.NodeNetworkConfigurationPolicy
	if err := s.client.Get(ctx, req.NamespacedName, &policy); err != nil || !policy.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	var nodes corev1.NodeList
	if err := s.client.List(ctx, &nodes, client.MatchingLabelsSelector{Selector: labels.SelectorFromSet(policy.Spec.NodeSelector)}); err != nil {
		return ctrl.Result{}, fmt.Errorf("list the Nodes of NodeNetworkConfigurationPolicy %s: %w", policy.Name, err)
	}
	for i := range nodes.Items {
		if err := s.enact(ctx, &nodes.Items[i], &policy); err != nil {
			return ctrl.Result{}, err
		}
	}
	applied := fmt.Sprintf("applied generation %d on %d node(s) (simulated)", policy.Generation, len(nodes.Items))
	for _, c := range policy.Status.Conditions {
		if c.Type == nmstateshared.NodeNetworkConfigurationPolicyConditionAvailable && c.Message == applied {
			return ctrl.Result{}, nil
		}
	}
	policy.Status.Conditions = conditions(nmstateshared.NodeNetworkConfigurationPolicyConditionAvailable,
		nmstateshared.NodeNetworkConfigurationPolicyConditionDegraded, applied)
	if err := s.client.Status().Update(ctx, &policy, client.FieldOwner(FieldOwner)); err != nil {
		return ctrl.Result{}, fmt.Errorf("update the status of NodeNetworkConfigurationPolicy %s: %w", policy.Name, err)
	}
	return ctrl.Result{}, nil
}

func conditions(available, notThere nmstateshared.ConditionType, message string) nmstateshared.ConditionList {
	now := metav1.Now()
	return nmstateshared.ConditionList{
		{Type: available, Status: corev1.ConditionTrue, Reason: "SuccessfullyConfigured", Message: message, LastTransitionTime: now, LastHeartbeatTime: now},
		{Type: notThere, Status: corev1.ConditionFalse, Reason: "SuccessfullyConfigured", LastTransitionTime: now, LastHeartbeatTime: now},
	}
}

// enact writes one node's enactment of the policy's current generation.
func (s *Simulator) enact(ctx context.Context, node *corev1.Node, policy *nmstatev1.NodeNetworkConfigurationPolicy) error {
	enactment := &nmstatev1beta1.NodeNetworkConfigurationEnactment{}
	key := nmstateshared.EnactmentKey(node.Name, policy.Name)
	err := s.client.Get(ctx, key, enactment)
	if apierrors.IsNotFound(err) {
		enactment = &nmstatev1beta1.NodeNetworkConfigurationEnactment{ObjectMeta: metav1.ObjectMeta{
			Name:            key.Name,
			Labels:          map[string]string{nmstateshared.EnactmentPolicyLabel: policy.Name, nmstateshared.EnactmentNodeLabel: node.Name},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "v1", Kind: "Node", Name: node.Name, UID: node.UID}},
		}}
		if err := s.client.Create(ctx, enactment, client.FieldOwner(FieldOwner)); err != nil {
			return fmt.Errorf("create NodeNetworkConfigurationEnactment %s: %w", key.Name, err)
		}
	} else if err != nil {
		return fmt.Errorf("get NodeNetworkConfigurationEnactment %s: %w", key.Name, err)
	}
	if enactment.Status.PolicyGeneration == policy.Generation {
		return nil
	}
	enactment.Status.PolicyGeneration = policy.Generation
	enactment.Status.DesiredState = policy.Spec.DesiredState
	enactment.Status.Conditions = conditions(nmstateshared.NodeNetworkConfigurationEnactmentConditionAvailable,
		nmstateshared.NodeNetworkConfigurationEnactmentConditionFailing, "successfully reconciled (simulated)")
	if node.Labels[LabelNMStateStuck] == "true" {
		enactment.Status.Conditions = conditions(nmstateshared.NodeNetworkConfigurationEnactmentConditionProgressing,
			nmstateshared.NodeNetworkConfigurationEnactmentConditionAvailable, "applying (simulated, never finishes on this node)")
	}
	if err := s.client.Status().Update(ctx, enactment, client.FieldOwner(FieldOwner)); err != nil {
		return fmt.Errorf("update the status of NodeNetworkConfigurationEnactment %s: %w", key.Name, err)
	}
	return nil
}
