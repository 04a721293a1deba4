// Package validation checks, against the real kube-apiserver, that the
// VirtualMachineProfile and HostNetwork CRDs reject bad input at admission
// with a message that names the field, and accept every sample (the seed's
// examples verbatim); that the NodeCapability CRD refuses oversized
// strings; and that no short name or category of our CRDs is
// ambiguous next to KubeVirt, CDI, Multus, nmstate and the built-in APIs.
package validation

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
	"github.com/jianfenliu/vmoperator/internal/testing/controlplane"
	"github.com/jianfenliu/vmoperator/test/observe"
)

// cluster is the control plane shared by every test in this package.
var cluster *controlplane.ControlPlane

// TestMain stops the control plane at once: FuzzAdmittedProfilesBuild runs
// one in every fuzz worker process, which go test -fuzz kills a second
// after fuzzing ends.
func TestMain(m *testing.M) {
	controlplane.RunTests(m, &cluster, controlplane.StopAtOnce())
}

// invalidCase is one file of testdata/invalid: a profile and what the
// apiserver must say about it.
type invalidCase struct {
	file        string
	wantField   string
	wantMessage string
	object      *unstructured.Unstructured
}

func loadInvalidCases(t *testing.T, dir string) []invalidCase {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", dir, "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	cases := make([]invalidCase, 0, len(files))
	for _, file := range files {
		raw, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		c := invalidCase{file: filepath.Base(file), object: decode(t, file, raw)[0]}
		scanner := bufio.NewScanner(bytes.NewReader(raw))
		for scanner.Scan() {
			if v, ok := strings.CutPrefix(scanner.Text(), "# want-field: "); ok {
				c.wantField = v
			}
			if v, ok := strings.CutPrefix(scanner.Text(), "# want-message: "); ok {
				c.wantMessage = v
			}
		}
		if c.wantField == "" || c.wantMessage == "" {
			t.Fatalf("%s: needs '# want-field:' and '# want-message:' header lines", file)
		}
		cases = append(cases, c)
	}
	return cases
}

// decode reads every object of a YAML file (documents separated by ---).
func decode(t *testing.T, file string, raw []byte) []*unstructured.Unstructured {
	t.Helper()
	var objects []*unstructured.Unstructured
	for _, doc := range strings.Split(string(raw), "\n---\n") {
		obj := &unstructured.Unstructured{}
		if err := yaml.Unmarshal([]byte(doc), &obj.Object); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		if len(obj.Object) > 0 {
			objects = append(objects, obj)
		}
	}
	return objects
}

// place puts a namespaced object into namespace; cluster-scoped kinds
// (HostNetwork) stay as they are.
func place(obj *unstructured.Unstructured, namespace string) {
	if obj.GetKind() != "HostNetwork" {
		obj.SetNamespace(namespace)
	}
}

func newNamespace(t *testing.T) string {
	t.Helper()
	ns := &unstructured.Unstructured{}
	ns.SetAPIVersion("v1")
	ns.SetKind("Namespace")
	ns.SetGenerateName("validation-")
	if err := cluster.Client.Create(context.Background(), ns); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cluster.Client.Delete(context.Background(), ns) })
	return ns.GetName()
}

// create sends obj as kubectl apply does: strict field validation, so a
// misspelt field is an error rather than silently dropped.
func create(obj client.Object) error {
	return cluster.Client.Create(context.Background(), obj, client.FieldValidation(metav1.FieldValidationStrict))
}

func TestInvalidProfilesAreRejectedNamingTheField(t *testing.T) {
	expectRejections(t, loadInvalidCases(t, "invalid"), 30)
}

func TestInvalidHostNetworksAreRejectedNamingTheField(t *testing.T) {
	expectRejections(t, loadInvalidCases(t, "invalid-hostnetworks"), 12)
}

func expectRejections(t *testing.T, cases []invalidCase, least int) {
	if len(cases) < least {
		t.Fatalf("the catalogue should hold at least %d invalid objects, has %d", least, len(cases))
	}
	namespace := newNamespace(t)
	for _, c := range cases {
		t.Run(strings.TrimSuffix(c.file, ".yaml"), func(t *testing.T) {
			place(c.object, namespace)
			err := create(c.object)
			if err == nil {
				t.Fatalf("accepted; want rejection at %s with %q", c.wantField, c.wantMessage)
			}
			if !apierrors.IsInvalid(err) && !apierrors.IsBadRequest(err) {
				t.Fatalf("want an Invalid or BadRequest error, got %v", err)
			}
			if !errorNames(err, c.wantField, c.wantMessage) {
				t.Fatalf("want a cause at %s saying %q, got:\n%v", c.wantField, c.wantMessage, err)
			}
			t.Logf("%v", err)
		})
	}
}

