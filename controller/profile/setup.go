package profile

import (
	"context"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	nmstateshared "github.com/nmstate/kubernetes-nmstate/api/shared"
	nmstatev1 "github.com/nmstate/kubernetes-nmstate/api/v1"
	nmstatev1beta1 "github.com/nmstate/kubernetes-nmstate/api/v1beta1"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	kubevirtv1 "kubevirt.io/api/core/v1"
	cdiv1 "kubevirt.io/containerized-data-importer-api/pkg/apis/core/v1beta1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
	"github.com/jianfenliu/vmoperator/controller/desired"
	"github.com/jianfenliu/vmoperator/controller/placement"
)

// Field indexes on profiles, so that an event on another object wakes only
// the profiles it concerns.
const (
	indexHostInterface = "vmop.hostInterface"
	indexStaticIP      = "vmop.staticIP"
	indexNAD           = "vmop.nad"
	indexStorageClass  = "vmop.storageClass"
	indexSSHKeySecret  = "vmop.sshKeySecret"
	indexRequirement   = "vmop.requirement"
)

func profileIndexes() map[string]func(*vmv1alpha1.VirtualMachineProfile) []string {
	return map[string]func(*vmv1alpha1.VirtualMachineProfile) []string{
		indexHostInterface: func(p *vmv1alpha1.VirtualMachineProfile) []string {
			var names []string
			for _, host := range hostNetworks(p) {
				names = append(names, host.Interface)
			}
			return names
		},
		indexStaticIP: staticIPKeys,
		indexNAD: func(p *vmv1alpha1.VirtualMachineProfile) []string {
			var keys []string
			for i := range p.Spec.Networks {
				if p.Spec.Networks[i].NADName != "" {
					keys = append(keys, nadKey(p, p.Spec.Networks[i].NADName).String())
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
		indexRequirement: func(p *vmv1alpha1.VirtualMachineProfile) []string {
			var labels []string
			for _, need := range placement.Requirements(p) {
				labels = append(labels, need.Label)
			}
			return labels
		},
		indexSSHKeySecret: func(p *vmv1alpha1.VirtualMachineProfile) []string {
			if p.Spec.SSHKeySecret == "" {
				return nil
			}
			return []string{p.Namespace + "/" + p.Spec.SSHKeySecret}
		},
	}
}

// SetupWithManager registers the indexes and the two controllers: profiles,
// and the shared host interfaces (only when nmstate is installed). Watches
// cover only the dependencies the cluster serves.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	ctx := context.Background()
	for name, extract := range profileIndexes() {
		extract := extract
		err := mgr.GetFieldIndexer().IndexField(ctx, &vmv1alpha1.VirtualMachineProfile{}, name, func(obj client.Object) []string {
			return extract(obj.(*vmv1alpha1.VirtualMachineProfile))
		})
		if err != nil {
			return err
		}
	}
	// Children are mapped to their profile by label, not by owner reference:
	// retained disks have no owner, and an orphan deletion strips the owner
	// references of everything, which must still bring the profile's name
	// back for collection.
	children := handler.EnqueueRequestsFromMapFunc(profileOfChild)
	b := ctrl.NewControllerManagedBy(mgr).
		For(&vmv1alpha1.VirtualMachineProfile{}).
		Watches(&corev1.PersistentVolumeClaim{}, children).
		Watches(&corev1.Secret{}, children, builder.OnlyMetadata).
		Watches(&corev1.Secret{}, r.profilesByIndex(indexSSHKeySecret, namespacedKey), builder.OnlyMetadata).
		Watches(&storagev1.StorageClass{}, r.profilesByIndex(indexStorageClass, nameKey)).
		Watches(&vmv1alpha1.VirtualMachineProfile{}, handler.EnqueueRequestsFromMapFunc(r.profilesSharingStaticIPs))
	if r.Deps.KubeVirt {
		b = b.Watches(&kubevirtv1.VirtualMachine{}, children).
			Watches(&kubevirtv1.VirtualMachineInstance{}, handler.EnqueueRequestsFromMapFunc(profileOfInstance)).
			Watches(&vmv1alpha1.NodeCapability{}, r.profilesAffectedByCapability()).
			// Label changes (the reporting label comes and goes with the
			// agent's Lease) and cordons can change every profile's placement.
			Watches(&corev1.Node{}, handler.EnqueueRequestsFromMapFunc(r.allProfiles),
				builder.WithPredicates(predicate.Or(predicate.LabelChangedPredicate{}, nodeCordonChanged())))
	}
	if r.Deps.CDI {
		b = b.Watches(&cdiv1.DataVolume{}, children)
	}
	if r.Deps.Multus {
		b = b.Watches(&nadv1.NetworkAttachmentDefinition{}, children).
			Watches(&nadv1.NetworkAttachmentDefinition{}, r.profilesByIndex(indexNAD, namespacedKey))
	}
	if r.Deps.NMState {
		b = b.Watches(&nmstatev1.NodeNetworkConfigurationPolicy{}, r.profilesByIndex(indexHostInterface, policyInterface)).
			Watches(&nmstatev1beta1.NodeNetworkConfigurationEnactment{}, r.profilesByIndex(indexHostInterface, r.enactmentInterface))
	}
	if err := b.Complete(r); err != nil {
		return err
	}
	if !r.Deps.NMState {
		return nil
	}
	return ctrl.NewControllerManagedBy(mgr).
		Named("hostinterface").
		Watches(&vmv1alpha1.VirtualMachineProfile{}, handler.EnqueueRequestsFromMapFunc(r.hostInterfacesOfProfile)).
		Watches(&nmstatev1.NodeNetworkConfigurationPolicy{}, handler.EnqueueRequestsFromMapFunc(hostInterfaceOfPolicy)).
		Watches(&nmstatev1beta1.NodeNetworkConfigurationEnactment{}, handler.EnqueueRequestsFromMapFunc(
			func(ctx context.Context, obj client.Object) []reconcile.Request {
				if name := r.enactmentInterface(obj); name != "" {
					return []reconcile.Request{{NamespacedName: types.NamespacedName{Name: name}}}
				}
				return nil
			})).
		Complete(reconcile.Func(r.ReconcileHostInterface))
}

// enactmentInterface is the host interface of the policy an enactment belongs to.
func (r *Reconciler) enactmentInterface(obj client.Object) string {
	var policy nmstatev1.NodeNetworkConfigurationPolicy
	key := client.ObjectKey{Name: obj.GetLabels()[nmstateshared.EnactmentPolicyLabel]}
	if key.Name == "" || r.Client.Get(context.Background(), key, &policy) != nil {
		return ""
	}
	return policyInterface(&policy)
}

// profilesAffectedByCapability wakes only the profiles that need something
// whose availability changed on the node: a field-index lookup per changed
// requirement label, not a pass over all profiles.
func (r *Reconciler) profilesAffectedByCapability() handler.EventHandler {
	enqueue := func(ctx context.Context, labels map[string]bool, queue workqueue.TypedRateLimitingInterface[reconcile.Request]) {
		for label := range labels {
			var profiles vmv1alpha1.VirtualMachineProfileList
			if err := r.Client.List(ctx, &profiles, client.MatchingFields{indexRequirement: label}); err != nil {
				continue
			}
			for i := range profiles.Items {
				queue.Add(reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&profiles.Items[i])})
			}
		}
	}
	whole := func(ctx context.Context, obj client.Object, queue workqueue.TypedRateLimitingInterface[reconcile.Request]) {
		if capability, ok := obj.(*vmv1alpha1.NodeCapability); ok {
			enqueue(ctx, changedRequirements(nil, &capability.Status), queue)
		}
	}
	return handler.Funcs{
		CreateFunc: func(ctx context.Context, e event.CreateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			whole(ctx, e.Object, q)
		},
		DeleteFunc: func(ctx context.Context, e event.DeleteEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			whole(ctx, e.Object, q)
		},
		UpdateFunc: func(ctx context.Context, e event.UpdateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			old, okOld := e.ObjectOld.(*vmv1alpha1.NodeCapability)
			updated, okNew := e.ObjectNew.(*vmv1alpha1.NodeCapability)
			if okOld && okNew {
				enqueue(ctx, changedRequirements(&old.Status, &updated.Status), q)
			}
		},
	}
}

