package validation

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation"
	kubevirtv1 "kubevirt.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
	"github.com/jianfenliu/vmoperator/controller/attach"
	"github.com/jianfenliu/vmoperator/controller/desired"
	"github.com/jianfenliu/vmoperator/controller/placement"
	"github.com/jianfenliu/vmoperator/internal/testing/controlplane"
	"github.com/jianfenliu/vmoperator/test/observe"
)

// fuzzNamespace holds the fuzzed profiles; they are only ever dry-run
// created, so nothing is stored and one name serves every input.
const fuzzNamespace = "default"

// codec walks a profile field by field, either reading every field from a
// fuzz input (fuzzDecoder) or writing a given profile as the input that
// reads back as it (fuzzEncoder), so the samples and the invalid catalogue
// seed the corpus. Each field takes a typical value (valid, as in the
// samples) unless the input names it free: then it may also take an edge
// value (at or past a bound, an odd character) or any string or number
// spelt out. Most inputs thus differ from a valid profile in a few fields,
// which is where the CRD's rules and the builders' assumptions meet; with
// every value drawn at random nearly every input would be refused.
type codec interface {
	str(s *string, typical, edge []string)
	num(v *int32, typical, edge []int32)
	flag(b *bool)
	// count is a list length or map size: typically at most typical, at
	// most most when free.
	count(n *int, typical, most int)
	err() error
}

// The layout of a fuzz input: a count of free fields (at most mostFree)
// and their indices in walk order, two bytes each; then one byte a field,
// where a free field's byte at or above edgeMark picks an edge value, and
// at or above literalMark spells out a value (strings: of length
// b-literalMark, or of the next two bytes' length at 255; numbers: four
// bytes).
const (
	mostFree    = 32
	edgeMark    = 128
	literalMark = 192
)

type fuzzDecoder struct {
	raw   []byte
	free  map[int]bool
	field int
}

func newFuzzDecoder(raw []byte) *fuzzDecoder {
	d := &fuzzDecoder{raw: raw, free: map[int]bool{}}
	for range int(d.byte()) % (mostFree + 1) {
		d.free[int(binary.BigEndian.Uint16(d.take(2)))] = true
	}
	return d
}

func (d *fuzzDecoder) byte() byte {
	if len(d.raw) == 0 {
		return 0
	}
	b := d.raw[0]
	d.raw = d.raw[1:]
	return b
}

// take is the next n bytes, zeros past the end.
func (d *fuzzDecoder) take(n int) []byte {
	out := make([]byte, n)
	d.raw = d.raw[copy(out, d.raw):]
	return out
}

// next reads a field's byte and says whether the field is free.
func (d *fuzzDecoder) next() (byte, bool) {
	free := d.free[d.field]
	d.field++
	return d.byte(), free
}

func (d *fuzzDecoder) str(s *string, typical, edge []string) {
	b, free := d.next()
	switch {
	case !free || b < edgeMark:
		*s = typical[int(b)%len(typical)]
	case b < literalMark:
		*s = edge[int(b-edgeMark)%len(edge)]
	case b < 255:
		*s = string(d.take(min(int(b-literalMark), len(d.raw))))
	default:
		*s = string(d.take(min(int(binary.BigEndian.Uint16(d.take(2))), len(d.raw))))
	}
}

func (d *fuzzDecoder) num(v *int32, typical, edge []int32) {
	b, free := d.next()
	switch {
	case !free || b < edgeMark:
		*v = typical[int(b)%len(typical)]
	case b < literalMark:
		*v = edge[int(b-edgeMark)%len(edge)]
	default:
		*v = int32(binary.BigEndian.Uint32(d.take(4)))
	}
}

func (d *fuzzDecoder) flag(b *bool) { *b = d.byte()&1 == 1 }

func (d *fuzzDecoder) count(n *int, typical, most int) {
	b, free := d.next()
	if free {
		*n = int(b) % (most + 1)
	} else {
		*n = int(b) % (typical + 1)
	}
}

func (d *fuzzDecoder) err() error { return nil }

