package kubectlplugin

import (
	"context"
	"fmt"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/jianfenliu/vmoperator/controller/attach"
	"github.com/jianfenliu/vmoperator/controller/manager"
)

// settings are the controller flags that change placement and resolution:
// why must judge with the controller's, or it explains a different answer.
type settings struct {
	leaseNamespace  string
	allowEmulation  bool
	policy          attach.Policy
	controller      string // the Deployment they were read from, or ""
	emulationSource string // what said KubeVirt emulates, when not the controller
}

// settingsOverrides are the plugin's flags; nil leaves the controller's value.
type settingsOverrides struct {
	leaseNamespace  *string
	allowEmulation  *bool
	allowUndeclared *bool
}

// controllerSelector picks the chart's controller Deployment by its labels
// (deploy/chart/templates/controller.yaml).
func controllerSelector() client.MatchingLabels {
	return client.MatchingLabels{"app.kubernetes.io/name": "vmoperator", "app.kubernetes.io/component": "controller"}
}

// readSettings takes the controller's flags from its Deployment's
// arguments when one is found, then the plugin's flags over them. A
// controller run outside the cluster (make run, make dev) has none: the
// defaults apply, and KubeVirt's useEmulation stands for --allow-emulation.
func readSettings(ctx context.Context, c client.Reader, overrides settingsOverrides) (settings, error) {
	s := settings{leaseNamespace: manager.DefaultLeaseNamespace, policy: attach.Policy{DefaultSRIOVResource: "intel.com/sriov_netdevice"}}
	var deployments appsv1.DeploymentList
	if err := c.List(ctx, &deployments, controllerSelector()); err != nil {
		return s, fmt.Errorf("list the controller Deployment: %w", err)
	}
	if len(deployments.Items) > 0 {
		d := &deployments.Items[0]
		s.controller = d.Namespace + "/" + d.Name
		for _, container := range d.Spec.Template.Spec.Containers {
			applyArgs(&s, container.Args)
		}
	} else {
		emulates, err := kubeVirtEmulates(ctx, c)
		if err != nil {
			return s, err
		}
		if emulates {
			s.allowEmulation, s.emulationSource = true, "KubeVirt's useEmulation"
		}
	}
	if overrides.leaseNamespace != nil {
		s.leaseNamespace = *overrides.leaseNamespace
	}
	if overrides.allowEmulation != nil {
		s.allowEmulation, s.emulationSource = *overrides.allowEmulation, "--allow-emulation"
	}
	if overrides.allowUndeclared != nil {
		s.policy.AllowUndeclared = *overrides.allowUndeclared
	}
	return s, nil
}

// applyArgs reads the flags of vmop-controller that matter here.
func applyArgs(s *settings, args []string) {
	for _, arg := range args {
		name, value, hasValue := strings.Cut(strings.TrimLeft(arg, "-"), "=")
		on := !hasValue || value == "true"
		switch name {
		case "agent-lease-namespace":
			s.leaseNamespace = value
		case "allow-emulation":
			s.allowEmulation = on
		case "allow-undeclared-host-networks":
			s.policy.AllowUndeclared = on
		case "default-sriov-resource":
			s.policy.DefaultSRIOVResource = value
		case "shared-nad-namespaces":
			s.policy.SharedNADNamespaces = nil
			for _, ns := range strings.Split(value, ",") {
				if ns = strings.TrimSpace(ns); ns != "" {
					s.policy.SharedNADNamespaces = append(s.policy.SharedNADNamespaces, ns)
				}
			}
		}
	}
}

// kubeVirtEmulates says whether a KubeVirt resource sets useEmulation.
func kubeVirtEmulates(ctx context.Context, c client.Reader) (bool, error) {
	list, err := listKind(ctx, c, schema.GroupVersionKind{Group: "kubevirt.io", Version: "v1", Kind: "KubeVirtList"})
	if err != nil || list == nil {
		return false, err
	}
	for _, kv := range list.Items {
		on, _, _ := unstructured.NestedBool(kv.Object, "spec", "configuration", "developerConfiguration", "useEmulation")
		if on {
			return true, nil
		}
	}
	return false, nil
}

// listKind lists a kind that may not be served: nil, nil when it is not.
func listKind(ctx context.Context, c client.Reader, gvk schema.GroupVersionKind) (*unstructured.UnstructuredList, error) {
	list := &unstructured.UnstructuredList{}
	list.SetGroupVersionKind(gvk)
	err := c.List(ctx, list)
	if meta.IsNoMatchError(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", strings.TrimSuffix(gvk.Kind, "List"), err)
	}
	return list, nil
}
