// Package nmstatesim is a STAND-IN for kubernetes-nmstate's per-node
// handler, for the development environment and tests only (nmstate itself
// is not packaged for this Debian). For each node it serves, it applies the
// desired state of every NodeNetworkConfigurationPolicy selecting the node
// to that node's real kernel through netlink — bridges (with VLAN filtering
// and trunk ports), VLAN sub-interfaces, bonds, MTUs, SR-IOV VF counts in
// the node's sysfs — and only then reports the node's enactment: Available,
// or Failing with the kernel's error. So the agent verifies a kernel, not
// the stand-in's word. A node labelled LabelDrift plays a broken nmstate:
// it reports Available and leaves the kernel alone.
//
// It understands the subset of nmstate's schema the operator writes.
package nmstatesim

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
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

	"github.com/jianfenliu/vmoperator/api/nmstate"
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
	client client.Client
	nodes  map[string]Node
}

// Setup registers the stand-in with a manager: it reconciles policies, and
// all of them again when one of its nodes changes (labels may select or
// deselect a policy, or turn drift on).
func Setup(mgr ctrl.Manager, nodes ...Node) error {
	h := &Handler{client: mgr.GetClient(), nodes: map[string]Node{}}
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
	result := "successfully configured the kernel (nmstate stand-in)"
	var applyErr error
	if drift {
		result = "claims success without touching the kernel (nmstate stand-in in drift mode)"
	} else {
		applyErr = apply(n, policy.Spec.DesiredState.Raw)
	}
	enactment.Status.PolicyGeneration = policy.Generation
	enactment.Status.DesiredState = policy.Spec.DesiredState
	enactment.Status.Conditions = conditions(applyErr, result)
	if err := h.client.Status().Update(ctx, enactment, client.FieldOwner(FieldOwner)); err != nil {
		return fmt.Errorf("update the status of NodeNetworkConfigurationEnactment %s: %w", key.Name, err)
	}
	return nil
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

// apply makes the node's kernel match a desired state, interface by interface.
func apply(n Node, raw []byte) error {
	state, err := nmstate.Parse(raw)
	if err != nil {
		return err
	}
	for _, i := range state.Interfaces {
		if err := applyInterface(n, i); err != nil {
			return fmt.Errorf("interface %s (%s): %w", i.Name, i.Type, err)
		}
	}
	return nil
}

func applyInterface(n Node, i nmstate.Interface) error {
	if i.State == nmstate.StateAbsent {
		link, err := n.Links.LinkByName(i.Name)
		if err != nil {
			return nil // already gone
		}
		if err := n.Links.LinkDel(link); err != nil {
			return fmt.Errorf("delete link %s: %w", i.Name, err)
		}
		return nil
	}
	switch i.Type {
	case nmstate.TypeLinuxBridge:
		return applyBridge(n, i)
	case nmstate.TypeVLAN:
		if i.VLAN == nil {
			return errors.New("vlan settings missing")
		}
		parent, err := n.Links.LinkByName(i.VLAN.BaseIface)
		if err != nil {
			return fmt.Errorf("base interface %s: %w", i.VLAN.BaseIface, err)
		}
		return ensure(n, &netlink.Vlan{LinkAttrs: netlink.LinkAttrs{Name: i.Name, ParentIndex: parent.Attrs().Index}, VlanId: int(i.VLAN.ID)}, int(i.MTU))
	case nmstate.TypeBond:
		return applyBond(n, i)
	case nmstate.TypeEthernet:
		return applyEthernet(n, i)
	}
	return fmt.Errorf("the nmstate stand-in cannot build interfaces of type %s", i.Type)
}

// ensure creates a link that does not exist yet, then sets its MTU and brings it up.
func ensure(n Node, want netlink.Link, mtu int) error {
	link, err := n.Links.LinkByName(want.Attrs().Name)
	if err != nil {
		if err := n.Links.LinkAdd(want); err != nil {
			return fmt.Errorf("create: %w", err)
		}
		if link, err = n.Links.LinkByName(want.Attrs().Name); err != nil {
			return fmt.Errorf("find link %s after creating it: %w", want.Attrs().Name, err)
		}
	}
	if mtu > 0 && link.Attrs().MTU != mtu {
		if err := n.Links.LinkSetMTU(link, mtu); err != nil {
			return fmt.Errorf("set MTU %d: %w", mtu, err)
		}
	}
	if err := n.Links.LinkSetUp(link); err != nil {
		return fmt.Errorf("bring up link %s: %w", want.Attrs().Name, err)
	}
	return nil
}

func applyBridge(n Node, i nmstate.Interface) error {
	filtering := i.Filtering()
	if err := ensure(n, &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: i.Name}, VlanFiltering: &filtering}, int(i.MTU)); err != nil {
		return err
	}
	bridge, err := n.Links.LinkByName(i.Name)
	if err != nil {
		return fmt.Errorf("find bridge %s: %w", i.Name, err)
	}
	if current, ok := bridge.(*netlink.Bridge); !ok || current.VlanFiltering == nil || *current.VlanFiltering != filtering {
		if err := n.Links.BridgeSetVlanFiltering(bridge, filtering); err != nil {
			return fmt.Errorf("vlan_filtering: %w", err)
		}
	}
	for _, p := range i.Ports() {
		port, err := n.Links.LinkByName(p.Name)
		if err != nil {
			return fmt.Errorf("port %s: %w", p.Name, err)
		}
		if err := n.Links.LinkSetMaster(port, bridge); err != nil {
			return fmt.Errorf("attach port %s: %w", p.Name, err)
		}
		if err := n.Links.LinkSetUp(port); err != nil {
			return fmt.Errorf("bring up port %s: %w", p.Name, err)
		}
		if p.VLAN == nil {
			continue
		}
		// A trunk port carries exactly its trunk tags: the default VLAN 1
		// the kernel gives every port goes unless listed.
		if err := n.Links.BridgeVlanDel(port, 1, true, true, false, true); err != nil {
			return fmt.Errorf("port %s: drop default VLAN 1: %w", p.Name, err)
		}
		for _, id := range p.Trunked() {
			if err := n.Links.BridgeVlanAdd(port, uint16(id), false, false, false, true); err != nil {
				return fmt.Errorf("port %s: trunk VLAN %d: %w", p.Name, id, err)
			}
		}
	}
	return nil
}

