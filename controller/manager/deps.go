package manager

import (
	"errors"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/jianfenliu/vmoperator/controller/profile"
)

// DiscoverDependencies asks the apiserver (through a REST mapper backed by
// discovery) which dependencies are installed.
func DiscoverDependencies(mapper meta.RESTMapper) (profile.Dependencies, error) {
	served := func(gvk schema.GroupVersionKind) (bool, error) {
		_, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
		if meta.IsNoMatchError(err) {
			return false, nil
		}
		return err == nil, err
	}
	var deps profile.Dependencies
	var errs []error
	for _, check := range []struct {
		gvk  schema.GroupVersionKind
		flag *bool
	}{
		{schema.GroupVersionKind{Group: "kubevirt.io", Version: "v1", Kind: "VirtualMachine"}, &deps.KubeVirt},
		{schema.GroupVersionKind{Group: "cdi.kubevirt.io", Version: "v1beta1", Kind: "DataVolume"}, &deps.CDI},
		{schema.GroupVersionKind{Group: "k8s.cni.cncf.io", Version: "v1", Kind: "NetworkAttachmentDefinition"}, &deps.Multus},
		{schema.GroupVersionKind{Group: "nmstate.io", Version: "v1", Kind: "NodeNetworkConfigurationPolicy"}, &deps.NMState},
	} {
		ok, err := served(check.gvk)
		*check.flag = ok
		errs = append(errs, err)
	}
	return deps, errors.Join(errs...)
}
