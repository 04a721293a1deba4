// Command postprocess turns the CRDs that controller-gen generates from the
// upstream KubeVirt, CDI, Multus, nmstate and Prometheus Operator Go API
// types into the CRDs those
// projects install on a real cluster: it keeps only the kinds the operator
// touches, and KubeVirt's instancetypes and preferences, whose short names
// (vmp among them) ours must not shadow, and restores the names, short
// names, categories, scope and subresources the upstream installers set by
// hand (controller-gen cannot see them, since they are not markers on the Go
// types). The test control plane loads the
// result, so the apiserver checks every object the operator writes against
// the real schemas, and RBAC and kubectl behave as in production.
//
// Usage: go run ./test/crds/postprocess -in GENERATED_DIR -out test/crds
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"sigs.k8s.io/yaml"

	// The packages controller-gen reads; imported so that go.mod pins them.
	_ "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	_ "github.com/nmstate/kubernetes-nmstate/api/v1"
	_ "github.com/nmstate/kubernetes-nmstate/api/v1beta1"
	_ "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	_ "kubevirt.io/api/core/v1"
	_ "kubevirt.io/api/instancetype/v1beta1"
	_ "kubevirt.io/containerized-data-importer-api/pkg/apis/core/v1beta1"
)

// wantedCRD is one upstream CRD we install, with what its installer sets that
// the Go types do not say.
type wantedCRD struct {
	generatedFile string
	plural        string // empty keeps controller-gen's
	singular      string // empty keeps controller-gen's
	shortNames    []string
	categories    []string
	// scope, when set, overrides controller-gen's, which reads only the
	// kubebuilder marker and so makes every KubeVirt kind namespaced.
	scope apiextensionsv1.ResourceScope
	// statusSubresource, when set, forces the status subresource on or off.
	statusSubresource *bool
}

func wantedCRDs() []wantedCRD {
	on, off := true, false
	return []wantedCRD{
		// KubeVirt's virt-operator: VM has a status subresource, VMI does not
		// (virt-handler writes the whole object).
		{generatedFile: "kubevirt.io_virtualmachines.yaml", shortNames: []string{"vm", "vms"}, categories: []string{"all"}, statusSubresource: &on},
		{generatedFile: "kubevirt.io_virtualmachineinstances.yaml", shortNames: []string{"vmi", "vmis"}, categories: []string{"all"}, statusSubresource: &off},
		// virt-operator's instancetype API (pkg/virt-operator/resource/generate/
		// components/crds.go): the namespaced kinds are in "all", the cluster
		// ones in no category; none has a status subresource.
		{
			generatedFile: "instancetype.kubevirt.io_virtualmachineinstancetypes.yaml",
			shortNames:    []string{"vminstancetype", "vminstancetypes", "vmf", "vmfs"},
			categories:    []string{"all"},
			scope:         apiextensionsv1.NamespaceScoped,
		},
		{
			generatedFile: "instancetype.kubevirt.io_virtualmachineclusterinstancetypes.yaml",
			shortNames:    []string{"vmclusterinstancetype", "vmclusterinstancetypes", "vmcf", "vmcfs"},
			scope:         apiextensionsv1.ClusterScoped,
		},
		{
			generatedFile: "instancetype.kubevirt.io_virtualmachinepreferences.yaml",
			shortNames:    []string{"vmpref", "vmprefs", "vmp", "vmps"},
			categories:    []string{"all"},
			scope:         apiextensionsv1.NamespaceScoped,
		},
		{
			generatedFile: "instancetype.kubevirt.io_virtualmachineclusterpreferences.yaml",
			shortNames:    []string{"vmcp", "vmcps"},
			scope:         apiextensionsv1.ClusterScoped,
		},
		// CDI's Go types carry their own markers (short names dv, dvs;
		// category all), from which CDI's operator generates its CRDs too.
		{generatedFile: "cdi.kubevirt.io_datavolumes.yaml"},
		// Multus installs the NAD CRD with a hyphenated plural; its current
		// manifests (deployments/multus-daemonset*.yml) add the short name nad
		// to net-attach-def, so a cluster may answer to both.
		{
			generatedFile: "k8s.cni.cncf.io_networkattachmentdefinitions.yaml",
			plural:        "network-attachment-definitions",
			singular:      "network-attachment-definition",
			shortNames:    []string{"nad", "net-attach-def"},
		},
		// kubernetes-nmstate's Go types carry their own markers (nncp, nnce, nns).
		{generatedFile: "nmstate.io_nodenetworkconfigurationpolicies.yaml"},
		{generatedFile: "nmstate.io_nodenetworkconfigurationenactments.yaml"},
		{generatedFile: "nmstate.io_nodenetworkstates.yaml"},
		// The Prometheus Operator generates its CRDs with controller-gen from
		// these same types and markers (short names pmon, promrule), so the
		// chart's PodMonitor and PrometheusRule meet the schema they would.
		{generatedFile: "monitoring.coreos.com_podmonitors.yaml"},
		{generatedFile: "monitoring.coreos.com_prometheusrules.yaml"},
	}
}

