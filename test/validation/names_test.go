package validation

import (
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"sigs.k8s.io/yaml"

	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
	"github.com/jianfenliu/vmoperator/internal/testing/controlplane"
)

// servedResource is one resource the apiserver serves, with every name a
// user can type for it. A resource served in several versions is one
// resource: kubectl resolves a name to the group's preferred version.
type servedResource struct {
	group, plural string
	// names are the plural, the singular and the lower-case kind.
	names      []string
	shortNames []string
	categories []string
}

func (r *servedResource) String() string {
	if r.group == "" {
		return r.plural
	}
	return r.plural + "." + r.group
}

// discoveryCount says how much discovery listed, for the test's log.
type discoveryCount struct {
	groups, groupVersions int
}

// servedResources reads discovery of every API group, built-in and custom,
// and merges each resource's versions.
func servedResources(t *testing.T) ([]*servedResource, discoveryCount) {
	t.Helper()
	client, err := discovery.NewDiscoveryClientForConfig(cluster.Config)
	if err != nil {
		t.Fatal(err)
	}
	// A partial answer would hide a group's names, so any failed group is fatal.
	groups, lists, err := client.ServerGroupsAndResources()
	if err != nil {
		t.Fatalf("discovery: %v", err)
	}
	byKey := map[string]*servedResource{}
	var resources []*servedResource
	for _, list := range lists {
		gv, err := schema.ParseGroupVersion(list.GroupVersion)
		if err != nil {
			t.Fatal(err)
		}
		for _, api := range list.APIResources {
			if strings.Contains(api.Name, "/") {
				continue // a subresource has no name of its own to type
			}
			key := api.Name + "." + gv.Group
			r := byKey[key]
			if r == nil {
				r = &servedResource{group: gv.Group, plural: api.Name}
				byKey[key] = r
				resources = append(resources, r)
			}
			r.names = appendNew(r.names, api.Name, api.SingularName, strings.ToLower(api.Kind))
			r.shortNames = appendNew(r.shortNames, api.ShortNames...)
			r.categories = appendNew(r.categories, api.Categories...)
		}
	}
	return resources, discoveryCount{groups: len(groups), groupVersions: len(lists)}
}

// appendNew appends the non-empty values list does not hold yet.
func appendNew(list []string, values ...string) []string {
	for _, v := range values {
		if v != "" && !slices.Contains(list, v) {
			list = append(list, v)
		}
	}
	return list
}

// ourPlurals reads the plurals of the CRDs in deploy/crds, so the test
// cannot pass by finding none of ours in discovery.
func ourPlurals(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(controlplane.RepoRoot(), "deploy", "crds", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no CRDs in deploy/crds (%v)", err)
	}
	var plurals []string
	for _, file := range files {
		raw, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		var crd apiextensionsv1.CustomResourceDefinition
		if err := yaml.Unmarshal(raw, &crd); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		plurals = append(plurals, crd.Spec.Names.Plural)
	}
	sort.Strings(plurals)
	return plurals
}

// thirdPartyShortNames are short names the real KubeVirt, CDI, Multus and
// nmstate installers set. Each must be served, or the test control plane is
// not playing a cluster with them installed and the test proves nothing.
func thirdPartyShortNames() []string {
	return []string{
		"vm", "vmi", // kubevirt.io
		"vmf", "vminstancetype", "vmcf", "vmp", "vmpref", "vmcp", // instancetype.kubevirt.io
		"dv",                    // cdi.kubevirt.io
		"nad", "net-attach-def", // k8s.cni.cncf.io
		"nncp", "nnce", "nns", // nmstate.io
	}
}

// collision is one way a name of ours also means another resource.
type collision struct {
	ours       *servedResource
	nameKind   string // "short name" or "category"
	name       string
	other      *servedResource
	otherField string // which of other's names it equals
}

func (c collision) String() string {
	return fmt.Sprintf("the %s %q of %s is also a %s of %s", c.nameKind, c.name, c.ours, c.otherField, c.other)
}

