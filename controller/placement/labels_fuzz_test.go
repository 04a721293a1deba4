package placement

import (
	"encoding/binary"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"

	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"

	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
)

// labelInput is what the label projection reads: one node's capability,
// the VLANs profiles want labelled, and the declared host networks.
type labelInput struct {
	capability vmv1alpha1.NodeCapabilityStatus
	wanted     []Requirement
	offers     []HostNetworkOffer
}

// fuzzWords are the strings a fuzz input names by index (any other string
// is spelt out): the names the tests use, so that bridges, ports, uplinks,
// policies and offers meet; the condition types and reasons placement reads;
// VLAN lists; and names no label key can hold.
var fuzzWords = []string{
	"", "br-mgmt", "br-edge", "br-down", "br-int", "eth1", "eth2", "bond0", "ens1f0", "p0", "veth0123", "eth1.100",
	"edge", "bad", "vmop-edge", "vmop-bad",
	vmv1alpha1.ConditionLinksProbed, vmv1alpha1.ConditionBridgeVLANsProbed, vmv1alpha1.ConditionSRIOVProbed, "Ready",
	vmv1alpha1.ReasonProbeFailed, "ProbePartial",
	"100", "200", "300", "1,100-110", "1,100-110,200-210", "1-4094", "100-", "-5", "4095", "abc", "100,,200", " 100",
	"br0-", "br0.", "_br0", "b.r_0", "br 0", "brü", "a/b", strings.Repeat("x", 60), "0000:3b:00.0", "/dev/kvm: no such file",
}

// fuzzReader hands out a fuzz input: zeros once it runs out.
type fuzzReader []byte

func (r *fuzzReader) byte() byte {
	if len(*r) == 0 {
		return 0
	}
	v := (*r)[0]
	*r = (*r)[1:]
	return v
}

func (r *fuzzReader) count(most int) int { return int(r.byte()) % (most + 1) }
func (r *fuzzReader) bool() bool         { return r.byte()&1 == 1 }
func (r *fuzzReader) int16() int32 {
	return int32(int16(uint16(r.byte())<<8 | uint16(r.byte())))
}

// string: below 128 a word by index, else that many bytes less 128 spelt out.
func (r *fuzzReader) string() string {
	b := r.byte()
	if b < 128 {
		return fuzzWords[int(b)%len(fuzzWords)]
	}
	n := min(int(b-128), len(*r))
	s := string((*r)[:n])
	*r = (*r)[n:]
	return s
}

// fuzzWriter is the inverse of fuzzReader, to turn the tests' own examples
// into seed inputs.
type fuzzWriter []byte

func (w *fuzzWriter) byte(b byte) { *w = append(*w, b) }
func (w *fuzzWriter) count(n int) { w.byte(byte(n)) }
func (w *fuzzWriter) bool(b bool) {
	if b {
		w.byte(1)
	} else {
		w.byte(0)
	}
}
func (w *fuzzWriter) int16(v int32) { *w = binary.BigEndian.AppendUint16(*w, uint16(int16(v))) }
func (w *fuzzWriter) string(s string) {
	if i := slices.Index(fuzzWords, s); i >= 0 {
		w.byte(byte(i))
		return
	}
	w.byte(byte(128 + len(s)))
	*w = append(*w, s...)
}

var fuzzTypes = []vmv1alpha1.NetworkType{"", vmv1alpha1.NetworkTypeBridge, vmv1alpha1.NetworkTypeOVS, vmv1alpha1.NetworkTypeMacvlan, vmv1alpha1.NetworkTypeSRIOV}

// The list lengths a fuzz input may ask for.
const (
	mostItems = 4
	mostPorts = 3
)