func main() {
	in := flag.String("in", "", "folder with controller-gen's output")
	out := flag.String("out", "", "folder to write the installed CRDs to")
	flag.Parse()
	if *in == "" || *out == "" {
		fmt.Fprintln(os.Stderr, "postprocess: -in and -out are required")
		os.Exit(2)
	}
	for _, want := range wantedCRDs() {
		if err := process(want, *in, *out); err != nil {
			fmt.Fprintf(os.Stderr, "postprocess: %s: %v\n", want.generatedFile, err)
			os.Exit(1)
		}
	}
}

func process(want wantedCRD, in, out string) error {
	raw, err := os.ReadFile(filepath.Join(in, want.generatedFile))
	if err != nil {
		return err
	}
	var crd apiextensionsv1.CustomResourceDefinition
	if err := yaml.UnmarshalStrict(raw, &crd); err != nil {
		return fmt.Errorf("%s: %w", want.generatedFile, err)
	}
	apply(want, &crd)
	data, err := marshalWithoutStatus(&crd)
	if err != nil {
		return err
	}
	header := "# Generated by controller-gen from the upstream Go API types, then test/crds/postprocess. DO NOT EDIT.\n"
	return os.WriteFile(filepath.Join(out, want.generatedFile), append([]byte(header), data...), 0o644)
}

func apply(want wantedCRD, crd *apiextensionsv1.CustomResourceDefinition) {
	names := &crd.Spec.Names
	if want.plural != "" {
		names.Plural = want.plural
		crd.Name = want.plural + "." + crd.Spec.Group
	}
	if want.singular != "" {
		names.Singular = want.singular
	}
	if want.shortNames != nil {
		names.ShortNames = want.shortNames
	}
	if want.categories != nil {
		names.Categories = want.categories
	}
	if want.scope != "" {
		crd.Spec.Scope = want.scope
	}
	// Annotations name the generator version, which is noise in diffs.
	crd.Annotations = nil
	if want.statusSubresource == nil {
		return
	}
	for i := range crd.Spec.Versions {
		version := &crd.Spec.Versions[i]
		switch {
		case *want.statusSubresource && version.Subresources == nil:
			version.Subresources = &apiextensionsv1.CustomResourceSubresources{Status: &apiextensionsv1.CustomResourceSubresourceStatus{}}
		case *want.statusSubresource:
			version.Subresources.Status = &apiextensionsv1.CustomResourceSubresourceStatus{}
		case version.Subresources != nil:
			version.Subresources.Status = nil
		}
	}
}

// marshalWithoutStatus writes the CRD as YAML without the empty status and
// creationTimestamp that a typed round trip adds.
func marshalWithoutStatus(crd *apiextensionsv1.CustomResourceDefinition) ([]byte, error) {
	data, err := yaml.Marshal(crd)
	if err != nil {
		return nil, fmt.Errorf("CRD %s: %w", crd.Name, err)
	}
	var generic map[string]any
	if err := yaml.Unmarshal(data, &generic); err != nil {
		return nil, fmt.Errorf("CRD %s: %w", crd.Name, err)
	}
	delete(generic, "status")
	if metadata, ok := generic["metadata"].(map[string]any); ok {
		delete(metadata, "creationTimestamp")
	}
	out, err := yaml.Marshal(generic)
	if err != nil {
		return nil, fmt.Errorf("CRD %s: %w", crd.Name, err)
	}
	return out, nil
}