func applyBond(n Node, i nmstate.Interface) error {
	bond := netlink.NewLinkBond(netlink.LinkAttrs{Name: i.Name})
	if i.LinkAggregation != nil {
		bond.Mode = netlink.StringToBondMode(i.LinkAggregation.Mode)
	}
	if err := ensure(n, bond, int(i.MTU)); err != nil {
		return err
	}
	master, err := n.Links.LinkByName(i.Name)
	if err != nil {
		return fmt.Errorf("find bond %s: %w", i.Name, err)
	}
	if i.LinkAggregation == nil {
		return nil
	}
	for _, name := range i.LinkAggregation.Port {
		port, err := n.Links.LinkByName(name)
		if err != nil {
			return fmt.Errorf("bond port %s: %w", name, err)
		}
		if port.Attrs().MasterIndex == master.Attrs().Index {
			continue
		}
		// A port joins a bond while down.
		if err := n.Links.LinkSetDown(port); err != nil {
			return fmt.Errorf("take down bond port %s: %w", name, err)
		}
		if err := n.Links.LinkSetMaster(port, master); err != nil {
			return fmt.Errorf("enslave %s: %w", name, err)
		}
		if err := n.Links.LinkSetUp(port); err != nil {
			return fmt.Errorf("bring up bond port %s: %w", name, err)
		}
	}
	return nil
}

func applyEthernet(n Node, i nmstate.Interface) error {
	link, err := n.Links.LinkByName(i.Name)
	if err != nil {
		return fmt.Errorf("no such NIC: %w", err)
	}
	if mtu := int(i.MTU); mtu > 0 && link.Attrs().MTU != mtu {
		if err := n.Links.LinkSetMTU(link, mtu); err != nil {
			return fmt.Errorf("set MTU %d: %w", i.MTU, err)
		}
	}
	if i.Ethernet != nil && i.Ethernet.SRIOV != nil && i.Ethernet.SRIOV.TotalVFs != nil {
		path := filepath.Join(n.SysfsRoot, "class", "net", i.Name, "device", "sriov_numvfs")
		if err := os.WriteFile(path, []byte(strconv.Itoa(int(*i.Ethernet.SRIOV.TotalVFs))+"\n"), 0o644); err != nil {
			return fmt.Errorf("set the VF count: %w", err)
		}
	}
	if err := n.Links.LinkSetUp(link); err != nil {
		return fmt.Errorf("bring up NIC %s: %w", i.Name, err)
	}
	return nil
}