// decodeLabelInput reads a capability as an agent reports it: names are
// unique within each list (the kernel's names are, and the agent writes
// each list whole), and so are the declared host networks' names (cluster
// objects); each wanted VLAN carries its own label.
func decodeLabelInput(raw []byte) labelInput {
	r := fuzzReader(raw)
	var in labelInput
	c := &in.capability
	switch r.count(2) {
	case 1:
		c.KVM = &vmv1alpha1.KVMStatus{Available: true, APIVersion: 12}
	case 2:
		c.KVM = &vmv1alpha1.KVMStatus{Reason: r.string()}
	}
	for range r.count(mostItems) {
		b := vmv1alpha1.BridgeStatus{Name: r.string(), Up: r.bool(), VLANFiltering: r.bool()}
		for range r.count(mostPorts) {
			b.Ports = append(b.Ports, vmv1alpha1.BridgePort{Name: r.string(), Up: r.bool(), VLANs: r.string()})
		}
		c.Bridges = append(c.Bridges, b)
	}
	for range r.count(mostItems) {
		c.VLANs = append(c.VLANs, vmv1alpha1.VLANInterface{Name: r.string(), ID: r.int16(), Parent: r.string(), Up: r.bool()})
	}
	for range r.count(mostItems) {
		c.Bonds = append(c.Bonds, vmv1alpha1.BondStatus{Name: r.string(), Up: r.bool()})
	}
	for range r.count(mostItems) {
		c.OVSBridges = append(c.OVSBridges, vmv1alpha1.OVSBridgeStatus{Name: r.string(), Up: r.bool()})
	}
	for range r.count(mostItems) {
		c.Uplinks = append(c.Uplinks, vmv1alpha1.UplinkStatus{Name: r.string(), Up: r.bool(), Carrier: r.bool()})
	}
	for range r.count(mostItems) {
		c.SRIOV = append(c.SRIOV, vmv1alpha1.SRIOVPF{Name: r.string(), PCIAddress: r.string(), TotalVFs: r.int16(), NumVFs: r.int16(), VFsInUse: r.int16(), LinkUp: r.bool()})
	}
	for range r.count(mostItems) {
		c.Policies = append(c.Policies, vmv1alpha1.PolicyVerification{Name: r.string(), Verified: r.bool(), Message: r.string()})
	}
	statuses := []metav1.ConditionStatus{metav1.ConditionTrue, metav1.ConditionFalse, metav1.ConditionUnknown}
	for range r.count(mostItems) {
		c.Conditions = append(c.Conditions, metav1.Condition{Type: r.string(), Status: statuses[r.count(2)], Reason: r.string(), Message: r.string()})
	}
	for range r.count(mostItems) {
		bridge, vlan := r.string(), r.int16()
		in.wanted = append(in.wanted, Requirement{Label: VLANLabel(bridge, vlan), Kind: NeedVLAN, Name: bridge, VLAN: vlan})
	}
	for range r.count(mostItems) {
		offer := HostNetworkOffer{Name: r.string(), Type: fuzzTypes[r.count(len(fuzzTypes)-1)], Managed: r.bool()}
		for range r.count(mostPorts) {
			offer.Policies = append(offer.Policies, r.string())
		}
		offer.Bridge = r.string()
		for range r.count(mostPorts) {
			offer.Uplinks = append(offer.Uplinks, r.string())
		}
		in.offers = append(in.offers, offer)
	}
	return uniqueNames(in)
}

// uniqueNames drops the later of two list entries with one name.
func uniqueNames(in labelInput) labelInput {
	c := &in.capability
	c.Bridges = firstOfEach(c.Bridges, func(b vmv1alpha1.BridgeStatus) string { return b.Name })
	for i := range c.Bridges {
		c.Bridges[i].Ports = firstOfEach(c.Bridges[i].Ports, func(p vmv1alpha1.BridgePort) string { return p.Name })
	}
	c.VLANs = firstOfEach(c.VLANs, func(v vmv1alpha1.VLANInterface) string { return v.Name })
	c.Bonds = firstOfEach(c.Bonds, func(b vmv1alpha1.BondStatus) string { return b.Name })
	c.OVSBridges = firstOfEach(c.OVSBridges, func(b vmv1alpha1.OVSBridgeStatus) string { return b.Name })
	c.Uplinks = firstOfEach(c.Uplinks, func(u vmv1alpha1.UplinkStatus) string { return u.Name })
	c.SRIOV = firstOfEach(c.SRIOV, func(pf vmv1alpha1.SRIOVPF) string { return pf.Name })
	c.Policies = firstOfEach(c.Policies, func(p vmv1alpha1.PolicyVerification) string { return p.Name })
	c.Conditions = firstOfEach(c.Conditions, func(c metav1.Condition) string { return c.Type })
	in.offers = firstOfEach(in.offers, func(o HostNetworkOffer) string { return o.Name })
	return in
}

