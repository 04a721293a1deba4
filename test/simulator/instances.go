package simulator

import (
	"context"
	"crypto/sha256"
	"fmt"
	"net/netip"
	"sort"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	kubevirtv1 "kubevirt.io/api/core/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/jianfenliu/vmoperator/internal/testing/consumers"
)

func (s *Simulator) setupInstances(mgr ctrl.Manager) error {
	err := ctrl.NewControllerManagedBy(mgr).Named("sim-virt-handler").
		For(&kubevirtv1.VirtualMachineInstance{}).
		// A claim binding or a node appearing can let a waiting instance on.
		Watches(&corev1.PersistentVolumeClaim{}, handler.EnqueueRequestsFromMapFunc(s.waitingInstances)).
		Watches(&corev1.Node{}, handler.EnqueueRequestsFromMapFunc(s.waitingInstances)).
		Complete(ctrlFunc(s.reconcileInstance))
	if err != nil {
		return fmt.Errorf("set up controller sim-virt-handler: %w", err)
	}
	return nil
}

func (s *Simulator) waitingInstances(ctx context.Context, _ client.Object) []reconcile.Request {
	var instances kubevirtv1.VirtualMachineInstanceList
	if err := s.client.List(ctx, &instances); err != nil {
		return nil
	}
	var requests []reconcile.Request
	for i := range instances.Items {
		if instances.Items[i].Status.Phase != kubevirtv1.Running {
			requests = append(requests, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&instances.Items[i])})
		}
	}
	return requests
}

// reconcileInstance plays the scheduler, virt-handler and the guest agent:
// place the instance, start it once its claims are bound, report its addresses.
func (s *Simulator) reconcileInstance(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	var vmi kubevirtv1.VirtualMachineInstance
	if err := s.client.Get(ctx, req.NamespacedName, &vmi); err != nil || !vmi.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if waiting, err := s.waitForMissingClaims(ctx, &vmi); err != nil || waiting {
		return ctrl.Result{}, err
	}
	next := vmi.Status.DeepCopy()
	if next.NodeName == "" {
		node, why, err := s.pickNode(ctx, &vmi)
		if err != nil {
			return ctrl.Result{}, err
		}
		next.Phase = kubevirtv1.Scheduling
		next.Conditions = []kubevirtv1.VirtualMachineInstanceCondition{{
			Type: "PodScheduled", Status: corev1.ConditionFalse, Reason: "Unschedulable", Message: why,
		}}
		if node != "" {
			next.NodeName, next.Phase, next.Conditions = node, kubevirtv1.Scheduled, nil
		}
	}
	if next.NodeName != "" {
		bound, err := s.claimsBound(ctx, &vmi)
		if err != nil {
			return ctrl.Result{}, err
		}
		if bound {
			interfaces, err := s.guestInterfaces(ctx, &vmi)
			if err != nil {
				return ctrl.Result{}, err
			}
			next.Phase, next.Interfaces = kubevirtv1.Running, interfaces
			next.Conditions = []kubevirtv1.VirtualMachineInstanceCondition{{Type: kubevirtv1.VirtualMachineInstanceReady, Status: corev1.ConditionTrue}}
		}
	}
	if apiequality.Semantic.DeepEqual(&vmi.Status, next) {
		return ctrl.Result{}, nil
	}
	vmi.Status = *next
	if err := s.client.Update(ctx, &vmi, client.FieldOwner(FieldOwner)); err != nil {
		return ctrl.Result{}, fmt.Errorf("update VirtualMachineInstance %s/%s: %w", vmi.Namespace, vmi.Name, err)
	}
	return ctrl.Result{}, nil
}