// collisions compares the short names and categories of ours with every name
// of every other resource (ours included, but not itself), and returns how
// many pairs of names it compared.
//
//   - A short name must be nobody else's plural, singular, kind, short name
//     or category: kubectl expands categories before it resolves names, so
//     a short name that is someone's category lists theirs instead.
//   - A category must be nobody's plural, singular, kind or short name, or
//     `kubectl get CATEGORY` would mean two things.
func collisions(ours *servedResource, all []*servedResource) ([]collision, int) {
	var found []collision
	compared := 0
	check := func(nameKind, name string, other *servedResource, otherField string, otherNames []string) {
		compared += len(otherNames)
		if slices.Contains(otherNames, name) {
			found = append(found, collision{ours: ours, nameKind: nameKind, name: name, other: other, otherField: otherField})
		}
	}
	for _, other := range all {
		if other != ours {
			for _, short := range ours.shortNames {
				check("short name", short, other, "name", other.names)
				check("short name", short, other, "short name", other.shortNames)
				check("short name", short, other, "category", other.categories)
			}
		}
		for _, category := range ours.categories {
			check("category", category, other, "name", other.names)
			check("category", category, other, "short name", other.shortNames)
		}
	}
	return found, compared
}

// TestShortNamesAndCategoriesAreUnambiguous reads discovery of every group
// on a control plane with KubeVirt (VMs and instancetypes), CDI, Multus and
// nmstate installed under their real names, and fails when a short name or
// category of our CRDs also names another resource. KubeVirt's
// VirtualMachinePreference is vmp, which our profile once was.
func TestShortNamesAndCategoriesAreUnambiguous(t *testing.T) {
	resources, count := servedResources(t)
	group := vmv1alpha1.GroupVersion.Group
	var ours []*servedResource
	var plurals, shortNames []string
	for _, r := range resources {
		shortNames = append(shortNames, r.shortNames...)
		if r.group == group {
			ours = append(ours, r)
			plurals = append(plurals, r.plural)
		}
	}
	sort.Strings(plurals)
	if want := ourPlurals(t); !slices.Equal(plurals, want) {
		t.Fatalf("discovery serves %v in %s, deploy/crds defines %v", plurals, group, want)
	}
	for _, name := range thirdPartyShortNames() {
		if !slices.Contains(shortNames, name) {
			t.Fatalf("no served resource has the short name %q: test/crds is not the real third-party install", name)
		}
	}

	compared := 0
	for _, r := range ours {
		if len(r.shortNames) == 0 {
			t.Errorf("%s has no short name", r)
		}
		found, n := collisions(r, resources)
		compared += n
		for _, c := range found {
			t.Error(c)
		}
		t.Logf("%s: short names %v, categories %v", r, r.shortNames, r.categories)
	}
	t.Logf("discovery: %d groups, %d group versions, %d resources (subresources left out); compared %d name pairs",
		count.groups, count.groupVersions, len(resources), compared)
}

// listedResources runs `kubectl get NAME -A` through the real kubectl and
// returns the resources it listed, as plural.group, read from the requests it
// logged. Discovery requests (/api, /apis/GROUP/VERSION) are not listings.
func listedResources(t *testing.T, name string) []string {
	t.Helper()
	// A fresh discovery cache: one left by another cluster must not answer.
	cmd := exec.Command("kubectl", "--kubeconfig", cluster.Kubeconfig, "--cache-dir", t.TempDir(),
		"get", name, "--all-namespaces", "-v=6")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl get %s: %v\n%s", name, err, out)
	}
	// The paths kubectl requested, in its -v=6 log lines' plain or
	// structured format (they differ by kubectl version).
	requestedPath := regexp.MustCompile(`GET"?\s+(?:url=")?https?://[^/\s"]+(/[^?\s"]*)`)
	var listed []string
	for _, match := range requestedPath.FindAllStringSubmatch(string(out), -1) {
		if resource, ok := listedResource(match[1]); ok {
			listed = appendNew(listed, resource)
		}
	}
	// kubectl warns when a short name could also match another resource.
	if strings.Contains(string(out), "could also match") {
		t.Errorf("kubectl get %s warns of an ambiguity:\n%s", name, out)
	}
	return listed
}

