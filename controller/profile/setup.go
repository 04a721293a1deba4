package profile

import (
	"context"
	"fmt"
	"slices"
	"time"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	kubevirtv1 "kubevirt.io/api/core/v1"
	cdiv1 "kubevirt.io/containerized-data-importer-api/pkg/apis/core/v1beta1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
	"github.com/jianfenliu/vmoperator/controller/desired"
	"github.com/jianfenliu/vmoperator/controller/nodelabels"
	"github.com/jianfenliu/vmoperator/controller/nodewake"
	"github.com/jianfenliu/vmoperator/controller/placement"
)

// Field indexes on profiles, so that an event on another object wakes only
// the profiles it concerns.
const (
	indexHostNetwork  = "vmop.hostNetwork"
	indexStaticIP     = "vmop.staticIP"
	indexMAC          = "vmop.mac"
	indexNAD          = "vmop.nad"
	indexStorageClass = "vmop.storageClass"
)

// hostNetworkKeys are what a profile's networks look for in a HostNetwork:
// its name, its bridge, its SR-IOV resource, or being the default of a type.
// They depend on the profile alone, so a HostNetwork event finds every
// profile it may change, including those refused for want of one.
func hostNetworkKeys(p *vmv1alpha1.VirtualMachineProfile) []string {
	var keys []string
	for i := range p.Spec.Networks {
		network := &p.Spec.Networks[i]
		switch {
		case network.NADName != "":
			keys = append(keys, "named") // where a named attachment lands is only known from its config
		case network.HostNetwork != "":
			keys = append(keys, "name/"+network.HostNetwork)
		case network.Type == vmv1alpha1.NetworkTypeBridge || network.Type == vmv1alpha1.NetworkTypeOVS:
			keys = append(keys, "bridge/"+desired.BridgeName(network))
		case network.Type == vmv1alpha1.NetworkTypeSRIOV && network.SRIOV != nil && network.SRIOV.ResourceName != "":
			keys = append(keys, "resource/"+network.SRIOV.ResourceName)
		default:
			keys = append(keys, "default/"+string(network.Type))
		}
	}
	return keys
}

// keysOfHostNetwork are the index values a HostNetwork answers to.
func keysOfHostNetwork(h *vmv1alpha1.HostNetwork) []string {
	keys := []string{"name/" + h.Name, "named"}
	if h.Spec.BridgeName != "" {
		keys = append(keys, "bridge/"+h.Spec.BridgeName)
	}
	if h.Spec.SRIOV != nil {
		keys = append(keys, "resource/"+h.Spec.SRIOV.ResourceName)
	}
	if h.Spec.Default {
		keys = append(keys, "default/"+string(h.Spec.Type))
	}
	return keys
}

func profileIndexes() map[string]func(*vmv1alpha1.VirtualMachineProfile) []string {
	return map[string]func(*vmv1alpha1.VirtualMachineProfile) []string{
		indexHostNetwork: hostNetworkKeys,
		indexStaticIP:    indexKeys(staticIPIdentity()),
		indexMAC:         indexKeys(macIdentity()),
		indexNAD: func(p *vmv1alpha1.VirtualMachineProfile) []string {
			var keys []string
			for i := range p.Spec.Networks {
				if p.Spec.Networks[i].NADName != "" {
					keys = append(keys, desired.NADKey(p, &p.Spec.Networks[i]).String())
				}
			}
			return keys
		},
		indexStorageClass: func(p *vmv1alpha1.VirtualMachineProfile) []string {
			var names []string
			for i := range p.Spec.Disks {
				if p.Spec.Disks[i].StorageClassName != "" {
					names = append(names, p.Spec.Disks[i].StorageClassName)
				}
			}
			return names
		},
	}
}