// changedRequirements are the requirement labels whose availability differs
// between two capabilities (nil: nothing offered). A bridge whose ports or
// VLANs changed counts under its bridge label, which every VLAN requirement
// on that bridge comes with.
func changedRequirements(old, updated *vmv1alpha1.NodeCapabilityStatus) map[string]bool {
	offered := func(c *vmv1alpha1.NodeCapabilityStatus) map[string]string {
		if c == nil {
			return map[string]string{}
		}
		return placement.NodeLabels(c, nil)
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
	for name, b := range newBridges {
		if previous, ok := oldBridges[name]; !ok || !apiequality.Semantic.DeepEqual(previous, b) {
			changed[placement.BridgeLabel(name)] = true
		}
	}
	for name := range oldBridges {
		if _, ok := newBridges[name]; !ok {
			changed[placement.BridgeLabel(name)] = true
		}
	}
	return changed
}

func nodeCordonChanged() predicate.Predicate {
	return predicate.Funcs{UpdateFunc: func(e event.UpdateEvent) bool {
		old, okOld := e.ObjectOld.(*corev1.Node)
		updated, okNew := e.ObjectNew.(*corev1.Node)
		return okOld && okNew && old.Spec.Unschedulable != updated.Spec.Unschedulable
	}}
}

func (r *Reconciler) allProfiles(ctx context.Context, _ client.Object) []reconcile.Request {
	var profiles vmv1alpha1.VirtualMachineProfileList
	if err := r.Client.List(ctx, &profiles); err != nil {
		return nil
	}
	requests := make([]reconcile.Request, 0, len(profiles.Items))
	for i := range profiles.Items {
		requests = append(requests, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&profiles.Items[i])})
	}
	return requests
}

