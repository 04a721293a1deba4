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
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

// PolicyFidelity chooses which of kubernetes-nmstate's behaviours the
// simulated nmstate plays. Each field is a switch; docs/fidelity.md
// (section nmstate) lists them.
type PolicyFidelity struct {
	// ForgetDeselected deletes the enactment of a node a policy no longer
	// selects and leaves the node as it is (nothing is reverted), as the
	// handler does (controllers/handler/nodenetworkconfigurationpolicy_controller.go:
	// UnmatchedNodeLabels, then deleteEnactmentForPolicy). Off, the
	// enactment stays, as if the node still had the policy applied.
	ForgetDeselected bool
	// NoMatchingNode reports a policy that selects no node with
	// Available=False, Degraded=False, Progressing=False and Ignored=True,
	// reason NoMatchingNode (pkg/policyconditions/conditions.go:
	// SetPolicyNotMatching). Off, such a policy reports Available.
	NoMatchingNode bool
}

// UpstreamPolicies turns every switch on: what the simulator plays unless
// WithPolicyFidelity says otherwise.
func UpstreamPolicies() PolicyFidelity {
	return PolicyFidelity{ForgetDeselected: true, NoMatchingNode: true}
}

// WithPolicyFidelity chooses the kubernetes-nmstate behaviours the
// simulated nmstate plays.
func WithPolicyFidelity(f PolicyFidelity) Option {
	return func(s *settings) { s.policies = &f }
}

// setupPolicies reconciles policies, and all of them again when a node's
// labels change (they may select or deselect it), as the handler's node
// watch does.
func (s *Simulator) setupPolicies(mgr ctrl.Manager) error {
	err := ctrl.NewControllerManagedBy(mgr).Named("sim-nmstate").
		For(&nmstatev1.NodeNetworkConfigurationPolicy{}).
		Watches(&corev1.Node{}, handler.EnqueueRequestsFromMapFunc(s.allPolicies), builder.WithPredicates(predicate.LabelChangedPredicate{})).
		Complete(ctrlFunc(s.reconcilePolicy))
	if err != nil {
		return fmt.Errorf("set up controller sim-nmstate: %w", err)
	}
	return nil
}

// LabelNMStateStuck on a Node makes the simulated nmstate never finish there:
// its enactments stay Progressing (for tests of bounded waits).
const LabelNMStateStuck = "sim.vm.example.com/nmstate-stuck"

func (s *Simulator) allPolicies(ctx context.Context, _ client.Object) []reconcile.Request {
	var list nmstatev1.NodeNetworkConfigurationPolicyList
	if err := s.client.List(ctx, &list); err != nil {
		return nil
	}
	requests := make([]reconcile.Request, 0, len(list.Items))
	for i := range list.Items {
		requests = append(requests, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&list.Items[i])})
	}
	return requests
}

// reconcilePolicy plays nmstate: each node the policy selects gets an
// enactment that reports the policy's current generation Available (or,
// on a stuck node, Progressing forever), then the policy turns Available.
// With ForgetDeselected, the enactments of nodes it no longer selects go;
// with NoMatchingNode, a policy selecting none is Ignored.
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
	if s.policies.ForgetDeselected {
		if err := s.forgetDeselected(ctx, &policy, nodes.Items); err != nil {
			return ctrl.Result{}, err
		}
	}
	want := nmstateshared.NodeNetworkConfigurationPolicyConditionAvailable
	message := fmt.Sprintf("applied generation %d on %d node(s) (simulated)", policy.Generation, len(nodes.Items))
	next := conditions(want, nmstateshared.NodeNetworkConfigurationPolicyConditionDegraded, message)
	if len(nodes.Items) == 0 && s.policies.NoMatchingNode {
		want, message = nmstateshared.NodeNetworkConfigurationPolicyConditionIgnored, "Policy does not match any node"
		next = notMatching(message)
	}
	for _, c := range policy.Status.Conditions {
		if c.Type == want && c.Status == corev1.ConditionTrue && c.Message == message {
			return ctrl.Result{}, nil
		}
	}
	policy.Status.Conditions = next
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

// notMatching are the conditions of a policy that selects no node.
func notMatching(message string) nmstateshared.ConditionList {
	now := metav1.Now()
	condition := func(t nmstateshared.ConditionType, status corev1.ConditionStatus, message string) nmstateshared.Condition {
		return nmstateshared.Condition{Type: t, Status: status, Reason: nmstateshared.NodeNetworkConfigurationPolicyConditionConfigurationNoMatchingNode,
			Message: message, LastTransitionTime: now, LastHeartbeatTime: now}
	}
	return nmstateshared.ConditionList{
		condition(nmstateshared.NodeNetworkConfigurationPolicyConditionDegraded, corev1.ConditionFalse, ""),
		condition(nmstateshared.NodeNetworkConfigurationPolicyConditionAvailable, corev1.ConditionFalse, ""),
		condition(nmstateshared.NodeNetworkConfigurationPolicyConditionProgressing, corev1.ConditionFalse, ""),
		condition(nmstateshared.NodeNetworkConfigurationPolicyConditionIgnored, corev1.ConditionTrue, message),
	}
}

// forgetDeselected deletes the enactments of the policy on nodes it no
// longer selects; their network stays as it is.
func (s *Simulator) forgetDeselected(ctx context.Context, policy *nmstatev1.NodeNetworkConfigurationPolicy, selected []corev1.Node) error {
	keep := map[string]bool{}
	for i := range selected {
		keep[selected[i].Name] = true
	}
	var enactments nmstatev1beta1.NodeNetworkConfigurationEnactmentList
	if err := s.client.List(ctx, &enactments, client.MatchingLabels{nmstateshared.EnactmentPolicyLabel: policy.Name}); err != nil {
		return fmt.Errorf("list the enactments of NodeNetworkConfigurationPolicy %s: %w", policy.Name, err)
	}
	for i := range enactments.Items {
		e := &enactments.Items[i]
		if keep[e.Labels[nmstateshared.EnactmentNodeLabel]] {
			continue
		}
		if err := client.IgnoreNotFound(s.client.Delete(ctx, e)); err != nil {
			return fmt.Errorf("delete NodeNetworkConfigurationEnactment %s: %w", e.Name, err)
		}
	}
	return nil
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