// SetupWithManager registers the indexes and the profile controller.
// Watches cover only the dependencies the cluster serves.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	ctx := context.Background()
	for name, extract := range profileIndexes() {
		err := mgr.GetFieldIndexer().IndexField(ctx, &vmv1alpha1.VirtualMachineProfile{}, name, func(obj client.Object) []string {
			return extract(obj.(*vmv1alpha1.VirtualMachineProfile))
		})
		if err != nil {
			return fmt.Errorf("index VirtualMachineProfiles by %s: %w", name, err)
		}
	}
	// Children are mapped to their profile by label, not by owner reference:
	// retained disks have no owner, and an orphan deletion strips the owner
	// references of everything, which a profile re-created with the name
	// then adopts.
	r.nodeWakes = nodewake.New(r.CapabilityWakeInterval)
	children := handler.EnqueueRequestsFromMapFunc(profileOfChild)
	b := ctrl.NewControllerManagedBy(mgr).
		For(&vmv1alpha1.VirtualMachineProfile{}).
		WithOptions(controller.Options{MaxConcurrentReconciles: max(r.Workers, 1)}).
		Watches(&corev1.PersistentVolumeClaim{}, children).
		Watches(&corev1.Namespace{}, handler.EnqueueRequestsFromMapFunc(r.profilesInNamespace),
			builder.OnlyMetadata, builder.WithPredicates(predicate.LabelChangedPredicate{})).
		Watches(&storagev1.StorageClass{}, r.profilesByIndex(indexStorageClass, nameKey)).
		Watches(&vmv1alpha1.HostNetwork{}, handler.EnqueueRequestsFromMapFunc(r.profilesOfHostNetwork)).
		Watches(&vmv1alpha1.VirtualMachineProfile{}, handler.EnqueueRequestsFromMapFunc(r.profilesSharingIdentities))
	if r.Deps.KubeVirt {
		b = b.Watches(&kubevirtv1.VirtualMachine{}, children).
			Watches(&kubevirtv1.VirtualMachineInstance{}, handler.EnqueueRequestsFromMapFunc(profileOfInstance)).
			Watches(&vmv1alpha1.NodeCapability{}, r.profilesAffectedByCapability()).
			Watches(&corev1.Node{}, r.profilesAffectedByNode())
	}
	if r.Deps.CDI {
		b = b.Watches(&cdiv1.DataVolume{}, children)
	}
	if r.Deps.Multus {
		b = b.Watches(&nadv1.NetworkAttachmentDefinition{}, children).
			Watches(&nadv1.NetworkAttachmentDefinition{}, r.profilesByIndex(indexNAD, namespacedKey))
	}
	if err := b.Complete(r); err != nil {
		return fmt.Errorf("set up the VirtualMachineProfile controller: %w", err)
	}
	return nil
}

// profilesAffectedByCapability wakes only the profiles that need something
// whose availability changed on the node, through the requirement index,
// not a pass over all profiles; at most once per node per
// CapabilityWakeInterval, the last change always delivered (nodeWakes).
func (r *Reconciler) profilesAffectedByCapability() handler.EventHandler {
	enqueue := func(ctx context.Context, node string, old, updated *vmv1alpha1.NodeCapabilityStatus, queue workqueue.TypedRateLimitingInterface[reconcile.Request]) {
		offers, err := nodelabels.HostNetworkOffers(ctx, r.Client)
		if err != nil {
			log.FromContext(ctx).Error(err, "mapping a capability change to profiles", "node", node)
			return
		}
		var requests []reconcile.Request
		for label := range changedRequirements(old, updated, r.Index.Wanted(), offers) {
			for _, key := range r.Index.Profiles(label) {
				requests = append(requests, reconcile.Request{NamespacedName: key})
			}
		}
		r.nodeWakes.Enqueue(queue, node, time.Now(), requests) // the queue's clock, not r.Now
	}
	status := func(obj client.Object) *vmv1alpha1.NodeCapabilityStatus {
		if capability, ok := obj.(*vmv1alpha1.NodeCapability); ok {
			return &capability.Status
		}
		return nil
	}
	return handler.Funcs{
		CreateFunc: func(ctx context.Context, e event.CreateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			enqueue(ctx, e.Object.GetName(), nil, status(e.Object), q)
		},
		DeleteFunc: func(ctx context.Context, e event.DeleteEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			enqueue(ctx, e.Object.GetName(), status(e.Object), nil, q)
		},
		UpdateFunc: func(ctx context.Context, e event.UpdateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			enqueue(ctx, e.ObjectNew.GetName(), status(e.ObjectOld), status(e.ObjectNew), q)
		},
	}
}