type fuzzEncoder struct {
	body    []byte
	free    []int
	field   int
	invalid error
}

// next counts a field, free or not.
func (e *fuzzEncoder) next(free bool) {
	if free {
		e.free = append(e.free, e.field)
	}
	e.field++
}

func (e *fuzzEncoder) str(s *string, typical, edge []string) {
	if i := slices.Index(typical, *s); i >= 0 && i < edgeMark {
		e.next(false)
		e.body = append(e.body, byte(i))
		return
	}
	e.next(true)
	switch i := slices.Index(edge, *s); {
	case i >= 0 && i < literalMark-edgeMark:
		e.body = append(e.body, byte(edgeMark+i))
	case len(*s) < 255-literalMark:
		e.body = append(append(e.body, byte(literalMark+len(*s))), *s...)
	default:
		e.body = append(binary.BigEndian.AppendUint16(append(e.body, 255), uint16(len(*s))), *s...)
	}
}

func (e *fuzzEncoder) num(v *int32, typical, edge []int32) {
	if i := slices.Index(typical, *v); i >= 0 {
		e.next(false)
		e.body = append(e.body, byte(i))
		return
	}
	e.next(true)
	if i := slices.Index(edge, *v); i >= 0 {
		e.body = append(e.body, byte(edgeMark+i))
		return
	}
	e.body = binary.BigEndian.AppendUint32(append(e.body, 255), uint32(*v))
}

func (e *fuzzEncoder) flag(b *bool) {
	if *b {
		e.body = append(e.body, 1)
	} else {
		e.body = append(e.body, 0)
	}
}

func (e *fuzzEncoder) count(n *int, typical, most int) {
	if *n > most && e.invalid == nil {
		e.invalid = fmt.Errorf("%d items where the fuzz input holds %d at most", *n, most)
	}
	e.next(*n > typical)
	e.body = append(e.body, byte(*n))
}

func (e *fuzzEncoder) err() error {
	if len(e.free) > mostFree && e.invalid == nil {
		return fmt.Errorf("%d free fields where the fuzz input holds %d at most", len(e.free), mostFree)
	}
	return e.invalid
}

// input is the whole fuzz input: the free fields, then the fields.
func (e *fuzzEncoder) input() []byte {
	out := []byte{byte(len(e.free))}
	for _, field := range e.free {
		out = binary.BigEndian.AppendUint16(out, uint16(field))
	}
	return append(out, e.body...)
}

// list walks a list: its length, then each item.
func list[T any](c codec, items *[]T, typical, most int, item func(*T)) {
	n := len(*items)
	c.count(&n, typical, most)
	if len(*items) != n {
		*items = make([]T, n)
	}
	for i := range *items {
		item(&(*items)[i])
	}
}

// optional walks a pointer: whether it is set, then what it points to.
func optional[T any](c codec, p **T, item func(*T)) {
	set := *p != nil
	c.flag(&set)
	switch {
	case !set:
		*p = nil
		return
	case *p == nil:
		*p = new(T)
	}
	item(*p)
}

// choices are a field's typical and edge values.
type choices[T comparable] struct{ typical, edge []T }

// str walks a string-typed field (a name, an enum, an IPAddress).
func str[T ~string](c codec, v *T, from choices[T]) {
	s := string(*v)
	c.str(&s, asStrings(from.typical), asStrings(from.edge))
	*v = T(s)
}

func asStrings[T ~string](values []T) []string {
	out := make([]string, len(values))
	for i, v := range values {
		out[i] = string(v)
	}
	return out
}

func num(c codec, v *int32, from choices[int32]) { c.num(v, from.typical, from.edge) }

func optionalStr[T ~string](c codec, p **T, from choices[T]) {
	optional(c, p, func(v *T) { str(c, v, from) })
}

func optionalNum(c codec, p **int32, from choices[int32]) {
	optional(c, p, func(v *int32) { num(c, v, from) })
}

