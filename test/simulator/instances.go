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
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	kubevirtv1 "kubevirt.io/api/core/v1"
	cdiv1 "kubevirt.io/containerized-data-importer-api/pkg/apis/core/v1beta1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/jianfenliu/vmoperator/internal/testing/consumers"
)

func (s *Simulator) setupInstances(mgr ctrl.Manager) error {
	err := ctrl.NewControllerManagedBy(mgr).Named("sim-virt-handler").
		For(&kubevirtv1.VirtualMachineInstance{}).
		// A claim binding, an import ending or a node appearing can let a
		// waiting instance on.
		Watches(&corev1.PersistentVolumeClaim{}, handler.EnqueueRequestsFromMapFunc(s.waitingInstances)).
		Watches(&cdiv1.DataVolume{}, handler.EnqueueRequestsFromMapFunc(s.waitingInstances)).
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
// place the instance, start it once its claims are bound, report its
// addresses. A final instance (Failed, Succeeded) is left as it is: the VM
// controller decides what follows. The namespace's switches (faults.go)
// make it fail as KubeVirt's instances do.
func (s *Simulator) reconcileInstance(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	var vmi kubevirtv1.VirtualMachineInstance
	if err := s.client.Get(ctx, req.NamespacedName, &vmi); err != nil || !vmi.DeletionTimestamp.IsZero() || isFinal(&vmi) {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	set, err := s.switchesOf(ctx, vmi.Namespace)
	if err != nil {
		return ctrl.Result{}, err
	}
	next, err := s.nextInstanceStatus(ctx, &vmi, set)
	if err != nil {
		return ctrl.Result{}, err
	}
	if next.Phase != vmi.Status.Phase {
		next.PhaseTransitionTimestamps = append(next.PhaseTransitionTimestamps,
			kubevirtv1.VirtualMachineInstancePhaseTransitionTimestamp{Phase: next.Phase, PhaseTransitionTimestamp: metav1.Now()})
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

func (s *Simulator) nextInstanceStatus(ctx context.Context, vmi *kubevirtv1.VirtualMachineInstance, set switches) (*kubevirtv1.VirtualMachineInstanceStatus, error) {
	next := vmi.Status.DeepCopy()
	// An instance whose claim does not exist yet stays Pending, unscheduled:
	// pkg/virt-controller/watch/vmi/datavolumes.go (areDataVolumesReady)
	// and lifecycle.go (updateStatus) set PodScheduled=False/Unschedulable
	// and Synchronized=False/FailedPvcNotFound, both with "PVC <ns>/<name>
	// does not exist, waiting for it to appear"; the VM's printableStatus
	// is ErrorPvcNotFound. Always on, as upstream.
	if next.NodeName == "" {
		missing, err := s.missingClaim(ctx, vmi)
		if err != nil || missing != "" {
			pending(next, missing)
			return next, err
		}
	}
	// Nor does virt-controller create the launcher pod while a DataVolume is
	// not ready (vmi/vmi.go sync, vmi/datavolumes.go handleSyncDataVolumes):
	// an import CDI keeps retrying leaves the instance Pending and the VM
	// DataVolumeError, it does not start.
	if next.NodeName == "" {
		waiting, err := s.dataVolumeNotReady(ctx, vmi)
		if err != nil || waiting {
			next.Phase = kubevirtv1.Pending
			next.Conditions = []kubevirtv1.VirtualMachineInstanceCondition{notReady("PodNotExists", "virt-launcher pod has not yet been scheduled")}
			return next, err
		}
	}
	if next.NodeName == "" {
		node, why, err := s.pickNode(ctx, vmi)
		if err != nil {
			return nil, err
		}
		next.Phase = kubevirtv1.Scheduling
		next.Conditions = []kubevirtv1.VirtualMachineInstanceCondition{{
			Type: "PodScheduled", Status: corev1.ConditionFalse, Reason: corev1.PodReasonUnschedulable, Message: why,
		}}
		if node == "" {
			return next, nil
		}
		if reason := set[SwitchImagePull]; reason == ImagePullErr || reason == ImagePullBackOff {
			if image := containerDiskImage(vmi); image != "" {
				imagePullFailing(next, reason, image)
				return next, nil
			}
		}
		next.NodeName, next.Phase, next.Conditions = node, kubevirtv1.Scheduled, nil
	}
	bound, err := s.claimsBound(ctx, vmi)
	if err != nil || !bound {
		return next, err
	}
	if set.on(SwitchVMIStart, VMIStartFails) {
		// virt-launcher died before the guest ran (lifecycle.go: the pod
		// went down while the instance was scheduled).
		next.Phase = kubevirtv1.Failed
		next.Conditions = []kubevirtv1.VirtualMachineInstanceCondition{notReady("PodTerminating", "virt-launcher pod is terminating (simulated start failure)")}
		return next, nil
	}
	interfaces, err := s.guestInterfaces(ctx, vmi, !set.on(SwitchGuestAgent, GuestAgentAbsent))
	if err != nil {
		return nil, err
	}
	next.Phase, next.Interfaces = kubevirtv1.Running, interfaces
	next.Conditions = []kubevirtv1.VirtualMachineInstanceCondition{{Type: kubevirtv1.VirtualMachineInstanceReady, Status: corev1.ConditionTrue}}
	return next, nil
}

// pending is an instance waiting for a claim that does not exist yet, as
// virt-controller reports it (vmi/datavolumes.go, vmi/lifecycle.go).
func pending(status *kubevirtv1.VirtualMachineInstanceStatus, missing string) {
	if missing == "" {
		return
	}
	message := fmt.Sprintf("PVC %s does not exist, waiting for it to appear", missing)
	status.Phase = kubevirtv1.Pending
	status.Conditions = []kubevirtv1.VirtualMachineInstanceCondition{
		notReady("PodNotExists", "virt-launcher pod has not yet been scheduled"),
		{Type: "PodScheduled", Status: corev1.ConditionFalse, Reason: corev1.PodReasonUnschedulable, Message: message},
		{Type: kubevirtv1.VirtualMachineInstanceSynchronized, Status: corev1.ConditionFalse, Reason: reasonFailedPvcNotFound, Message: message},
	}
}

// imagePullFailing is an instance whose pod cannot pull its container
// disk: still Scheduling, with the kubelet's reason (vmi/lifecycle.go,
// checkForContainerImageError; the messages are the kubelet's).
func imagePullFailing(status *kubevirtv1.VirtualMachineInstanceStatus, reason, image string) {
	message := fmt.Sprintf("Back-off pulling image %q (simulated)", image)
	if reason == ImagePullErr {
		message = fmt.Sprintf("rpc error: code = NotFound desc = failed to pull and unpack image %q: not found (simulated)", image)
	}
	status.Phase = kubevirtv1.Scheduling
	status.Conditions = []kubevirtv1.VirtualMachineInstanceCondition{
		notReady("GuestNotRunning", "Guest VM is not reported as running"),
		{Type: kubevirtv1.VirtualMachineInstanceSynchronized, Status: corev1.ConditionFalse, Reason: reason, Message: message},
	}
}

func containerDiskImage(vmi *kubevirtv1.VirtualMachineInstance) string {
	for _, volume := range vmi.Spec.Volumes {
		if volume.ContainerDisk != nil {
			return volume.ContainerDisk.Image
		}
	}
	return ""
}

// missingClaim names the first claim of the instance that does not exist
// (namespace/name), "" when all do.
func (s *Simulator) missingClaim(ctx context.Context, vmi *kubevirtv1.VirtualMachineInstance) (string, error) {
	for _, name := range claimNames(vmi) {
		var claim corev1.PersistentVolumeClaim
		err := s.client.Get(ctx, client.ObjectKey{Namespace: vmi.Namespace, Name: name}, &claim)
		if apierrors.IsNotFound(err) {
			return vmi.Namespace + "/" + name, nil
		}
		if err != nil {
			return "", fmt.Errorf("read claim %s/%s of VirtualMachineInstance %s: %w", vmi.Namespace, name, vmi.Name, err)
		}
	}
	return "", nil
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
				// A final instance's pod is gone: it holds no node.
				if other.UID != vmi.UID && !isFinal(other) && other.Status.NodeName == node.Name && selector.Matches(labels.Set(other.Labels)) &&
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

// dataVolumeNotReady says whether a DataVolume of the instance is neither
// imported nor waiting for its first consumer (storage/types/dv.go
// IsDataVolumeReady); one that does not exist is the claim's business.
func (s *Simulator) dataVolumeNotReady(ctx context.Context, vmi *kubevirtv1.VirtualMachineInstance) (bool, error) {
	for _, volume := range vmi.Spec.Volumes {
		if volume.DataVolume == nil {
			continue
		}
		var dv cdiv1.DataVolume
		err := s.client.Get(ctx, client.ObjectKey{Namespace: vmi.Namespace, Name: volume.DataVolume.Name}, &dv)
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			return false, fmt.Errorf("read DataVolume %s/%s of VirtualMachineInstance %s: %w", vmi.Namespace, volume.DataVolume.Name, vmi.Name, err)
		}
		switch dv.Status.Phase {
		case cdiv1.Succeeded, cdiv1.WaitForFirstConsumer, cdiv1.PendingPopulation:
		default:
			return true, nil
		}
	}
	return false, nil
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
func (s *Simulator) guestInterfaces(ctx context.Context, vmi *kubevirtv1.VirtualMachineInstance, guestAgent bool) ([]kubevirtv1.VirtualMachineInstanceNetworkInterface, error) {
	if !guestAgent {
		return domainInterfaces(vmi), nil
	}
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

// domainInterfaces is what KubeVirt reports of a guest without
// qemu-guest-agent (pkg/network/setup/netstat.go): each interface's name
// and MAC from the domain and Multus, no guest interface name, no address.
func domainInterfaces(vmi *kubevirtv1.VirtualMachineInstance) []kubevirtv1.VirtualMachineInstanceNetworkInterface {
	interfaces := make([]kubevirtv1.VirtualMachineInstanceNetworkInterface, 0, len(vmi.Spec.Domain.Devices.Interfaces))
	for _, iface := range vmi.Spec.Domain.Devices.Interfaces {
		interfaces = append(interfaces, kubevirtv1.VirtualMachineInstanceNetworkInterface{
			Name: iface.Name, MAC: iface.MacAddress, InfoSource: "domain, multus-status",
		})
	}
	return interfaces
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