// changedRequirements are the requirement labels whose availability differs
// between two capabilities (nil: nothing offered). A bridge whose ports or
// VLANs changed counts under its bridge label and the labels of the host
// networks on it; a changed probe condition counts for everything.
func changedRequirements(old, updated *vmv1alpha1.NodeCapabilityStatus, wanted []placement.Requirement, offers []placement.HostNetworkOffer) map[string]bool {
	offered := func(c *vmv1alpha1.NodeCapabilityStatus) map[string]string {
		if c == nil {
			return map[string]string{}
		}
		return placement.NodeLabels(c, wanted, offers)
	}
	before, after := offered(old), offered(updated)
	changed := map[string]bool{}
	for label := range before {
		if _, ok := after[label]; !ok {
			changed[label] = true
		}
	}
	for label := range after {
		if _, ok := before[label]; !ok {
			changed[label] = true
		}
	}
	bridges := func(c *vmv1alpha1.NodeCapabilityStatus) map[string]vmv1alpha1.BridgeStatus {
		out := map[string]vmv1alpha1.BridgeStatus{}
		if c != nil {
			for _, b := range c.Bridges {
				out[b.Name] = b
			}
		}
		return out
	}
	oldBridges, newBridges := bridges(old), bridges(updated)
	touched := map[string]bool{}
	for name, b := range newBridges {
		if previous, ok := oldBridges[name]; !ok || !apiequality.Semantic.DeepEqual(withoutPortVLANs(previous), withoutPortVLANs(b)) {
			touched[name] = true
		}
	}
	for name := range oldBridges {
		if _, ok := newBridges[name]; !ok {
			touched[name] = true
		}
	}
	for name := range touched {
		changed[placement.BridgeLabel(name)] = true
		for _, offer := range offers {
			if offer.Bridge == name {
				changed[placement.HostNetworkLabel(offer.Name)] = true
			}
		}
	}
	if old != nil && updated != nil && !apiequality.Semantic.DeepEqual(conditionsOnly(old), conditionsOnly(updated)) {
		for label := range before {
			changed[label] = true
		}
		for label := range after {
			changed[label] = true
		}
	}
	return changed
}

// withoutPortVLANs is a bridge less its ports' VLAN lists. A VLAN a port
// gains or loses changes that (bridge, VLAN) label, which the label
// comparison above catches for every wanted VLAN; waking every profile on
// the bridge for it woke 1,000 profiles where 100 used the VLAN (make bench,
// BenchmarkRequeuesPerCapabilityChange).
func withoutPortVLANs(b vmv1alpha1.BridgeStatus) vmv1alpha1.BridgeStatus {
	ports := make([]vmv1alpha1.BridgePort, len(b.Ports))
	for i, port := range b.Ports {
		port.VLANs, port.PVID = "", 0
		ports[i] = port
	}
	b.Ports = ports
	return b
}

// conditionsOnly strips the transition times, which change with the status.
func conditionsOnly(c *vmv1alpha1.NodeCapabilityStatus) []metav1.Condition {
	out := make([]metav1.Condition, 0, len(c.Conditions))
	for _, condition := range c.Conditions {
		condition.LastTransitionTime = metav1.Time{}
		out = append(out, condition)
	}
	return out
}

// profilesAffectedByNode wakes, on a Node label change, the profiles that
// need or select by a label that changed, and on a cordon change every
// profile (any may have been placeable only there). Label changes share
// the node's wake limit with its capability changes: the node labeller
// turns each capability change into one.
func (r *Reconciler) profilesAffectedByNode() handler.EventHandler {
	return handler.Funcs{
		UpdateFunc: func(ctx context.Context, e event.UpdateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			old, okOld := e.ObjectOld.(*corev1.Node)
			updated, okNew := e.ObjectNew.(*corev1.Node)
			if !okOld || !okNew {
				return
			}
			if old.Spec.Unschedulable != updated.Spec.Unschedulable {
				for _, request := range r.allProfiles(ctx, updated) {
					q.Add(request)
				}
				return
			}
			var requests []reconcile.Request
			for _, key := range changedLabelKeys(old.Labels, updated.Labels) {
				for _, profile := range r.Index.Profiles(key) {
					requests = append(requests, reconcile.Request{NamespacedName: profile})
				}
			}
			r.nodeWakes.Enqueue(q, updated.Name, time.Now(), requests)
		},
		CreateFunc: func(ctx context.Context, e event.CreateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			for _, request := range r.allProfiles(ctx, e.Object) {
				q.Add(request)
			}
		},
		DeleteFunc: func(ctx context.Context, e event.DeleteEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			for _, request := range r.allProfiles(ctx, e.Object) {
				q.Add(request)
			}
		},
	}
}

// changedLabelKeys lists the keys whose value differs between two label sets.
func changedLabelKeys(a, b map[string]string) []string {
	var keys []string
	for key, value := range a {
		if other, ok := b[key]; !ok || other != value {
			keys = append(keys, key)
		}
	}
	for key := range b {
		if _, ok := a[key]; !ok {
			keys = append(keys, key)
		}
	}
	slices.Sort(keys)
	return keys
}