// The values of each field: typical ones as the samples have them, and
// edge ones at and around every bound the CRD sets and every name the
// builders derive something from.
var (
	fuzzProfileNames = choices[string]{
		[]string{"web", "web-vm-01", "test-vm", "basic", "edge-router", "a", "x1", strings.Repeat("p", 60)},
		[]string{strings.Repeat("p", 61), strings.Repeat("p", 63), strings.Repeat("p", 254), "Web", "a.b", "-a", "a-", "a_b", "", "1"},
	}
	fuzzItemNames = choices[string]{
		[]string{"mgmt", "business", "lan", "net0", "net1", "system", "data", "root", "a", strings.Repeat("n", 63)},
		[]string{strings.Repeat("n", 64), "vmop-cloudinit", "vmop-containerdisk", "vmop-x", "Mgmt", "a.b", "-a", "a-", "a_b", "", "default", "pod"},
	}
	fuzzCPUs       = choices[int32]{[]int32{1, 2, 4, 8}, []int32{1024, 0, -1, 1025}}
	fuzzQuantities = choices[string]{
		[]string{"4Gi", "8Gi", "512Mi", "20Gi", "80Gi", "1Ti", "1G", "1500M"},
		[]string{"1", "1m", "0", "-1Gi", "1.5Gi", "1e3", "1E", "abc", "", "0.5", "100000Ei", "9223372036854775807", "1Ki",
			" 1Gi", "1gi", strings.Repeat("9", 32), strings.Repeat("9", 33), "+1Gi", "0x10"},
	}
	fuzzImages = choices[string]{
		[]string{"", "registry.local/centos-stream:8", "registry.local/centos-stream:9", "docker://registry.local/cirros:0.6"},
		[]string{"docker://quay.io/c/d@sha256:0123", "http://x/y", "a b", "docker://", "x", "-x", "docker:/x", "x:", "oci-archive:/x",
			strings.Repeat("r", 512), strings.Repeat("r", 513)},
	}
	fuzzSecrets = choices[string]{
		[]string{"", "web-vm-ssh"},
		[]string{"Bad", "a..b", "-a", strings.Repeat("s", 253), strings.Repeat("s", 254)},
	}
	fuzzNetworkTypes = choices[vmv1alpha1.NetworkType]{
		[]vmv1alpha1.NetworkType{vmv1alpha1.NetworkTypeBridge, vmv1alpha1.NetworkTypeMacvlan, vmv1alpha1.NetworkTypeSRIOV, vmv1alpha1.NetworkTypeOVS},
		[]vmv1alpha1.NetworkType{"", "vxlan", "Bridge"},
	}
	fuzzNADNames = choices[string]{
		[]string{"", "", "", "corp", "shared/corp"},
		[]string{"other/corp", "a/b/c", "Corp", "corp.", "/corp", "corp/", strings.Repeat("n", 253), strings.Repeat("n", 63) + "/" + strings.Repeat("n", 253),
			strings.Repeat("n", 318)},
	}
	fuzzVLANs   = choices[int32]{[]int32{100, 200, 300, 310}, []int32{1, 4094, 0, 4095, -1, 301, 311}}
	fuzzBridges = choices[string]{
		[]string{"", "", "br-mgmt", "br-transit", "br-int", "br0"},
		[]string{"br0-", "br0.", "br0_", "_br0", "br/0", "br 0", strings.Repeat("b", 15), strings.Repeat("b", 16), "Br.0_x-1", "br-"},
	}
	fuzzHostNetworks = choices[string]{
		[]string{"", "", "transit", "storage"},
		[]string{"missing", "Transit", strings.Repeat("h", 50), strings.Repeat("h", 51)},
	}
	fuzzMTUs = choices[int32]{[]int32{1500, 9000}, []int32{68, 65535, 67, 65536, 9001}}
	fuzzMACs = choices[string]{
		[]string{"", "", "02:00:00:00:00:01", "02:00:00:00:03:00"},
		[]string{"01:00:00:00:00:01", "FE:FF:FF:FF:FF:FF", "02:00:00:00:00:0g", "02-00-00-00-00-01", "02:00:00:00:00:00", "02:00:00:00:00:001", "00:00:00:00:00:00"},
	}
	fuzzResources = choices[string]{
		[]string{"intel.com/sriov_netdevice", "intel.com/sriov"},
		[]string{"nodomain", "a/b/c", "", "intel.com/", "/x"},
	}
	fuzzModes     = choices[vmv1alpha1.IPMode]{[]vmv1alpha1.IPMode{vmv1alpha1.IPModeStatic, vmv1alpha1.IPModeDHCP}, []vmv1alpha1.IPMode{"", "auto"}}
	fuzzAddresses = choices[string]{
		[]string{"192.168.100.10/24", "172.16.30.2/24", "2001:db8:100::10/64", "10.10.101.20/24", "192.168.200.50/24"},
		[]string{"10.0.0.0/8", "10.255.255.255/8", "192.168.1.5/32", "2001:db8::/64", "127.0.0.1/8", "169.254.1.1/16", "224.0.0.1/4",
			"0.0.0.0/0", "192.168.1.5", "::ffff:10.0.0.1/96", "fe80::1/64", "10.0.0.1/33", "10.0.0.1/24 ", "", "2001:db8::10/128", "::/0"},
	}
	fuzzIPs = choices[vmv1alpha1.IPAddress]{
		[]vmv1alpha1.IPAddress{"192.168.100.1", "172.16.30.1", "2001:db8:100::1", "10.10.101.1", "8.8.8.8"},
		[]vmv1alpha1.IPAddress{"10.0.0.1", "192.168.100.10", "::1", "not-an-ip", "192.168.100.256", "0.0.0.0", "::", "", "2001:db8::1",
			"192.168.100.255", "::ffff:192.168.100.1"},
	}
	fuzzStorageClasses = choices[string]{[]string{"", "huamei-sc-ssd", "huamei-sc-hdd"}, []string{"Bad_Class", "-x", strings.Repeat("c", 254)}}
	fuzzRetainPolicies = choices[vmv1alpha1.RetainPolicy]{
		[]vmv1alpha1.RetainPolicy{"", vmv1alpha1.RetainPolicyRetain, vmv1alpha1.RetainPolicyDelete}, []vmv1alpha1.RetainPolicy{"Keep", "retain"},
	}
	fuzzRestartPolicies = choices[vmv1alpha1.RestartPolicy]{
		[]vmv1alpha1.RestartPolicy{"", vmv1alpha1.RestartAlways, vmv1alpha1.RestartOnFailure, vmv1alpha1.RestartNever}, []vmv1alpha1.RestartPolicy{"Sometimes"},
	}
	fuzzRunStrategies = choices[vmv1alpha1.RunStrategy]{
		[]vmv1alpha1.RunStrategy{"", vmv1alpha1.RunStrategyAlways, vmv1alpha1.RunStrategyRerunOnFailure, vmv1alpha1.RunStrategyManual,
			vmv1alpha1.RunStrategyHalted, vmv1alpha1.RunStrategyOnce},
		[]vmv1alpha1.RunStrategy{"Sometimes", "always"},
	}
	fuzzLabelKeys = choices[string]{
		[]string{"kubernetes.io/arch", "rack", "node-role.kubernetes.io/edge"},
		[]string{"a/b/c", "-bad", "example.com/", "", strings.Repeat("k", 63), strings.Repeat("k", 64), strings.Repeat("d", 254) + "/k"},
	}
	fuzzLabelValues = choices[vmv1alpha1.LabelValue]{
		[]vmv1alpha1.LabelValue{"amd64", "", "r1"}, []vmv1alpha1.LabelValue{"-x", "a b", vmv1alpha1.LabelValue(strings.Repeat("v", 63)), vmv1alpha1.LabelValue(strings.Repeat("v", 64))},
	}
)

