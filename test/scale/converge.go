package scale

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
)

// childKinds are the children every benchmark profile has, one each (its
// cloud-init fits inline in the VM: no Secret).
var childKinds = []string{"NetworkAttachmentDefinition", "PersistentVolumeClaim", "VirtualMachine"}

// Expected is the state a namespace must converge to.
type Expected struct {
	// Live are the profiles that must be Running with one of each child.
	Live map[string]bool
	// Retained are claims of deleted profiles that must still exist, by
	// name, with the UID they had (a re-created claim is a lost disk).
	Retained map[string]types.UID
	// Extra, when set, checks each live profile further (its VM matches
	// its latest spec, say); it returns "" when the profile is as expected.
	Extra func(ctx context.Context, profile *vmv1alpha1.VirtualMachineProfile) string
}

// Problems lists how the namespace differs from expected: a live profile
// not Running or not at its latest generation, a missing or duplicate
// child, a child of no live profile (an orphan), a retained claim gone or
// replaced. Empty means converged.
func (o *Observer) Problems(ctx context.Context, c client.Reader, namespace string, expected Expected) ([]string, error) {
	var problems []string
	var profiles vmv1alpha1.VirtualMachineProfileList
	if err := o.cache.List(ctx, &profiles, client.InNamespace(namespace)); err != nil {
		return nil, fmt.Errorf("list VirtualMachineProfiles in %s: %w", namespace, err)
	}
	seen := map[string]bool{}
	attachments := map[string]int{} // profile → NADs it should have
	for i := range profiles.Items {
		p := &profiles.Items[i]
		seen[p.Name] = true
		for _, network := range p.Spec.Networks {
			if network.NADName == "" {
				attachments[p.Name]++
			}
		}
		switch {
		case !expected.Live[p.Name]:
			problems = append(problems, "profile "+p.Name+" should be gone")
		case p.Status.Phase != vmv1alpha1.PhaseRunning || p.Status.ObservedGeneration != p.Generation:
			problems = append(problems, fmt.Sprintf("profile %s: phase %q, observed generation %d of %d", p.Name, p.Status.Phase, p.Status.ObservedGeneration, p.Generation))
		case expected.Extra != nil:
			if problem := expected.Extra(ctx, p); problem != "" {
				problems = append(problems, "profile "+p.Name+": "+problem)
			}
		}
	}
	for name := range expected.Live {
		if !seen[name] {
			problems = append(problems, "profile "+name+" missing")
		}
	}
	children, err := o.Children(ctx, namespace)
	if err != nil {
		return nil, err
	}
	for name, kinds := range children {
		for kind, n := range kinds {
			switch {
			case expected.Live[name] && kind == "NetworkAttachmentDefinition" && n != attachments[name]:
				problems = append(problems, fmt.Sprintf("profile %s has %d attachments for %d networks", name, n, attachments[name]))
			case expected.Live[name] && kind != "NetworkAttachmentDefinition" && n > 1:
				problems = append(problems, fmt.Sprintf("profile %s has %d %ss", name, n, kind))
			case !expected.Live[name] && !(kind == "PersistentVolumeClaim" && retainedClaimOf(expected, name)):
				problems = append(problems, fmt.Sprintf("orphan: %d %s(s) of deleted profile %s", n, kind, name))
			}
		}
	}
	for name := range expected.Live {
		for _, kind := range childKinds {
			if children[name][kind] == 0 {
				problems = append(problems, fmt.Sprintf("profile %s has no %s", name, kind))
			}
		}
	}
	for claimName, uid := range expected.Retained {
		var claim corev1.PersistentVolumeClaim
		err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: claimName}, &claim)
		switch {
		case client.IgnoreNotFound(err) != nil:
			return nil, fmt.Errorf("get PersistentVolumeClaim %s/%s: %w", namespace, claimName, err)
		case err != nil:
			problems = append(problems, "retained claim "+claimName+" was deleted")
		case claim.UID != uid:
			problems = append(problems, "retained claim "+claimName+" was replaced (new UID)")
		}
	}
	sort.Strings(problems)
	return problems, nil
}

// retainedClaimOf says whether a deleted profile's claim is expected to stay.
func retainedClaimOf(expected Expected, profileName string) bool {
	for claimName := range expected.Retained {
		if strings.HasPrefix(claimName, profileName+"-") {
			return true
		}
	}
	return false
}

// WaitConverged polls until Problems is empty and returns how long it took;
// on timeout it returns the problems left (the first 20).
func (o *Observer) WaitConverged(ctx context.Context, c client.Reader, namespace string, expected Expected, timeout time.Duration) (time.Duration, error) {
	start := time.Now()
	for {
		problems, err := o.Problems(ctx, c, namespace, expected)
		if err != nil {
			return 0, err
		}
		if len(problems) == 0 {
			return time.Since(start), nil
		}
		if time.Since(start) > timeout {
			return 0, fmt.Errorf("not converged after %s; %d problems, first: %s", timeout, len(problems), strings.Join(problems[:min(20, len(problems))], "; "))
		}
		time.Sleep(250 * time.Millisecond)
	}
}