// pickNode returns the first Node (by name) the instance may run on, or
// why none fits in kube-scheduler's style.
func (s *Simulator) pickNode(ctx context.Context, vmi *kubevirtv1.VirtualMachineInstance) (string, string, error) {
	var nodes corev1.NodeList
	if err := s.client.List(ctx, &nodes); err != nil {
		return "", "", fmt.Errorf("list Nodes to place VirtualMachineInstance %s/%s: %w", vmi.Namespace, vmi.Name, err)
	}
	if len(nodes.Items) == 0 {
		return DefaultNode, "", nil
	}
	sort.Slice(nodes.Items, func(i, j int) bool { return nodes.Items[i].Name < nodes.Items[j].Name })
	var instances kubevirtv1.VirtualMachineInstanceList
	if err := s.client.List(ctx, &instances); err != nil {
		return "", "", fmt.Errorf("list VirtualMachineInstances to place %s/%s: %w", vmi.Namespace, vmi.Name, err)
	}
	reasons := map[string]int{}
	for i := range nodes.Items {
		reason := unfit(vmi, &nodes.Items[i], instances.Items)
		if reason == "" {
			return nodes.Items[i].Name, "", nil
		}
		reasons[reason]++
	}
	var parts []string
	for reason, n := range reasons {
		parts = append(parts, fmt.Sprintf("%d node(s) %s", n, reason))
	}
	sort.Strings(parts)
	return "", fmt.Sprintf("0/%d nodes are available: %s (simulated scheduler)", len(nodes.Items), strings.Join(parts, ", ")), nil
}

// unfit says why a node cannot take the instance, or "" when it can.
func unfit(vmi *kubevirtv1.VirtualMachineInstance, node *corev1.Node, instances []kubevirtv1.VirtualMachineInstance) string {
	if node.Spec.Unschedulable {
		return "were unschedulable"
	}
	if !labels.SelectorFromSet(vmi.Spec.NodeSelector).Matches(labels.Set(node.Labels)) {
		return "didn't match Pod's node affinity/selector"
	}
	affinity := vmi.Spec.Affinity
	if affinity != nil && affinity.NodeAffinity != nil && affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution != nil &&
		!matchesAnyTerm(node, affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms) {
		return "didn't match Pod's node affinity/selector"
	}
	if affinity != nil && affinity.PodAntiAffinity != nil {
		for _, term := range affinity.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution {
			selector, err := metav1.LabelSelectorAsSelector(term.LabelSelector)
			if err != nil {
				continue
			}
			for i := range instances {
				other := &instances[i]
				if other.UID != vmi.UID && other.Status.NodeName == node.Name && selector.Matches(labels.Set(other.Labels)) &&
					(term.NamespaceSelector != nil || other.Namespace == vmi.Namespace) {
					return "didn't match pod anti-affinity rules"
				}
			}
		}
	}
	return ""
}

func matchesAnyTerm(node *corev1.Node, terms []corev1.NodeSelectorTerm) bool {
	for _, term := range terms {
		ok := true
		for _, expr := range term.MatchExpressions {
			value, has := node.Labels[expr.Key]
			switch expr.Operator {
			case corev1.NodeSelectorOpIn:
				ok = ok && has && contains(expr.Values, value)
			case corev1.NodeSelectorOpNotIn:
				ok = ok && !(has && contains(expr.Values, value))
			case corev1.NodeSelectorOpExists:
				ok = ok && has
			case corev1.NodeSelectorOpDoesNotExist:
				ok = ok && !has
			default:
				ok = false
			}
		}
		if ok {
			return true
		}
	}
	return false
}

func contains(values []string, value string) bool {
	for _, v := range values {
		if v == value {
			return true
		}
	}
	return false
}

// claimsBound says whether every claim the instance uses is bound.
func (s *Simulator) claimsBound(ctx context.Context, vmi *kubevirtv1.VirtualMachineInstance) (bool, error) {
	for _, name := range claimNames(vmi) {
		var claim corev1.PersistentVolumeClaim
		if err := s.client.Get(ctx, client.ObjectKey{Namespace: vmi.Namespace, Name: name}, &claim); err != nil {
			return false, client.IgnoreNotFound(err)
		}
		if claim.Status.Phase != corev1.ClaimBound {
			return false, nil
		}
	}
	return true, nil
}