// walkProfile walks every field of a profile a user writes.
func walkProfile(c codec, p *vmv1alpha1.VirtualMachineProfile) {
	c.str(&p.Name, fuzzProfileNames.typical, fuzzProfileNames.edge)
	s := &p.Spec
	num(c, &s.CPU, fuzzCPUs)
	str(c, &s.Memory, fuzzQuantities)
	str(c, &s.OSImage, fuzzImages)
	str(c, &s.SSHKeySecret, fuzzSecrets)
	list(c, &s.Networks, 4, 17, func(n *vmv1alpha1.NetworkConfig) { walkNetwork(c, n) })
	list(c, &s.Disks, 3, 17, func(d *vmv1alpha1.DiskConfig) {
		str(c, &d.Name, fuzzItemNames)
		str(c, &d.Size, fuzzQuantities)
		str(c, &d.StorageClassName, fuzzStorageClasses)
		c.flag(&d.Boot)
		str(c, &d.Image, fuzzImages)
		str(c, &d.RetainPolicy, fuzzRetainPolicies)
	})
	optional(c, &s.HighAvailability, func(ha *vmv1alpha1.HighAvailabilitySpec) {
		str(c, &ha.RestartPolicy, fuzzRestartPolicies)
		c.flag(&ha.AntiAffinity)
		walkSelector(c, &ha.NodeSelector)
	})
	optional(c, &s.StartStrategy, func(ss *vmv1alpha1.StartStrategySpec) {
		str(c, &ss.RunStrategy, fuzzRunStrategies)
		optional(c, &ss.AutoStart, c.flag)
	})
}

