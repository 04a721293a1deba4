package desired

import (
	"fmt"

	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
)

// errUnknownNetworkType guards against a type the CRD schema would have
// refused; it is only reachable for objects that skipped admission.
func errUnknownNetworkType(network *vmv1alpha1.NetworkConfig) error {
	return fmt.Errorf("network %q: unknown type %q (want bridge, macvlan, sriov or ovs)", network.Name, network.Type)
}