func firstOfEach[T any](items []T, key func(T) string) []T {
	seen := map[string]bool{}
	return slices.DeleteFunc(slices.Clone(items), func(item T) bool {
		k := key(item)
		defer func() { seen[k] = true }()
		return seen[k]
	})
}

// encodeLabelInput writes the input decodeLabelInput reads back as in.
func encodeLabelInput(t testing.TB, in labelInput) []byte {
	t.Helper()
	var w fuzzWriter
	c := &in.capability
	switch {
	case c.KVM == nil:
		w.count(0)
	case c.KVM.Available:
		w.count(1)
	default:
		w.count(2)
		w.string(c.KVM.Reason)
	}
	counted := func(n, most int) {
		if n > most {
			t.Fatalf("a seed has %d items of a list; the fuzz input holds %d at most", n, most)
		}
		w.count(n)
	}
	counted(len(c.Bridges), mostItems)
	for _, b := range c.Bridges {
		w.string(b.Name)
		w.bool(b.Up)
		w.bool(b.VLANFiltering)
		counted(len(b.Ports), mostPorts)
		for _, p := range b.Ports {
			w.string(p.Name)
			w.bool(p.Up)
			w.string(p.VLANs)
		}
	}
	counted(len(c.VLANs), mostItems)
	for _, v := range c.VLANs {
		w.string(v.Name)
		w.int16(v.ID)
		w.string(v.Parent)
		w.bool(v.Up)
	}
	counted(len(c.Bonds), mostItems)
	for _, b := range c.Bonds {
		w.string(b.Name)
		w.bool(b.Up)
	}
	counted(len(c.OVSBridges), mostItems)
	for _, b := range c.OVSBridges {
		w.string(b.Name)
		w.bool(b.Up)
	}
	counted(len(c.Uplinks), mostItems)
	for _, u := range c.Uplinks {
		w.string(u.Name)
		w.bool(u.Up)
		w.bool(u.Carrier)
	}
	counted(len(c.SRIOV), mostItems)
	for _, pf := range c.SRIOV {
		w.string(pf.Name)
		w.string(pf.PCIAddress)
		w.int16(pf.TotalVFs)
		w.int16(pf.NumVFs)
		w.int16(pf.VFsInUse)
		w.bool(pf.LinkUp)
	}
	counted(len(c.Policies), mostItems)
	for _, p := range c.Policies {
		w.string(p.Name)
		w.bool(p.Verified)
		w.string(p.Message)
	}
	counted(len(c.Conditions), mostItems)
	for _, cond := range c.Conditions {
		w.string(cond.Type)
		w.count(slices.Index([]metav1.ConditionStatus{metav1.ConditionTrue, metav1.ConditionFalse, metav1.ConditionUnknown}, cond.Status))
		w.string(cond.Reason)
		w.string(cond.Message)
	}
	counted(len(in.wanted), mostItems)
	for _, need := range in.wanted {
		w.string(need.Name)
		w.int16(need.VLAN)
	}
	counted(len(in.offers), mostItems)
	for _, offer := range in.offers {
		w.string(offer.Name)
		w.count(slices.Index(fuzzTypes, offer.Type))
		w.bool(offer.Managed)
		counted(len(offer.Policies), mostPorts)
		for _, p := range offer.Policies {
			w.string(p)
		}
		w.string(offer.Bridge)
		counted(len(offer.Uplinks), mostPorts)
		for _, u := range offer.Uplinks {
			w.string(u)
		}
	}
	return w
}