func walkNetwork(c codec, n *vmv1alpha1.NetworkConfig) {
	str(c, &n.Name, fuzzItemNames)
	str(c, &n.Type, fuzzNetworkTypes)
	str(c, &n.NADName, fuzzNADNames)
	optionalNum(c, &n.VLANID, fuzzVLANs)
	str(c, &n.BridgeName, fuzzBridges)
	str(c, &n.HostNetwork, fuzzHostNetworks)
	optionalNum(c, &n.MTU, fuzzMTUs)
	str(c, &n.MACAddress, fuzzMACs)
	optional(c, &n.SRIOV, func(s *vmv1alpha1.SRIOVConfig) { str(c, &s.ResourceName, fuzzResources) })
	optional(c, &n.IPConfig, func(ip *vmv1alpha1.IPConfigSpec) {
		str(c, &ip.Mode, fuzzModes)
		optionalStr(c, &ip.Address, fuzzAddresses)
		optionalStr(c, &ip.Gateway, fuzzIPs)
		list(c, &ip.DNSServers, 3, 5, func(dns *vmv1alpha1.IPAddress) { str(c, dns, fuzzIPs) })
	})
}

type selectorEntry struct {
	key   string
	value vmv1alpha1.LabelValue
}

// walkSelector walks a node selector in key order (a map has none of its own).
func walkSelector(c codec, selector *map[string]vmv1alpha1.LabelValue) {
	keys := slices.Sorted(maps.Keys(*selector))
	entries := make([]selectorEntry, len(keys))
	for i, key := range keys {
		entries[i] = selectorEntry{key, (*selector)[key]}
	}
	list(c, &entries, 2, 33, func(e *selectorEntry) {
		str(c, &e.key, fuzzLabelKeys)
		str(c, &e.value, fuzzLabelValues)
	})
	if len(entries) == 0 {
		*selector = nil
		return
	}
	*selector = map[string]vmv1alpha1.LabelValue{}
	for _, e := range entries {
		(*selector)[e.key] = e.value
	}
}

// decodeProfile is the profile a fuzz input describes.
func decodeProfile(raw []byte) *vmv1alpha1.VirtualMachineProfile {
	p := &vmv1alpha1.VirtualMachineProfile{}
	walkProfile(newFuzzDecoder(raw), p)
	p.Namespace = fuzzNamespace
	return p
}

// encodeProfile is the fuzz input that describes p.
func encodeProfile(p *vmv1alpha1.VirtualMachineProfile) ([]byte, error) {
	e := &fuzzEncoder{}
	walkProfile(e, p.DeepCopy())
	return e.input(), e.err()
}

