// Package nmstatesim is a STAND-IN for kubernetes-nmstate's per-node
// handler, for the development environment and tests only (nmstate itself
// is not packaged for this Debian). For each node it serves, it applies the
// desired state of every NodeNetworkConfigurationPolicy selecting the node
// to that node's real kernel through netlink — bridges (with VLAN filtering
// and trunk ports), VLAN sub-interfaces, bonds, MTUs, SR-IOV VF counts in
// the node's sysfs — and only then reports the node's enactment: Available,
// or Failing with the kernel's error. So the agent verifies a kernel, not
// the stand-in's word. A node labelled LabelDrift plays a broken nmstate:
// it reports Available and leaves the kernel alone. Fidelity switches the
// behaviours of NetworkManager, nmstate and kubernetes-nmstate it plays
// (the bridge's default PVID, the port default, the checkpoint rollback);
// a node the policy stops selecting loses its enactment and keeps its
// kernel, as with kubernetes-nmstate.
//
// It understands the subset of nmstate's schema the operator writes.
package nmstatesim

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	nmstateshared "github.com/nmstate/kubernetes-nmstate/api/shared"
	nmstatev1 "github.com/nmstate/kubernetes-nmstate/api/v1"
	nmstatev1beta1 "github.com/nmstate/kubernetes-nmstate/api/v1beta1"
	"github.com/vishvananda/netlink"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

// LabelDrift on a Node makes the stand-in claim every policy Available
// there without touching the kernel: the drift the agent must catch.
const LabelDrift = "sim.vm.example.com/nmstate-drift"

// FieldOwner marks the stand-in's writes.
const FieldOwner = "vmop-nmstate-standin"

// Node is one node the stand-in serves: its kernel links and its sysfs.
type Node struct {
	Name string
	// Links is a netlink handle in the node's network namespace.
	Links *netlink.Handle
	// SysfsRoot holds the node's SR-IOV PFs (device/sriov_numvfs), if any.
	SysfsRoot string
}

// Handler applies policies to the kernels of the nodes it serves.
type Handler struct {
	client   client.Client
	nodes    map[string]Node
	fidelity Fidelity
}

// Setup registers the stand-in with a manager, playing DefaultFidelity.
func Setup(mgr ctrl.Manager, nodes ...Node) error {
	return SetupWith(mgr, DefaultFidelity(), nodes...)
}

// SetupWith registers the stand-in with a manager: it reconciles policies,
// and all of them again when one of its nodes changes (labels may select
// or deselect a policy, or turn drift on). f chooses the upstream
// behaviours it plays.
func SetupWith(mgr ctrl.Manager, f Fidelity, nodes ...Node) error {
	h := &Handler{client: mgr.GetClient(), nodes: map[string]Node{}, fidelity: f}
	for _, n := range nodes {
		h.nodes[n.Name] = n
	}
	err := ctrl.NewControllerManagedBy(mgr).Named("nmstate-standin").
		For(&nmstatev1.NodeNetworkConfigurationPolicy{}).
		Watches(&corev1.Node{}, handler.EnqueueRequestsFromMapFunc(h.allPolicies)).
		Complete(reconcile.Func(h.reconcile))
	if err != nil {
		return fmt.Errorf("set up controller nmstate-standin: %w", err)
	}
	return nil
}

func (h *Handler) allPolicies(ctx context.Context, obj client.Object) []reconcile.Request {
	if _, ours := h.nodes[obj.GetName()]; !ours {
		return nil
	}
	var list nmstatev1.NodeNetworkConfigurationPolicyList
	if err := h.client.List(ctx, &list); err != nil {
		return nil
	}
	requests := make([]reconcile.Request, 0, len(list.Items))
	for i := range list.Items {
		requests = append(requests, reconcile.Request{NamespacedName: types.NamespacedName{Name: list.Items[i].Name}})
	}
	return requests
}

func (h *Handler) reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	var policy nmstatev1.NodeNetworkConfigurationPolicy
	if err := h.client.Get(ctx, req.NamespacedName, &policy); err != nil {
		return reconcile.Result{}, client.IgnoreNotFound(err) // enactments go with their policy (owner reference)
	}
	var errs []error
	for _, n := range h.nodes {
		errs = append(errs, h.enact(ctx, n, &policy))
	}
	return reconcile.Result{}, errors.Join(errs...)
}