// labelSeeds are the tests' own nodes, wanted VLANs and host networks.
func labelSeeds() []labelInput {
	vlans := func(bridge string, ids ...int32) []Requirement {
		var out []Requirement
		for _, id := range ids {
			out = append(out, Requirement{Label: VLANLabel(bridge, id), Kind: NeedVLAN, Name: bridge, VLAN: id})
		}
		return out
	}
	edge, bad := managedBridge("edge", "br-edge", nil), managedBridge("bad", "br-bad", nil)
	failedLinks := func(c *vmv1alpha1.NodeCapabilityStatus) {
		c.Conditions = append(c.Conditions, metav1.Condition{Type: vmv1alpha1.ConditionLinksProbed, Status: metav1.ConditionFalse,
			Reason: vmv1alpha1.ReasonProbeFailed, Message: "listing links"})
	}
	seeds := []labelInput{
		{}, // nothing reported at all
		{ // TestNodeLabelsFollowTheSameRules
			capability: *capability(withBridge("br-mgmt", true, "eth1", "100"), withBridge("br-down", false, "eth2", ""), withPF("ens1f0", 4, 4),
				withBridge("br-edge", true, "bond0", "300"), withPolicy("vmop-edge", true, ""), withPolicy("vmop-bad", false, "missing")),
			wanted: vlans("br-mgmt", 100, 200),
			offers: []HostNetworkOffer{OfferOf(&edge), OfferOf(&bad)},
		},
		{ // TestFailedProbeExcludesWhatDependsOnIt
			capability: *capability(withBridge("br-mgmt", true, "eth1", "100"), withPF("ens1f0", 4, 0), failedLinks),
			wanted:     vlans("br-mgmt", 100),
		},
		{capability: *capability(withoutKVM("/dev/kvm: no such file"))},
	}
	// TestEvaluateExplainsEveryExcludedNode's and the benchmark's nodes.
	for _, node := range benchNodes(10) {
		seeds = append(seeds, labelInput{capability: *node.Capability, wanted: vlans("br-mgmt", 1, 100, 105, 200), offers: []HostNetworkOffer{OfferOf(&edge)}})
	}
	return seeds
}

// FuzzNodeLabels: for any capability an agent can report, any VLANs
// profiles want and any declared host networks, the projected labels are
// valid label keys and values under the controller's prefix, name only
// what the capability shows, a profile wants or an admin declared, do not
// depend on order or repetition, and agree with Evaluate: a node carries a
// requirement's label exactly when the eligibility chain finds it offers
// that requirement. A bridge, OVS bridge or link is labelled only when a
// profile asks for it. make test fuzzes it briefly; make fuzz for FUZZTIME.
func FuzzNodeLabels(f *testing.F) {
	for _, seed := range labelSeeds() {
		raw := encodeLabelInput(f, seed)
		if got := decodeLabelInput(raw); !reflect.DeepEqual(got, uniqueNames(seed)) {
			f.Fatalf("a seed does not survive encoding:\n%+v\n%+v", seed, got)
		}
		f.Add(raw)
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		in := decodeLabelInput(raw)
		candidates := labelCandidates(&in)
		// Bridges, OVS bridges and links are labelled only when a profile
		// asks: ask for every one reported, besides the wanted VLANs.
		asked := slices.Clone(in.wanted)
		for _, need := range candidates {
			if projectedOnDemand(need.Kind) && need.Kind != NeedVLAN {
				asked = append(asked, need)
			}
		}
		slices.SortFunc(asked, func(a, b Requirement) int { return strings.Compare(a.Label, b.Label) })
		before := in.capability.DeepCopy()
		labels := NodeLabels(&in.capability, asked, in.offers)
		if !apiequality.Semantic.DeepEqual(before, &in.capability) {
			t.Fatal("NodeLabels changed the capability it read")
		}
		again := NodeLabels(before, reversed(append(asked, asked...)), reversed(in.offers))
		if !maps.Equal(labels, again) {
			t.Errorf("the same input, reordered, projected differently:\n%v\n%v", labels, again)
		}
		for key, value := range labels {
			checkLabel(t, key, value, candidates)
		}
		for _, need := range candidates {
			checkAgreesWithEvaluate(t, &in.capability, need, labels)
		}
		for key := range NodeLabels(&in.capability, in.wanted, in.offers) {
			wanted := slices.ContainsFunc(in.wanted, func(w Requirement) bool { return w.Label == key })
			if need := candidates[key]; projectedOnDemand(need.Kind) && !wanted {
				t.Errorf("label %s projected though no profile asked for it", key)
			}
		}
	})
}

