package profile

import (
	"context"
	"fmt"
	"slices"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/types"
	kubevirtv1 "kubevirt.io/api/core/v1"
	cdiv1 "kubevirt.io/containerized-data-importer-api/pkg/apis/core/v1beta1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
	"github.com/jianfenliu/vmoperator/controller/attach"
	"github.com/jianfenliu/vmoperator/controller/identity"
	"github.com/jianfenliu/vmoperator/controller/nodewake"
	"github.com/jianfenliu/vmoperator/controller/owner"
	"github.com/jianfenliu/vmoperator/controller/volumes"
)

// Field indexes on profiles, so that an event on another object wakes only
// the profiles it concerns (those of static addresses and MACs: identity).
const (
	indexHostNetwork  = "vmop.hostNetwork"
	indexNAD          = "vmop.nad"
	indexStorageClass = "vmop.storageClass"
)

func profileIndexes() map[string]func(*vmv1alpha1.VirtualMachineProfile) []string {
	return map[string]func(*vmv1alpha1.VirtualMachineProfile) []string{
		indexHostNetwork:       attach.HostNetworkKeys,
		identity.IndexStaticIP: identity.StaticIPKeys,
		identity.IndexMAC:      identity.MACKeys,
		indexNAD:               attach.NADKeys,
		indexStorageClass:      volumes.StorageClassNames,
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
	wakes := nodewake.Profiles{Client: r.Client, Index: r.Index, Limiter: r.nodeWakes}
	children := handler.EnqueueRequestsFromMapFunc(owner.ProfileOfChild)
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
		if err := identity.IndexInstances(ctx, mgr.GetFieldIndexer()); err != nil {
			return err
		}
		if err := mgr.GetFieldIndexer().IndexField(ctx, &kubevirtv1.VirtualMachineInstance{}, indexInstanceNode, instanceNode); err != nil {
			return fmt.Errorf("index VirtualMachineInstances by %s: %w", indexInstanceNode, err)
		}
		b = b.Watches(&kubevirtv1.VirtualMachine{}, children).
			Watches(&kubevirtv1.VirtualMachineInstance{}, handler.EnqueueRequestsFromMapFunc(r.profilesOfInstance)).
			Watches(&vmv1alpha1.NodeCapability{}, wakes.Capabilities()).
			Watches(&corev1.Node{}, wakes.Nodes()).
			Watches(&corev1.Node{}, r.nodeLossWakes())
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
	for _, key := range attach.KeysOfHostNetwork(hostNetwork) {
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
	for _, key := range identity.ClaimedKeys(profile) {
		for _, request := range r.listByIndex(ctx, key.Index, key.Value) {
			if request.NamespacedName != client.ObjectKeyFromObject(profile) && !slices.Contains(requests, request) {
				requests = append(requests, request)
			}
		}
	}
	return requests
}

// profilesOfInstance maps an instance to its profile and to the profiles
// that ask for a value it uses: one refused while the instance held it
// tries again when the instance changes or goes.
func (r *Reconciler) profilesOfInstance(ctx context.Context, obj client.Object) []reconcile.Request {
	requests := owner.ProfileOfInstance(ctx, obj)
	vmi, ok := obj.(*kubevirtv1.VirtualMachineInstance)
	if !ok {
		return requests
	}
	for _, key := range identity.UsedKeys(vmi) {
		requests = append(requests, r.listByIndex(ctx, key.Index, key.Value)...)
	}
	return requests
}
