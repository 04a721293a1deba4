// Package v1alpha1 holds the vm.example.com/v1alpha1 API: VirtualMachineProfile,
// the one object a user writes, and NodeCapability, the per-node report the
// agent publishes for placement. Static validation lives here as OpenAPI and
// CEL markers so that the apiserver rejects bad input at admission, with a
// message that names the field.
//
// +kubebuilder:object:generate=true
// +groupName=vm.example.com
package v1alpha1

import (
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/scheme"
)

var (
	// GroupVersion is the group and version of every kind in this package.
	GroupVersion = schema.GroupVersion{Group: "vm.example.com", Version: "v1alpha1"}

	// SchemeBuilder registers this package's kinds with a runtime.Scheme.
	SchemeBuilder = &scheme.Builder{GroupVersion: GroupVersion} //nolint:staticcheck // SA1019: the kubebuilder layout controller-gen expects; the API package imports controller-runtime already.

	// AddToScheme adds this package's kinds to a runtime.Scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)