func claimNames(vmi *kubevirtv1.VirtualMachineInstance) []string {
	var names []string
	for _, volume := range vmi.Spec.Volumes {
		switch {
		case volume.DataVolume != nil:
			names = append(names, volume.DataVolume.Name)
		case volume.PersistentVolumeClaim != nil:
			names = append(names, volume.PersistentVolumeClaim.ClaimName)
		}
	}
	return names
}

// guestInterfaces reports what a guest that applied its cloud-init network
// data would report: each NIC's name and static address, or a DHCP lease
// from the benchmarking range 198.18.0.0/15 that no real network uses. The
// addresses are those cloud-init itself renders for a Debian guest
// (internal/testing/consumers), not a re-reading of the operator's YAML.
func (s *Simulator) guestInterfaces(ctx context.Context, vmi *kubevirtv1.VirtualMachineInstance) ([]kubevirtv1.VirtualMachineInstanceNetworkInterface, error) {
	networkData, err := s.networkData(ctx, vmi)
	if err != nil {
		return nil, err
	}
	var guest consumers.Rendering
	if networkData != "" {
		if guest, err = s.guests.render(networkData); err != nil {
			return nil, err
		}
	}
	var interfaces []kubevirtv1.VirtualMachineInstanceNetworkInterface
	for _, iface := range vmi.Spec.Domain.Devices.Interfaces {
		status := kubevirtv1.VirtualMachineInstanceNetworkInterface{Name: iface.Name, MAC: iface.MacAddress, InfoSource: "guest-agent"}
		for _, nic := range guest.Interfaces {
			if !strings.EqualFold(nic.MAC, iface.MacAddress) {
				continue
			}
			status.InterfaceName = nic.Name
			switch {
			case len(nic.Addresses) > 0:
				if prefix, err := netip.ParsePrefix(nic.Addresses[0]); err == nil {
					status.IP = prefix.Addr().String()
				}
			case nic.DHCP:
				status.IP = dhcpLease(iface.MacAddress)
			}
		}
		if status.IP != "" {
			status.IPs = []string{status.IP}
		}
		interfaces = append(interfaces, status)
	}
	return interfaces, nil
}

// guestCache remembers cloud-init's Debian rendering of each network-data.
type guestCache struct {
	// render replaces cloud-init when set.
	renderer GuestRenderer
	mu       sync.Mutex
	rendered map[string]consumers.Rendering
}

func (c *guestCache) render(networkData string) (consumers.Rendering, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if r, ok := c.rendered[networkData]; ok {
		return r, nil
	}
	render := c.renderer
	if render == nil {
		render = func(networkData string) (consumers.Rendering, error) {
			return consumers.Render(networkData, consumers.Guests[0])
		}
	}
	r, err := render(networkData)
	if err != nil {
		return r, err
	}
	if c.rendered == nil {
		c.rendered = map[string]consumers.Rendering{}
	}
	c.rendered[networkData] = r
	return r, nil
}

// networkData is the VMI's cloud-init network data, "" when it has none.
func (s *Simulator) networkData(ctx context.Context, vmi *kubevirtv1.VirtualMachineInstance) (string, error) {
	for _, volume := range vmi.Spec.Volumes {
		source := volume.CloudInitNoCloud
		if source != nil && source.NetworkData != "" {
			return source.NetworkData, nil // inline
		}
		if source == nil || source.NetworkDataSecretRef == nil {
			continue
		}
		var secret corev1.Secret
		if err := s.client.Get(ctx, client.ObjectKey{Namespace: vmi.Namespace, Name: source.NetworkDataSecretRef.Name}, &secret); err != nil {
			return "", client.IgnoreNotFound(err)
		}
		return string(secret.Data["networkdata"]), nil
	}
	return "", nil
}

func dhcpLease(mac string) string {
	sum := sha256.Sum256([]byte(strings.ToLower(mac)))
	return fmt.Sprintf("198.18.%d.%d", sum[0], 1+sum[1]%253)
}