// errorNames reports whether the apiserver's error has a cause at field whose
// message contains message. A rule on the whole object has no field path (the
// apiserver prints <nil>), so its message names the field itself. Strict
// field validation reports unknown fields as a BadRequest whose text alone
// names the field.
func errorNames(err error, field, message string) bool {
	var status apierrors.APIStatus
	if errors.As(err, &status) && status.Status().Details != nil {
		for _, cause := range status.Status().Details.Causes {
			if cause.Field == field && strings.Contains(cause.Message, message) {
				return true
			}
		}
	}
	return apierrors.IsBadRequest(err) && strings.Contains(err.Error(), field) && strings.Contains(err.Error(), message)
}

func loadSamples(t *testing.T) map[string][]*unstructured.Unstructured {
	t.Helper()
	var files []string
	for _, dir := range observe.SampleDirs() {
		found, err := filepath.Glob(filepath.Join(controlplane.RepoRoot(), dir, "*.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		if len(found) == 0 {
			t.Fatalf("no samples in %s", dir)
		}
		files = append(files, found...)
	}
	samples := map[string][]*unstructured.Unstructured{}
	for _, file := range files {
		raw, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		samples[filepath.Base(file)] = decode(t, file, raw)
	}
	return samples
}

func TestEverySampleIsAccepted(t *testing.T) {
	samples := loadSamples(t)
	for _, seed := range []string{"seed-web-vm-01.yaml", "vm_v1alpha1_virtualmachineprofile.yaml"} {
		if samples[seed] == nil {
			t.Fatalf("the samples must hold the seed's example %s", seed)
		}
	}
	namespace := newNamespace(t)
	for name, objects := range samples {
		t.Run(strings.TrimSuffix(name, ".yaml"), func(t *testing.T) {
			for _, obj := range objects {
				place(obj, namespace)
				if err := create(obj); err != nil {
					t.Fatalf("%s %s rejected: %v", obj.GetKind(), obj.GetName(), err)
				}
			}
		})
	}
}

func TestSeedFullExampleKeepsEveryFieldAndGetsDefaults(t *testing.T) {
	sample := loadSamples(t)["seed-web-vm-01.yaml"][0]
	sample.SetNamespace(newNamespace(t))
	if err := create(sample); err != nil {
		t.Fatal(err)
	}
	var stored vmv1alpha1.VirtualMachineProfile
	if err := cluster.Client.Get(context.Background(), client.ObjectKeyFromObject(sample), &stored); err != nil {
		t.Fatal(err)
	}
	spec := stored.Spec
	mgmt := spec.Networks[0]
	checks := []struct {
		what      string
		got, want any
	}{
		{"cpu", spec.CPU, int32(4)},
		{"memory", spec.Memory, "8Gi"},
		{"osImage", spec.OSImage, "registry.local/centos-stream:8"},
		{"sshKeySecret", spec.SSHKeySecret, "web-vm-ssh"},
		{"mgmt nadName", mgmt.NADName, "mgmt-net"},
		{"mgmt vlanId", *mgmt.VLANID, int32(100)},
		{"mgmt bridgeName", mgmt.BridgeName, "br-mgmt"},
		{"mgmt gateway", string(*mgmt.IPConfig.Gateway), "192.168.100.1"},
		{"mgmt dnsServers", len(mgmt.IPConfig.DNSServers), 2},
		{"business type", spec.Networks[1].Type, vmv1alpha1.NetworkTypeSRIOV},
		{"business mode", spec.Networks[1].IPConfig.Mode, vmv1alpha1.IPModeDHCP},
		{"system image", spec.Disks[0].Image, "registry.local/centos-stream:8"},
		{"data size", spec.Disks[1].Size, "500Gi"},
		{"data storageClassName", spec.Disks[1].StorageClassName, "huamei-sc-hdd"},
		{"default retainPolicy", spec.Disks[1].RetainPolicy, vmv1alpha1.RetainPolicyRetain},
		{"antiAffinity", spec.HighAvailability.AntiAffinity, true},
		{"nodeSelector", spec.HighAvailability.NodeSelector["kubernetes.io/arch"], vmv1alpha1.LabelValue("amd64")},
		{"runStrategy", spec.StartStrategy.RunStrategy, vmv1alpha1.RunStrategyAlways},
		{"autoStart", *spec.StartStrategy.AutoStart, true},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s: got %v, want %v", c.what, c.got, c.want)
		}
	}
}

func TestAutoStartDefaultsToTrueOnlyWhenAbsent(t *testing.T) {
	namespace := newNamespace(t)
	for name, autoStart := range map[string]*bool{"absent": nil, "false": ptr.To(false)} {
		profile := &vmv1alpha1.VirtualMachineProfile{
			ObjectMeta: metav1.ObjectMeta{Name: "autostart-" + name, Namespace: namespace},
			Spec: vmv1alpha1.VirtualMachineProfileSpec{
				CPU: 1, Memory: "1Gi",
				StartStrategy: &vmv1alpha1.StartStrategySpec{AutoStart: autoStart},
			},
		}
		if err := create(profile); err != nil {
			t.Fatal(err)
		}
		want := autoStart == nil
		if got := *profile.Spec.StartStrategy.AutoStart; got != want {
			t.Errorf("autoStart %s: stored %v, want %v", name, got, want)
		}
	}
}
