// Package lifecycle holds what the Helm chart's hooks run, as subcommands
// of vmop-controller (the image it already has): applying the chart's CRDs
// before an install or upgrade, because Helm installs crds/ once and never
// upgrades them; and the cleanup after an uninstall, which removes what
// only the operator needs and leaves every user object in place.
package lifecycle

import (
	"context"
	"fmt"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"
)

// CRDFieldOwner is the field manager of the CRDs the hook applies.
const CRDFieldOwner = "vmop-crd-hook"

// ApplyCRDs server-side-applies every CRD held in the ConfigMap (one per
// key; the chart fills it from crds/) and waits until each is Established,
// so the templates Helm applies next find their types. It returns the
// names applied.
func ApplyCRDs(ctx context.Context, c client.Client, configMap client.ObjectKey, timeout time.Duration) ([]string, error) {
	var cm corev1.ConfigMap
	if err := c.Get(ctx, configMap, &cm); err != nil {
		return nil, fmt.Errorf("read the CRDs from ConfigMap %s: %w", configMap, err)
	}
	keys := make([]string, 0, len(cm.Data))
	for key := range cm.Data {
		keys = append(keys, key)
	}
	slices.Sort(keys)
	var names []string
	for _, key := range keys {
		crd, err := parseCRD(key, cm.Data[key])
		if err != nil {
			return names, err
		}
		//nolint:staticcheck // SA1019: client.Client.Apply takes apply configurations; the CRDs come as YAML from the chart's ConfigMap.
		if err := c.Patch(ctx, crd, client.Apply, client.FieldOwner(CRDFieldOwner), client.ForceOwnership); err != nil {
			return names, fmt.Errorf("apply CRD %s: %w", crd.Name, err)
		}
		names = append(names, crd.Name)
	}
	for _, name := range names {
		if err := waitEstablished(ctx, c, name, timeout); err != nil {
			return names, err
		}
	}
	return names, nil
}

func parseCRD(key, manifest string) (*apiextensionsv1.CustomResourceDefinition, error) {
	crd := &apiextensionsv1.CustomResourceDefinition{}
	if err := yaml.UnmarshalStrict([]byte(manifest), crd); err != nil {
		return nil, fmt.Errorf("ConfigMap key %s: not a CustomResourceDefinition: %w", key, err)
	}
	if crd.Kind != "CustomResourceDefinition" || crd.Name == "" {
		return nil, fmt.Errorf("ConfigMap key %s: not a CustomResourceDefinition (kind %q, name %q)", key, crd.Kind, crd.Name)
	}
	return crd, nil
}

// waitEstablished polls the CRD's condition: a one-shot hook has no cache
// to watch from, and the wait is seconds at most.
func waitEstablished(ctx context.Context, c client.Client, name string, timeout time.Duration) error {
	var last string
	err := wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		var crd apiextensionsv1.CustomResourceDefinition
		if err := c.Get(ctx, client.ObjectKey{Name: name}, &crd); err != nil {
			last = err.Error()
			return false, nil
		}
		for _, cond := range crd.Status.Conditions {
			if cond.Type == apiextensionsv1.Established && cond.Status == apiextensionsv1.ConditionTrue {
				return true, nil
			}
			if cond.Type == apiextensionsv1.NamesAccepted && cond.Status == apiextensionsv1.ConditionFalse {
				last = "names not accepted: " + cond.Message
			}
		}
		return false, nil
	})
	if err != nil {
		return fmt.Errorf("CRD %s not established within %v (%s): %w", name, timeout, last, err)
	}
	return nil
}
