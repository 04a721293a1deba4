package scale

import (
	"context"
	"fmt"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	kubevirtv1 "kubevirt.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
	"github.com/jianfenliu/vmoperator/internal/testing/controlplane"
)

// Observer watches one namespace's profiles and children through an
// informer cache, so that counting them costs the apiserver nothing.
type Observer struct {
	cache cache.Cache
}

// Observe starts an informer cache over the namespaces and waits for it to sync.
func Observe(ctx context.Context, config *rest.Config, namespaces ...string) (*Observer, error) {
	scope := map[string]cache.Config{}
	for _, namespace := range namespaces {
		scope[namespace] = cache.Config{}
	}
	c, err := cache.New(config, cache.Options{Scheme: controlplane.NewScheme(), DefaultNamespaces: scope})
	if err != nil {
		return nil, fmt.Errorf("create an informer cache of %v: %w", namespaces, err)
	}
	// Informers start on first use: ask for each kind before syncing.
	for _, list := range []client.ObjectList{&vmv1alpha1.VirtualMachineProfileList{}, &kubevirtv1.VirtualMachineList{},
		&corev1.PersistentVolumeClaimList{}, &nadv1.NetworkAttachmentDefinitionList{}, secretsMetadata()} {
		if _, err := c.GetInformer(ctx, listItem(list)); err != nil {
			return nil, fmt.Errorf("get the informer of %T in %v: %w", listItem(list), namespaces, err)
		}
	}
	go func() { _ = c.Start(ctx) }()
	if !c.WaitForCacheSync(ctx) {
		return nil, fmt.Errorf("observer cache of %v did not sync", namespaces)
	}
	return &Observer{cache: c}, nil
}

func secretsMetadata() *metav1.PartialObjectMetadataList {
	list := &metav1.PartialObjectMetadataList{}
	list.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("SecretList"))
	return list
}

func listItem(list client.ObjectList) client.Object {
	switch list.(type) {
	case *vmv1alpha1.VirtualMachineProfileList:
		return &vmv1alpha1.VirtualMachineProfile{}
	case *kubevirtv1.VirtualMachineList:
		return &kubevirtv1.VirtualMachine{}
	case *corev1.PersistentVolumeClaimList:
		return &corev1.PersistentVolumeClaim{}
	case *nadv1.NetworkAttachmentDefinitionList:
		return &nadv1.NetworkAttachmentDefinition{}
	}
	item := &metav1.PartialObjectMetadata{}
	item.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Secret"))
	return item
}

// Counts are what the observer sees now.
type Counts struct {
	Profiles, Running, VMs int
}

// Count counts the profiles of namespace, the Running ones and the VMs.
func (o *Observer) Count(ctx context.Context, namespace string) (Counts, error) {
	var profiles vmv1alpha1.VirtualMachineProfileList
	if err := o.cache.List(ctx, &profiles, client.InNamespace(namespace)); err != nil {
		return Counts{}, fmt.Errorf("list VirtualMachineProfiles in %s: %w", namespace, err)
	}
	var vms kubevirtv1.VirtualMachineList
	if err := o.cache.List(ctx, &vms, client.InNamespace(namespace)); err != nil {
		return Counts{}, fmt.Errorf("list VirtualMachines in %s: %w", namespace, err)
	}
	counts := Counts{Profiles: len(profiles.Items), VMs: len(vms.Items)}
	for i := range profiles.Items {
		if profiles.Items[i].Status.Phase == vmv1alpha1.PhaseRunning {
			counts.Running++
		}
	}
	return counts, nil
}

// Children counts, per profile name, the objects of each kind in namespace
// labelled as made for it: exactly one of each is the converged state.
func (o *Observer) Children(ctx context.Context, namespace string) (map[string]map[string]int, error) {
	out := map[string]map[string]int{}
	add := func(kind string, objects []client.Object) {
		for _, obj := range objects {
			name := obj.GetLabels()[vmv1alpha1.LabelProfile]
			if obj.GetLabels()[vmv1alpha1.LabelManagedBy] != vmv1alpha1.ManagedByValue {
				continue
			}
			if out[name] == nil {
				out[name] = map[string]int{}
			}
			out[name][kind]++
		}
	}
	var vms kubevirtv1.VirtualMachineList
	var pvcs corev1.PersistentVolumeClaimList
	var nads nadv1.NetworkAttachmentDefinitionList
	secrets := secretsMetadata()
	for _, list := range []client.ObjectList{&vms, &pvcs, &nads, secrets} {
		if err := o.cache.List(ctx, list, client.InNamespace(namespace)); err != nil {
			return nil, fmt.Errorf("list %T in %s: %w", list, namespace, err)
		}
	}
	add("VirtualMachine", objectsOf(vms.Items))
	add("PersistentVolumeClaim", objectsOf(pvcs.Items))
	add("NetworkAttachmentDefinition", objectsOf(nads.Items))
	add("Secret", objectsOf(secrets.Items))
	return out, nil
}

func objectsOf[T any, P interface {
	*T
	client.Object
}](items []T) []client.Object {
	out := make([]client.Object, len(items))
	for i := range items {
		out[i] = P(&items[i])
	}
	return out
}