func (r *Reconciler) allProfiles(ctx context.Context, _ client.Object) []reconcile.Request {
	var profiles vmv1alpha1.VirtualMachineProfileList
	if err := r.Client.List(ctx, &profiles); err != nil {
		log.FromContext(ctx).Error(err, "listing profiles to re-queue")
		return nil
	}
	return requestsFor(profiles.Items)
}

func (r *Reconciler) profilesInNamespace(ctx context.Context, obj client.Object) []reconcile.Request {
	var profiles vmv1alpha1.VirtualMachineProfileList
	if err := r.Client.List(ctx, &profiles, client.InNamespace(obj.GetName())); err != nil {
		log.FromContext(ctx).Error(err, "listing profiles to re-queue", "namespace", obj.GetName())
		return nil
	}
	return requestsFor(profiles.Items)
}

// profilesOfHostNetwork wakes the profiles a HostNetwork may change: those
// whose networks look for its name, bridge, resource or default.
func (r *Reconciler) profilesOfHostNetwork(ctx context.Context, obj client.Object) []reconcile.Request {
	hostNetwork, ok := obj.(*vmv1alpha1.HostNetwork)
	if !ok {
		return nil
	}
	seen := map[types.NamespacedName]bool{}
	var requests []reconcile.Request
	for _, key := range keysOfHostNetwork(hostNetwork) {
		for _, request := range r.listByIndex(ctx, indexHostNetwork, key) {
			if !seen[request.NamespacedName] {
				seen[request.NamespacedName] = true
				requests = append(requests, request)
			}
		}
	}
	return requests
}

func requestsFor(profiles []vmv1alpha1.VirtualMachineProfile) []reconcile.Request {
	requests := make([]reconcile.Request, 0, len(profiles))
	for i := range profiles {
		requests = append(requests, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&profiles[i])})
	}
	return requests
}

func namespacedKey(obj client.Object) string { return obj.GetNamespace() + "/" + obj.GetName() }
func nameKey(obj client.Object) string       { return obj.GetName() }

// listByIndex lists the profiles whose index holds value, logging (not
// dropping silently) a failed list.
func (r *Reconciler) listByIndex(ctx context.Context, index, value string) []reconcile.Request {
	var profiles vmv1alpha1.VirtualMachineProfileList
	if err := r.Client.List(ctx, &profiles, client.MatchingFields{index: value}); err != nil {
		log.FromContext(ctx).Error(err, "listing profiles to re-queue", "index", index, "value", value)
		return nil
	}
	return requestsFor(profiles.Items)
}

// profilesByIndex maps an object to the profiles whose index holds its key.
func (r *Reconciler) profilesByIndex(index string, key func(client.Object) string) handler.EventHandler {
	return handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, obj client.Object) []reconcile.Request {
		value := key(obj)
		if value == "" || value == "/" {
			return nil
		}
		return r.listByIndex(ctx, index, value)
	})
}

// profilesSharingIdentities wakes the other profiles that use one of this
// profile's static addresses or MACs, so the one refused proceeds once the
// holder is gone or moves off it.
func (r *Reconciler) profilesSharingIdentities(ctx context.Context, obj client.Object) []reconcile.Request {
	profile := obj.(*vmv1alpha1.VirtualMachineProfile)
	var requests []reconcile.Request
	for _, id := range identities() {
		for _, key := range indexKeys(id)(profile) {
			for _, request := range r.listByIndex(ctx, id.index, key) {
				if request.NamespacedName != client.ObjectKeyFromObject(profile) && !slices.Contains(requests, request) {
					requests = append(requests, request)
				}
			}
		}
	}
	return requests
}

// profileOfChild maps an object the operator made to the profile whose
// name its labels carry.
func profileOfChild(_ context.Context, obj client.Object) []reconcile.Request {
	labels := obj.GetLabels()
	if labels[desired.LabelManagedBy] != desired.ManagedByValue || labels[desired.LabelProfile] == "" {
		return nil
	}
	return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: obj.GetNamespace(), Name: labels[desired.LabelProfile]}}}
}

// profileOfInstance maps a VM instance to its profile through the label the
// VM template carries.
func profileOfInstance(_ context.Context, obj client.Object) []reconcile.Request {
	name := obj.GetLabels()[desired.LabelProfile]
	if name == "" {
		return nil
	}
	return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: obj.GetNamespace(), Name: name}}}
}
