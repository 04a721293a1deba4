package profile

import (
	"errors"
	"fmt"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// Dependencies says which of the APIs the operator drives the cluster
// serves. A missing one is reported on the profiles that need it; everything
// that does not need it keeps working.
type Dependencies struct {
	KubeVirt bool
	CDI      bool
	Multus   bool
	NMState  bool
}

// DiscoverDependencies asks the apiserver (through a REST mapper backed by
// discovery) which dependencies are installed.
func DiscoverDependencies(mapper meta.RESTMapper) (Dependencies, error) {
	served := func(gvk schema.GroupVersionKind) (bool, error) {
		_, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
		if meta.IsNoMatchError(err) {
			return false, nil
		}
		if err != nil {
			return false, fmt.Errorf("discover %s: %w", gvk.GroupKind(), err)
		}
		return true, nil
	}
	var deps Dependencies
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