// profileSeeds are every profile of the samples and of the invalid
// catalogue (testdata/invalid).
func profileSeeds(f *testing.F) []*vmv1alpha1.VirtualMachineProfile {
	f.Helper()
	var files []string
	for _, dir := range observe.SampleDirs() {
		found, err := filepath.Glob(filepath.Join(controlplane.RepoRoot(), dir, "*.yaml"))
		if err != nil {
			f.Fatal(err)
		}
		files = append(files, found...)
	}
	invalid, err := filepath.Glob(filepath.Join("testdata", "invalid", "*.yaml"))
	if err != nil {
		f.Fatal(err)
	}
	var seeds []*vmv1alpha1.VirtualMachineProfile
	for _, file := range append(files, invalid...) {
		for _, obj := range decodeFile(f, file) {
			if obj["kind"] != "VirtualMachineProfile" {
				continue
			}
			var read vmv1alpha1.VirtualMachineProfile
			if err := k8sruntime.DefaultUnstructuredConverter.FromUnstructured(obj, &read); err != nil {
				continue // a field of the wrong type: the catalogue's to try, not a fuzz input's
			}
			seeds = append(seeds, &vmv1alpha1.VirtualMachineProfile{
				ObjectMeta: metav1.ObjectMeta{Name: read.Name, Namespace: fuzzNamespace},
				Spec:       read.Spec,
			})
		}
	}
	return seeds
}

func decodeFile(f *testing.F, file string) []map[string]any {
	f.Helper()
	raw, err := os.ReadFile(file)
	if err != nil {
		f.Fatal(err)
	}
	var objects []map[string]any
	for _, doc := range strings.Split(string(raw), "\n---\n") {
		obj := map[string]any{}
		if err := yaml.Unmarshal([]byte(doc), &obj); err != nil {
			f.Fatalf("%s: %v", file, err)
		}
		if len(obj) > 0 {
			objects = append(objects, obj)
		}
	}
	return objects
}

// sampleHostNetworks are the HostNetworks of deploy/samples, that fuzzed
// profiles resolve against besides undeclared networks.
func sampleHostNetworks(f *testing.F) []vmv1alpha1.HostNetwork {
	f.Helper()
	var out []vmv1alpha1.HostNetwork
	for _, obj := range decodeFile(f, filepath.Join(controlplane.RepoRoot(), "deploy", "samples", "host-network.yaml")) {
		if obj["kind"] != "HostNetwork" {
			continue
		}
		var h vmv1alpha1.HostNetwork
		if err := k8sruntime.DefaultUnstructuredConverter.FromUnstructured(obj, &h); err != nil {
			f.Fatal(err)
		}
		out = append(out, h)
	}
	if len(out) == 0 {
		f.Fatal("deploy/samples/host-network.yaml declares no HostNetwork")
	}
	return out
}

// FuzzAdmittedProfilesBuild: for any profile, the real kube-apiserver with
// our CRD either refuses it, with an Invalid error whose every cause names
// a field under spec (or the profile's name), or admits it, and then every
// builder of controller/desired makes valid objects of it (the VM with the
// node affinity placement asks for, the NADs, the cloud-init Secret, the
// disks' volumes), and makes the same ones twice. Each input costs one
// server-side dry-run create. make test fuzzes it briefly; make fuzz for
// FUZZTIME.
func FuzzAdmittedProfilesBuild(f *testing.F) {
	for _, seed := range profileSeeds(f) {
		raw, err := encodeProfile(seed)
		if err != nil {
			f.Logf("seed %s left out: %v", seed.Name, err)
			continue
		}
		if got := decodeProfile(raw); !reflect.DeepEqual(got, seed) {
			f.Fatalf("seed %s does not survive encoding:\n%+v\n%+v", seed.Name, seed.Spec, got.Spec)
		}
		f.Add(raw)
	}
	inputs := attach.Inputs{
		HostNetworks:    sampleHostNetworks(f),
		NamespaceLabels: map[string]string{"team": "network"},
		Policy:          attach.Policy{AllowUndeclared: true, SharedNADNamespaces: []string{"shared"}, DefaultSRIOVResource: "intel.com/sriov"},
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		p := decodeProfile(raw)
		// A dry run takes milliseconds; a minute means the apiserver hangs,
		// which then fails the input rather than the whole run.
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		err := cluster.Client.Create(ctx, p, client.DryRunAll, client.FieldValidation(metav1.FieldValidationStrict))
		if err != nil {
			checkRefusal(t, err)
			return
		}
		built := buildAll(t, p, inputs)
		if again := buildAll(t, p, inputs); !reflect.DeepEqual(built, again) {
			t.Errorf("the builders made different objects of one profile:\n%+v\n%+v", built, again)
		}
		checkBuilt(t, p, built)
	})
}