// listedResource turns a list request's path into plural.group, or says it
// is not a list request.
func listedResource(path string) (string, bool) {
	parts := strings.Split(strings.Trim(path, "/"), "/")
	if n := len(parts); n >= 5 && parts[n-3] == "namespaces" {
		parts = append(parts[:n-3], parts[n-1]) // .../namespaces/NS/PLURAL
	}
	switch {
	case len(parts) == 3 && parts[0] == "api": // /api/v1/PLURAL
		return parts[2], true
	case len(parts) == 4 && parts[0] == "apis": // /apis/GROUP/VERSION/PLURAL
		return parts[3] + "." + parts[1], true
	}
	return "", false
}

// TestKubectlResolvesOurShortNamesToOurResources types each short name of
// ours, and our own category, into the real kubectl against the apiserver
// that also serves KubeVirt, CDI, Multus and nmstate: each lists ours alone.
func TestKubectlResolvesOurShortNamesToOurResources(t *testing.T) {
	if _, err := exec.LookPath("kubectl"); err != nil {
		t.Fatalf("kubectl not found: %v", err)
	}
	resources, _ := servedResources(t)
	group := vmv1alpha1.GroupVersion.Group
	typed := map[string][]string{} // what to type: the resources it must list
	for _, r := range resources {
		if r.group != group {
			continue
		}
		for _, short := range r.shortNames {
			typed[short] = []string{r.String()}
		}
		for _, category := range r.categories {
			if category != "all" { // "all" is shared by design: kubectl get all lists workloads too
				typed[category] = append(typed[category], r.String())
			}
		}
	}
	if len(typed) == 0 {
		t.Fatalf("discovery serves no short name in %s", group)
	}
	names := slices.Sorted(maps.Keys(typed))
	for _, name := range names {
		want := typed[name]
		t.Run(name, func(t *testing.T) {
			listed := listedResources(t, name)
			sort.Strings(listed)
			sort.Strings(want)
			if !slices.Equal(listed, want) {
				t.Fatalf("kubectl get %s listed %v, want %v", name, listed, want)
			}
			t.Logf("kubectl get %s lists %v", name, listed)
		})
	}
}

// TestCollisionsFindEveryKindOfClash feeds collisions made-up resources, so
// a clash the real cluster happens not to have is still known to be caught.
func TestCollisionsFindEveryKindOfClash(t *testing.T) {
	preference := &servedResource{group: "instancetype.kubevirt.io", plural: "virtualmachinepreferences",
		names: []string{"virtualmachinepreferences", "virtualmachinepreference"}, shortNames: []string{"vmp"}, categories: []string{"all"}}
	pods := &servedResource{plural: "pods", names: []string{"pods", "pod"}, shortNames: []string{"po"}, categories: []string{"all"}}
	for _, tc := range []struct {
		name string
		ours *servedResource
		want string
	}{
		{"short name is another's short name", &servedResource{plural: "profiles", shortNames: []string{"vmp"}},
			`the short name "vmp" of profiles is also a short name of virtualmachinepreferences.instancetype.kubevirt.io`},
		{"short name is another's singular", &servedResource{plural: "profiles", shortNames: []string{"pod"}},
			`the short name "pod" of profiles is also a name of pods`},
		{"short name is another's category", &servedResource{plural: "profiles", shortNames: []string{"all"}},
			`the short name "all" of profiles is also a category of virtualmachinepreferences.instancetype.kubevirt.io`},
		{"category is another's short name", &servedResource{plural: "profiles", categories: []string{"po"}},
			`the category "po" of profiles is also a short name of pods`},
		{"shared category is no clash", &servedResource{plural: "profiles", shortNames: []string{"vmprofile"}, categories: []string{"all"}}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			found, _ := collisions(tc.ours, []*servedResource{preference, pods, tc.ours})
			var got []string
			for _, c := range found {
				got = append(got, c.String())
			}
			if (tc.want == "" && len(got) > 0) || (tc.want != "" && !slices.Contains(got, tc.want)) {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}