// enact applies one policy on one node and reports it, once per generation.
func (h *Handler) enact(ctx context.Context, n Node, policy *nmstatev1.NodeNetworkConfigurationPolicy) error {
	var node corev1.Node
	if err := h.client.Get(ctx, client.ObjectKey{Name: n.Name}, &node); err != nil {
		return client.IgnoreNotFound(err)
	}
	key := nmstateshared.EnactmentKey(n.Name, policy.Name)
	enactment := &nmstatev1beta1.NodeNetworkConfigurationEnactment{}
	err := h.client.Get(ctx, key, enactment)
	exists := err == nil
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("get NodeNetworkConfigurationEnactment %s: %w", key.Name, err)
	}
	// A node the policy no longer selects loses its enactment and keeps its
	// kernel as it is, as kubernetes-nmstate's handler does
	// (controllers/handler/nodenetworkconfigurationpolicy_controller.go:
	// UnmatchedNodeLabels, then deleteEnactmentForPolicy).
	if !labels.SelectorFromSet(policy.Spec.NodeSelector).Matches(labels.Set(node.Labels)) {
		if exists {
			return client.IgnoreNotFound(h.client.Delete(ctx, enactment))
		}
		return nil
	}
	drift := node.Labels[LabelDrift] == "true"
	if exists && enactment.Status.PolicyGeneration == policy.Generation && enactment.Annotations[annotationDrift] == strconv.FormatBool(drift) {
		return nil // this generation is done
	}
	if !exists {
		enactment = &nmstatev1beta1.NodeNetworkConfigurationEnactment{ObjectMeta: metav1.ObjectMeta{
			Name:   key.Name,
			Labels: map[string]string{nmstateshared.EnactmentPolicyLabel: policy.Name, nmstateshared.EnactmentNodeLabel: n.Name},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: nmstatev1.GroupVersion.String(), Kind: "NodeNetworkConfigurationPolicy",
				Name: policy.Name, UID: policy.UID}},
		}}
	}
	enactment.Annotations = map[string]string{annotationDrift: strconv.FormatBool(drift)}
	if !exists {
		if err := h.client.Create(ctx, enactment, client.FieldOwner(FieldOwner)); err != nil {
			return fmt.Errorf("create NodeNetworkConfigurationEnactment %s: %w", key.Name, err)
		}
	} else if err := h.client.Update(ctx, enactment, client.FieldOwner(FieldOwner)); err != nil {
		return fmt.Errorf("update NodeNetworkConfigurationEnactment %s: %w", key.Name, err)
	}
	desiredState, applyErr := h.render(policy.Spec.DesiredState)
	result := "successfully configured the kernel (nmstate stand-in)"
	switch {
	case applyErr != nil:
	case drift:
		result = "claims success without touching the kernel (nmstate stand-in in drift mode)"
	default:
		applyErr = applyWith(n, h.fidelity, desiredState.Raw)
	}
	enactment.Status.PolicyGeneration = policy.Generation
	enactment.Status.DesiredState = desiredState
	enactment.Status.Conditions = conditions(applyErr, result)
	if err := h.client.Status().Update(ctx, enactment, client.FieldOwner(FieldOwner)); err != nil {
		return fmt.Errorf("update the status of NodeNetworkConfigurationEnactment %s: %w", key.Name, err)
	}
	return nil
}

// render is the desired state the handler hands nmstate and writes into
// the enactment: the policy's, with kubernetes-nmstate's port default when
// Fidelity.PortDefault is on.
func (h *Handler) render(policy nmstateshared.State) (nmstateshared.State, error) {
	if !h.fidelity.PortDefault {
		return policy, nil
	}
	raw, err := renderPortDefault(policy.Raw)
	if err != nil {
		return policy, err
	}
	return nmstateshared.NewState(string(raw)), nil
}

// annotationDrift records whether a generation was enacted in drift mode,
// so turning drift off applies it for real.
const annotationDrift = "sim.vm.example.com/enacted-in-drift"

func conditions(err error, success string) nmstateshared.ConditionList {
	now := metav1.Now()
	status := func(t nmstateshared.ConditionType, on bool, reason, message string) nmstateshared.Condition {
		s := corev1.ConditionFalse
		if on {
			s = corev1.ConditionTrue
		}
		return nmstateshared.Condition{Type: t, Status: s, Reason: nmstateshared.ConditionReason(reason), Message: message,
			LastTransitionTime: now, LastHeartbeatTime: now}
	}
	if err != nil {
		return nmstateshared.ConditionList{
			status(nmstateshared.NodeNetworkConfigurationEnactmentConditionFailing, true, "FailedToConfigure", err.Error()),
			status(nmstateshared.NodeNetworkConfigurationEnactmentConditionAvailable, false, "FailedToConfigure", ""),
		}
	}
	return nmstateshared.ConditionList{
		status(nmstateshared.NodeNetworkConfigurationEnactmentConditionAvailable, true, "SuccessfullyConfigured", success),
		status(nmstateshared.NodeNetworkConfigurationEnactmentConditionFailing, false, "SuccessfullyConfigured", ""),
	}
}