// checkRefusal: a refusal is Invalid, and each cause names a field under
// spec, or metadata.name (the name rule sits on the object and has no field
// path: its message names the field). Beside them the apiserver may add a
// note that it skipped the CEL rules of an object with schema errors.
func checkRefusal(t *testing.T, err error) {
	t.Helper()
	var status apierrors.APIStatus
	if !apierrors.IsInvalid(err) || !errors.As(err, &status) || status.Status().Details == nil {
		t.Fatalf("refused, but not as Invalid with causes: %v", err)
	}
	named := 0
	for _, cause := range status.Status().Details.Causes {
		switch {
		case strings.HasPrefix(cause.Field, "spec.") || cause.Field == "metadata.name" ||
			cause.Field == "<nil>" && strings.Contains(cause.Message, "metadata.name "):
			named++
		case cause.Field == "<nil>" && strings.Contains(cause.Message, "some validation rules were not checked because the object was invalid"):
		default:
			t.Errorf("a cause names no field under spec: field %q, %s", cause.Field, cause.Message)
		}
	}
	if named == 0 {
		t.Errorf("no cause names a field: %v", err)
	}
}

// builtObjects is everything the controller would make of one profile.
type builtObjects struct {
	attachments []desired.Attachment
	refusal     *attach.Refusal
	needs       []placement.Requirement
	placement   desired.Placement
	nads        []*nadv1.NetworkAttachmentDefinition
	vm          *kubevirtv1.VirtualMachine
	secret      *corev1.Secret
	volumes     []client.Object
}

// buildAll runs the builders as the reconciler does. A builder may refuse
// an admitted profile only for a rule the CRD cannot express, and then
// with an error naming the field; none does today, so any error fails.
func buildAll(t *testing.T, p *vmv1alpha1.VirtualMachineProfile, inputs attach.Inputs) builtObjects {
	t.Helper()
	var b builtObjects
	b.attachments, b.refusal = attach.Resolve(p, inputs)
	for _, a := range b.attachments {
		if a.Named {
			continue
		}
		nad, err := desired.NAD(p, a)
		if err != nil {
			t.Fatalf("NAD of network %s: %v", a.Network.Name, err)
		}
		b.nads = append(b.nads, nad)
	}
	b.needs = placement.Requirements(b.attachments)
	b.placement = placement.Evaluate(p, b.needs, nil, placement.Options{}).Placement
	var err error
	if b.vm, err = desired.VM(p, b.placement, nil); err != nil {
		t.Fatalf("VM: %v", err)
	}
	if b.secret, err = desired.CloudInitSecret(p); err != nil {
		t.Fatalf("cloud-init Secret: %v", err)
	}
	for i := range p.Spec.Disks {
		disk := &p.Spec.Disks[i]
		size, err := resource.ParseQuantity(disk.Size)
		if err != nil {
			t.Fatalf("disk %s: size %q: %v", disk.Name, disk.Size, err)
		}
		if image := p.Spec.DiskImage(disk); image != "" {
			b.volumes = append(b.volumes, desired.DataVolume(p, disk, image, size))
		} else {
			b.volumes = append(b.volumes, desired.PVC(p, disk, size))
		}
	}
	return b
}