func namespacedKey(obj client.Object) string { return obj.GetNamespace() + "/" + obj.GetName() }
func nameKey(obj client.Object) string       { return obj.GetName() }
func policyInterface(obj client.Object) string {
	return obj.GetAnnotations()[annotationHostInterface]
}

// profilesByIndex maps an object to the profiles whose index holds its key.
func (r *Reconciler) profilesByIndex(index string, key func(client.Object) string) handler.EventHandler {
	return handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, obj client.Object) []reconcile.Request {
		value := key(obj)
		if value == "" || value == "/" {
			return nil
		}
		var profiles vmv1alpha1.VirtualMachineProfileList
		if err := r.Client.List(ctx, &profiles, client.MatchingFields{index: value}); err != nil {
			return nil
		}
		requests := make([]reconcile.Request, 0, len(profiles.Items))
		for i := range profiles.Items {
			requests = append(requests, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&profiles.Items[i])})
		}
		return requests
	})
}

// profilesSharingStaticIPs wakes the other profiles that use one of this
// profile's static addresses, so the younger one proceeds once the older is gone.
func (r *Reconciler) profilesSharingStaticIPs(ctx context.Context, obj client.Object) []reconcile.Request {
	profile := obj.(*vmv1alpha1.VirtualMachineProfile)
	var requests []reconcile.Request
	for _, key := range staticIPKeys(profile) {
		var profiles vmv1alpha1.VirtualMachineProfileList
		if err := r.Client.List(ctx, &profiles, client.MatchingFields{indexStaticIP: key}); err != nil {
			return nil
		}
		for i := range profiles.Items {
			if profiles.Items[i].UID != profile.UID {
				requests = append(requests, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&profiles.Items[i])})
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

// hostInterfacesOfProfile wakes the host-interface reconciler for every
// interface the profile needs and every interface the operator manages, so a
// profile that stops needing one (spec change or deletion) releases it.
func (r *Reconciler) hostInterfacesOfProfile(ctx context.Context, obj client.Object) []reconcile.Request {
	seen := map[string]bool{}
	for _, host := range hostNetworks(obj.(*vmv1alpha1.VirtualMachineProfile)) {
		seen[host.Interface] = true
	}
	var policies nmstatev1.NodeNetworkConfigurationPolicyList
	if err := r.Client.List(ctx, &policies, client.MatchingLabels{desired.LabelHostNetwork: "true"}); err == nil {
		for i := range policies.Items {
			if name := policyInterface(&policies.Items[i]); name != "" {
				seen[name] = true
			}
		}
	}
	requests := make([]reconcile.Request, 0, len(seen))
	for name := range seen {
		requests = append(requests, reconcile.Request{NamespacedName: types.NamespacedName{Name: name}})
	}
	return requests
}

func hostInterfaceOfPolicy(_ context.Context, obj client.Object) []reconcile.Request {
	name := policyInterface(obj)
	if name == "" {
		return nil
	}
	return []reconcile.Request{{NamespacedName: types.NamespacedName{Name: name}}}
}