func reversed[T any](items []T) []T {
	out := slices.Clone(items)
	slices.Reverse(out)
	return out
}

// labelCandidates is, from the input alone, every requirement a label may
// stand for: KVM, SR-IOV, each reported bridge, OVS bridge and link, each
// wanted VLAN (never the rest of a trunk) and each declared host network.
func labelCandidates(in *labelInput) map[string]Requirement {
	c := &in.capability
	out := map[string]Requirement{
		vmv1alpha1.LabelKVM:   {Label: vmv1alpha1.LabelKVM, Kind: NeedKVM},
		vmv1alpha1.LabelSRIOV: {Label: vmv1alpha1.LabelSRIOV, Kind: NeedSRIOV},
	}
	add := func(need Requirement) { out[need.Label] = need }
	for _, b := range c.Bridges {
		add(Requirement{Label: BridgeLabel(b.Name), Kind: NeedBridge, Name: b.Name})
	}
	for _, b := range c.OVSBridges {
		add(Requirement{Label: OVSLabel(b.Name), Kind: NeedOVS, Name: b.Name})
	}
	var links []string
	for _, u := range c.Uplinks {
		links = append(links, u.Name)
	}
	for _, v := range c.VLANs {
		links = append(links, v.Name)
	}
	for _, b := range c.Bonds {
		links = append(links, b.Name)
	}
	for _, name := range links {
		add(Requirement{Label: LinkLabel(name), Kind: NeedLink, Name: name})
	}
	for _, need := range in.wanted {
		add(need)
	}
	for i := range in.offers {
		offer := &in.offers[i]
		add(Requirement{Label: HostNetworkLabel(offer.Name), Kind: NeedHostNetwork, Name: offer.Name, HostNetwork: offer})
	}
	return out
}

func checkLabel(t *testing.T, key, value string, candidates map[string]Requirement) {
	t.Helper()
	if errs := validation.IsQualifiedName(key); len(errs) > 0 {
		t.Errorf("label key %q is not a valid label key: %v", key, errs)
	}
	if errs := validation.IsValidLabelValue(value); len(errs) > 0 || value != "true" {
		t.Errorf("label %s=%q: want \"true\" (%v)", key, value, errs)
	}
	if !Owned(key) || key == vmv1alpha1.LabelReporting {
		t.Errorf("label %s is not one the projection owns", key)
	}
	if _, ok := candidates[key]; !ok {
		t.Errorf("label %s names nothing the capability shows, a profile wants or an admin declared", key)
	}
}

// checkAgreesWithEvaluate: the node is labelled for a requirement exactly
// when the eligibility chain lets it host a VM needing only that; so the
// scheduler (which reads labels) and the profile's status (which reads
// Evaluate) agree on every node.
func checkAgreesWithEvaluate(t *testing.T, c *vmv1alpha1.NodeCapabilityStatus, need Requirement, labels map[string]string) {
	t.Helper()
	profile := &vmv1alpha1.VirtualMachineProfile{}
	result := Evaluate(profile, []Requirement{need}, []Node{{Name: "node", Capability: c}}, Options{})
	_, labelled := labels[need.Label]
	eligible := len(result.Eligible) == 1
	if labelled == eligible {
		return
	}
	why := "eligible"
	if len(result.Status.Excluded) > 0 {
		why = fmt.Sprintf("excluded: %q", result.Status.Excluded[0].Reason)
	}
	t.Errorf("requirement %s (%+v): labelled %v but Evaluate says %s", need.Label, need, labelled, why)
}