// checkBuilt: every object is one the apiserver and its consumers take:
// valid names and labels, a VM named as a label value may be, with a node
// affinity of valid label keys, one volume per disk under a name no other
// has and a unicast MAC per interface, no two alike, CNI configs that are JSON and
// network-data that is YAML.
func checkBuilt(t *testing.T, p *vmv1alpha1.VirtualMachineProfile, b builtObjects) {
	t.Helper()
	objects := []client.Object{b.vm, b.secret}
	for _, nad := range b.nads {
		objects = append(objects, nad)
		if !json.Valid([]byte(nad.Spec.Config)) {
			t.Errorf("NAD %s: config is not JSON: %s", nad.Name, nad.Spec.Config)
		}
	}
	for _, obj := range append(objects, b.volumes...) {
		what := fmt.Sprintf("%T %s", obj, obj.GetName())
		checkName(t, what, obj.GetName(), validation.IsDNS1123Subdomain)
		checkLabels(t, what, obj.GetLabels())
	}
	// KubeVirt puts the VM's name in its pod's labels.
	checkName(t, "VM", b.vm.Name, validation.IsDNS1123Label)
	checkVM(t, p, b)
	var doc map[string]any
	if err := yaml.Unmarshal(b.secret.Data[desired.NetworkDataKey], &doc); err != nil {
		t.Errorf("network-data is not YAML: %v\n%s", err, b.secret.Data[desired.NetworkDataKey])
	}
}

func checkName(t *testing.T, what, name string, valid func(string) []string) {
	t.Helper()
	if errs := valid(name); len(errs) > 0 {
		t.Errorf("%s: name %q: %v", what, name, errs)
	}
}

func checkLabels(t *testing.T, what string, labels map[string]string) {
	t.Helper()
	for key, value := range labels {
		if errs := append(validation.IsQualifiedName(key), validation.IsValidLabelValue(value)...); len(errs) > 0 {
			t.Errorf("%s: label %s=%q: %v", what, key, value, errs)
		}
	}
}

func checkVM(t *testing.T, p *vmv1alpha1.VirtualMachineProfile, b builtObjects) {
	t.Helper()
	template := b.vm.Spec.Template
	checkLabels(t, "VM template", template.ObjectMeta.Labels)
	checkLabels(t, "VM nodeSelector", template.Spec.NodeSelector)
	if affinity := template.Spec.Affinity; affinity != nil && affinity.NodeAffinity != nil {
		for _, term := range affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms {
			for _, expression := range term.MatchExpressions {
				checkLabels(t, "VM node affinity", map[string]string{expression.Key: strings.Join(expression.Values, "")})
			}
		}
	}
	if err := desired.CheckVolumeKinds(b.vm); err != nil {
		t.Error(err) // the chart's admission policy would refuse the VM
	}
	var disks, volumes []string
	for _, d := range template.Spec.Domain.Devices.Disks {
		disks = append(disks, d.Name)
	}
	for _, v := range template.Spec.Volumes {
		volumes = append(volumes, v.Name)
	}
	slices.Sort(disks)
	slices.Sort(volumes)
	if len(slices.Compact(slices.Clone(disks))) != len(disks) {
		t.Errorf("VM disks share a name: %v", disks)
	}
	if !slices.Equal(disks, volumes) {
		t.Errorf("VM disks %v and volumes %v do not pair up", disks, volumes)
	}
	if len(template.Spec.Domain.Devices.Interfaces) != len(p.Spec.Networks) {
		t.Errorf("%d interfaces for %d networks", len(template.Spec.Domain.Devices.Interfaces), len(p.Spec.Networks))
	}
	// cloud-init finds each interface by its MAC.
	macs := map[string]string{}
	for _, iface := range template.Spec.Domain.Devices.Interfaces {
		mac, err := net.ParseMAC(iface.MacAddress)
		if err != nil || len(mac) != 6 || mac[0]&1 == 1 {
			t.Errorf("interface %s: MAC %q is not a unicast MAC (%v)", iface.Name, iface.MacAddress, err)
			continue
		}
		if other, taken := macs[mac.String()]; taken {
			t.Errorf("interfaces %s and %s share the MAC %s", other, iface.Name, mac)
		}
		macs[mac.String()] = iface.Name
	}
}
