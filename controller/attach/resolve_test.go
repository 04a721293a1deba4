package attach

import (
	"fmt"
	"strings"
	"testing"
	"time"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
	"github.com/jianfenliu/vmoperator/controller/desired"
)

var epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// hn builds a HostNetwork created age seconds after the epoch.
func hn(name string, age int, spec vmv1alpha1.HostNetworkSpec) vmv1alpha1.HostNetwork {
	return vmv1alpha1.HostNetwork{ObjectMeta: metav1.ObjectMeta{Name: name, CreationTimestamp: metav1.NewTime(epoch.Add(time.Duration(age) * time.Second))}, Spec: spec}
}

func declaredNetworks() []vmv1alpha1.HostNetwork {
	tenants := metav1.LabelSelector{MatchLabels: map[string]string{"tenant": "tenant-a"}}
	return []vmv1alpha1.HostNetwork{
		hn("mgmt", 1, vmv1alpha1.HostNetworkSpec{Type: "bridge", BridgeName: "br-mgmt", Managed: true, Uplinks: []vmv1alpha1.Uplink{{Interface: "eth1"}},
			AllowedVLANs: []vmv1alpha1.VLANRange{"1", "100", "200-210"}, Untagged: vmv1alpha1.UntaggedAllowed, MTU: ptr.To[int32](9000), NodeSelector: map[string]string{"net/mgmt": "true"}}),
		hn("mgmt-dup", 2, vmv1alpha1.HostNetworkSpec{Type: "bridge", BridgeName: "br-mgmt"}),
		hn("storage", 3, vmv1alpha1.HostNetworkSpec{Type: "macvlan", Managed: true, Default: true, Uplinks: []vmv1alpha1.Uplink{{Interface: "eth2"}},
			AllowedVLANs: []vmv1alpha1.VLANRange{"310"}, NamespaceSelector: tenants}),
		hn("legacy-storage", 4, vmv1alpha1.HostNetworkSpec{Type: "macvlan", Uplinks: []vmv1alpha1.Uplink{{Interface: "eth3"}}, AllowedVLANs: []vmv1alpha1.VLANRange{"400"}}),
		hn("fast", 5, vmv1alpha1.HostNetworkSpec{Type: "sriov", Default: true, Uplinks: []vmv1alpha1.Uplink{{Interface: "ens1f0"}},
			SRIOV: &vmv1alpha1.HostSRIOV{ResourceName: "intel.com/sriov_a"}, AllowedVLANs: []vmv1alpha1.VLANRange{"200"}}),
		hn("fast-b", 6, vmv1alpha1.HostNetworkSpec{Type: "sriov", Uplinks: []vmv1alpha1.Uplink{{Interface: "ens2f0"}},
			SRIOV: &vmv1alpha1.HostSRIOV{ResourceName: "mellanox.com/cx6"}, AllowedVLANs: []vmv1alpha1.VLANRange{"200"}}),
	}
}

func profileWith(namespace string, networks ...vmv1alpha1.NetworkConfig) *vmv1alpha1.VirtualMachineProfile {
	return &vmv1alpha1.VirtualMachineProfile{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: namespace},
		Spec: vmv1alpha1.VirtualMachineProfileSpec{CPU: 1, Memory: "1Gi", Networks: networks}}
}

func TestResolveDeclaredNetworks(t *testing.T) {
	in := Inputs{HostNetworks: declaredNetworks(), NamespaceLabels: map[string]string{"tenant": "tenant-a"}}
	cases := []struct {
		name    string
		network vmv1alpha1.NetworkConfig
		check   func(t *testing.T, a desired.Attachment)
	}{
		{"the seed's bridge network finds br-mgmt by its default bridge name; the older declaration wins",
			vmv1alpha1.NetworkConfig{Name: "mgmt", Type: "bridge", VLANID: ptr.To[int32](100)},
			func(t *testing.T, a desired.Attachment) {
				if a.HostNetworkName() != "mgmt" || a.Bridge != "br-mgmt" || a.VLAN != 100 || a.Segment != "hostnetwork/mgmt/100" {
					t.Fatalf("%+v", a)
				}
			}},
		{"an ovs network without bridgeName resolves like a bridge one (and finds none of type ovs)",
			vmv1alpha1.NetworkConfig{Name: "mgmt", Type: "ovs"}, nil},
		{"macvlan takes the default macvlan network and its VLAN sub-interface",
			vmv1alpha1.NetworkConfig{Name: "stor", Type: "macvlan", VLANID: ptr.To[int32](310)},
			func(t *testing.T, a desired.Attachment) {
				if a.HostNetworkName() != "storage" || a.Master != "storage.310" {
					t.Fatalf("%+v", a)
				}
			}},
		{"an unmanaged macvlan network names the admin's sub-interface after the uplink",
			vmv1alpha1.NetworkConfig{Name: "old", Type: "macvlan", HostNetwork: "legacy-storage", VLANID: ptr.To[int32](400)},
			func(t *testing.T, a desired.Attachment) {
				if a.Master != "eth3.400" {
					t.Fatalf("%+v", a)
				}
			}},
		{"sriov takes the default, or the network with its resource",
			vmv1alpha1.NetworkConfig{Name: "biz", Type: "sriov", VLANID: ptr.To[int32](200), SRIOV: &vmv1alpha1.SRIOVConfig{ResourceName: "mellanox.com/cx6"}},
			func(t *testing.T, a desired.Attachment) {
				if a.HostNetworkName() != "fast-b" || a.ResourceName != "mellanox.com/cx6" {
					t.Fatalf("%+v", a)
				}
			}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			attachments, refusal := Resolve(profileWith("tenant-a", c.network), in)
			if c.check == nil {
				if refusal == nil || refusal.Reason != vmv1alpha1.ReasonHostNetworkNotDeclared {
					t.Fatalf("want HostNetworkNotDeclared, got %+v %+v", refusal, attachments)
				}
				return
			}
			if refusal != nil {
				t.Fatalf("refused: %+v", refusal)
			}
			c.check(t, attachments[0])
		})
	}
}

func TestResolveRefusals(t *testing.T) {
	cases := []struct {
		name      string
		namespace string
		network   vmv1alpha1.NetworkConfig
		policy    Policy
		// undeclared: no HostNetwork exists at all.
		undeclared bool
		reason     string
		message    string
	}{
		{"a bridge nobody declared", "tenant-a", vmv1alpha1.NetworkConfig{Name: "ex", Type: "bridge", BridgeName: "br-ex"}, Policy{},
			false, vmv1alpha1.ReasonHostNetworkNotDeclared, "network ex: no HostNetwork of type bridge declares bridge br-ex"},
		{"cni0 is not a host network a tenant may use", "tenant-a", vmv1alpha1.NetworkConfig{Name: "pods", Type: "bridge", BridgeName: "cni0"}, Policy{},
			false, vmv1alpha1.ReasonHostNetworkNotDeclared, "declares bridge cni0"},
		{"a VLAN outside the allowed ranges", "tenant-a", vmv1alpha1.NetworkConfig{Name: "mgmt", Type: "bridge", VLANID: ptr.To[int32](300)}, Policy{},
			false, vmv1alpha1.ReasonVLANNotAllowed, "VLAN 300 is not allowed on HostNetwork mgmt (allowed: 1,100,200-210)"},
		{"an MTU above the network's", "tenant-a", vmv1alpha1.NetworkConfig{Name: "mgmt", Type: "bridge", MTU: ptr.To[int32](9216)}, Policy{},
			false, vmv1alpha1.ReasonMTUTooLarge, "mtu 9216 is above HostNetwork mgmt's 9000"},
		{"a namespace outside the selector", "other", vmv1alpha1.NetworkConfig{Name: "stor", Type: "macvlan", VLANID: ptr.To[int32](310)}, Policy{},
			false, vmv1alpha1.ReasonNamespaceNotAllowed, "HostNetwork storage does not allow namespace other"},
		{"a named HostNetwork that does not exist", "tenant-a", vmv1alpha1.NetworkConfig{Name: "x", Type: "bridge", HostNetwork: "nope"}, Policy{},
			false, vmv1alpha1.ReasonHostNetworkNotFound, "HostNetwork nope does not exist"},
		{"a named HostNetwork of another type", "tenant-a", vmv1alpha1.NetworkConfig{Name: "x", Type: "bridge", HostNetwork: "storage"}, Policy{},
			false, vmv1alpha1.ReasonHostNetworkMismatch, "HostNetwork storage is of type macvlan, not bridge"},
		{"macvlan with a VLAN but nothing saying which uplink carries it", "tenant-a", vmv1alpha1.NetworkConfig{Name: "v", Type: "macvlan", VLANID: ptr.To[int32](5)},
			Policy{AllowUndeclared: true}, true, vmv1alpha1.ReasonVLANNotAllowed, "needs a macvlan HostNetwork"},
		{"a nadName in a namespace that is not shared", "tenant-a", vmv1alpha1.NetworkConfig{Name: "n", Type: "bridge", NADName: "infra/corp"}, Policy{},
			false, vmv1alpha1.ReasonNADNamespaceNotShared, "nadName infra/corp is in namespace infra"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			in := Inputs{HostNetworks: declaredNetworks(), NamespaceLabels: map[string]string{"tenant": c.namespace}, Policy: c.policy}
			if c.undeclared {
				in.HostNetworks = nil
			}
			_, refusal := Resolve(profileWith(c.namespace, c.network), in)
			if refusal == nil || refusal.Reason != c.reason || !strings.Contains(refusal.Message, c.message) {
				t.Fatalf("got %+v, want %s containing %q", refusal, c.reason, c.message)
			}
		})
	}
}

func TestUndeclaredNetworksOnlyWhenAllowed(t *testing.T) {
	p := profileWith("ns", vmv1alpha1.NetworkConfig{Name: "lan", Type: "bridge"})
	if _, refusal := Resolve(p, Inputs{}); refusal == nil {
		t.Fatal("an undeclared bridge must be refused by default")
	}
	attachments, refusal := Resolve(p, Inputs{Policy: Policy{AllowUndeclared: true}})
	if refusal != nil || attachments[0].Bridge != "br-lan" || attachments[0].Declared != nil || attachments[0].Segment != "bridge/br-lan/0" {
		t.Fatalf("%+v %+v", refusal, attachments)
	}
}

// TestSegmentIsTheL2Domain: a named attachment on br-mgmt VLAN 100 and a
// generated one on the HostNetwork declaring br-mgmt VLAN 100 are one segment.
func TestSegmentIsTheL2Domain(t *testing.T) {
	nad := &nadv1.NetworkAttachmentDefinition{ObjectMeta: metav1.ObjectMeta{Name: "mgmt-net", Namespace: "tenant-a"},
		Spec: nadv1.NetworkAttachmentDefinitionSpec{Config: `{"cniVersion":"0.3.1","name":"mgmt-net","type":"bridge","bridge":"br-mgmt","vlan":100,"ipam":{}}`}}
	in := Inputs{HostNetworks: declaredNetworks(), NamespaceLabels: map[string]string{"tenant": "tenant-a"},
		NADs: map[types.NamespacedName]*nadv1.NetworkAttachmentDefinition{{Namespace: "tenant-a", Name: "mgmt-net"}: nad}}
	named, refusal := Resolve(profileWith("tenant-a", vmv1alpha1.NetworkConfig{Name: "mgmt", Type: "bridge", NADName: "mgmt-net"}), in)
	if refusal != nil {
		t.Fatal(refusal)
	}
	generated, refusal := Resolve(profileWith("tenant-a", vmv1alpha1.NetworkConfig{Name: "lan", Type: "bridge", BridgeName: "br-mgmt", VLANID: ptr.To[int32](100)}), in)
	if refusal != nil {
		t.Fatal(refusal)
	}
	if named[0].Segment != generated[0].Segment || named[0].HostNetworkName() != "mgmt" {
		t.Fatalf("named %q generated %q", named[0].Segment, generated[0].Segment)
	}
	conflist := nad.DeepCopy()
	conflist.Spec.Config = `{"cniVersion":"0.4.0","name":"x","plugins":[{"type":"bridge","bridge":"br-mgmt","vlan":100},{"type":"tuning"}]}`
	in.NADs[types.NamespacedName{Namespace: "tenant-a", Name: "mgmt-net"}] = conflist
	fromList, _ := Resolve(profileWith("tenant-a", vmv1alpha1.NetworkConfig{Name: "mgmt", Type: "bridge", NADName: "mgmt-net"}), in)
	if fromList[0].Segment != generated[0].Segment {
		t.Fatalf("a conflist's first plugin decides: %q", fromList[0].Segment)
	}
}

// equivalent is one attachment asked for two ways: a generated network and
// a named NAD whose config reaches the same host network.
type equivalent struct {
	name      string
	namespace string
	generated vmv1alpha1.NetworkConfig
	// config and resource are the named NAD's CNI config and SR-IOV
	// resource annotation.
	config   string
	resource string
	// reason is the refusal both must give; "" when both are allowed.
	reason string
}

func equivalents() []equivalent {
	v := func(n int32) *int32 { return ptr.To(n) }
	return []equivalent{
		{"bridge, allowed VLAN and MTU", "tenant-a", vmv1alpha1.NetworkConfig{Type: "bridge", BridgeName: "br-mgmt", VLANID: v(100), MTU: v(9000)},
			`{"cniVersion":"0.3.1","type":"bridge","bridge":"br-mgmt","vlan":100,"mtu":9000}`, "", ""},
		{"bridge, untagged", "tenant-a", vmv1alpha1.NetworkConfig{Type: "bridge", BridgeName: "br-mgmt"},
			`{"type":"bridge","bridge":"br-mgmt"}`, "", ""},
		{"bridge, VLAN outside allowedVLANs", "tenant-a", vmv1alpha1.NetworkConfig{Type: "bridge", BridgeName: "br-mgmt", VLANID: v(300)},
			`{"type":"bridge","bridge":"br-mgmt","vlan":300}`, "", vmv1alpha1.ReasonVLANNotAllowed},
		{"bridge, MTU above the network's", "tenant-a", vmv1alpha1.NetworkConfig{Type: "bridge", BridgeName: "br-mgmt", MTU: v(9216)},
			`{"type":"bridge","bridge":"br-mgmt","mtu":9216}`, "", vmv1alpha1.ReasonMTUTooLarge},
		{"bridge nobody declared", "tenant-a", vmv1alpha1.NetworkConfig{Type: "bridge", BridgeName: "br-ex"},
			`{"type":"bridge","bridge":"br-ex"}`, "", vmv1alpha1.ReasonHostNetworkNotDeclared},
		{"the bridge plugin's default cni0 is undeclared", "tenant-a", vmv1alpha1.NetworkConfig{Type: "bridge", BridgeName: "cni0"},
			`{"type":"bridge"}`, "", vmv1alpha1.ReasonHostNetworkNotDeclared},
		{"macvlan on the managed VLAN sub-interface", "tenant-a", vmv1alpha1.NetworkConfig{Type: "macvlan", HostNetwork: "storage", VLANID: v(310)},
			`{"type":"macvlan","master":"storage.310"}`, "", ""},
		{"macvlan from a namespace outside the selector", "other", vmv1alpha1.NetworkConfig{Type: "macvlan", HostNetwork: "storage", VLANID: v(310)},
			`{"type":"macvlan","master":"storage.310"}`, "", vmv1alpha1.ReasonNamespaceNotAllowed},
		{"macvlan on the uplink's sub-interface, VLAN not allowed", "tenant-a", vmv1alpha1.NetworkConfig{Type: "macvlan", HostNetwork: "storage", VLANID: v(311)},
			`{"type":"macvlan","master":"eth2.311"}`, "", vmv1alpha1.ReasonVLANNotAllowed},
		{"macvlan on the unmanaged uplink's sub-interface", "tenant-a", vmv1alpha1.NetworkConfig{Type: "macvlan", HostNetwork: "legacy-storage", VLANID: v(400)},
			`{"type":"macvlan","master":"eth3.400","mtu":1500}`, "", ""},
		{"sriov, allowed VLAN", "tenant-a", vmv1alpha1.NetworkConfig{Type: "sriov", VLANID: v(200), SRIOV: &vmv1alpha1.SRIOVConfig{ResourceName: "mellanox.com/cx6"}},
			`{"type":"sriov","vlan":200}`, "mellanox.com/cx6", ""},
		{"sriov, VLAN not allowed", "tenant-a", vmv1alpha1.NetworkConfig{Type: "sriov", VLANID: v(201), SRIOV: &vmv1alpha1.SRIOVConfig{ResourceName: "mellanox.com/cx6"}},
			`{"type":"sriov","vlan":201}`, "mellanox.com/cx6", vmv1alpha1.ReasonVLANNotAllowed},
		{"macvlan untagged on the raw uplink of a network with allowedVLANs", "tenant-a", vmv1alpha1.NetworkConfig{Type: "macvlan", HostNetwork: "storage"},
			`{"type":"macvlan","master":"eth2"}`, "", vmv1alpha1.ReasonVLANNotAllowed},
		{"sriov untagged on a network with allowedVLANs", "tenant-a", vmv1alpha1.NetworkConfig{Type: "sriov", SRIOV: &vmv1alpha1.SRIOVConfig{ResourceName: "mellanox.com/cx6"}},
			`{"type":"sriov"}`, "mellanox.com/cx6", vmv1alpha1.ReasonVLANNotAllowed},
		{"sriov resource nobody declared", "tenant-a", vmv1alpha1.NetworkConfig{Type: "sriov", SRIOV: &vmv1alpha1.SRIOVConfig{ResourceName: "acme.com/vf"}},
			`{"type":"sriov"}`, "acme.com/vf", vmv1alpha1.ReasonHostNetworkNotDeclared},
	}
}

// withNAD is the inputs with one NAD tenant-a/n in place.
func withNAD(in Inputs, namespace, config, resource string) Inputs {
	nad := &nadv1.NetworkAttachmentDefinition{ObjectMeta: metav1.ObjectMeta{Name: "n", Namespace: namespace},
		Spec: nadv1.NetworkAttachmentDefinitionSpec{Config: config}}
	if resource != "" {
		nad.Annotations = map[string]string{vmv1alpha1.AnnotationResourceName: resource}
	}
	in.NADs = map[types.NamespacedName]*nadv1.NetworkAttachmentDefinition{{Namespace: namespace, Name: "n"}: nad}
	return in
}

// bothWays resolves one equivalent as a generated network and as a named
// one (second network of the profile, so the field index shows), and
// returns both refusals.
func bothWays(t *testing.T, c equivalent, in Inputs, status []vmv1alpha1.NetworkStatus) (generated, named *Refusal, namedAttachment desired.Attachment) {
	t.Helper()
	first := vmv1alpha1.NetworkConfig{Name: "pod", Type: "bridge", BridgeName: "br-mgmt"}
	g := c.generated
	g.Name = "net"
	p := profileWith(c.namespace, first, g)
	p.Status.Networks = status
	_, generated = Resolve(p, in)
	n := vmv1alpha1.NetworkConfig{Name: "net", Type: c.generated.Type, NADName: "n"}
	p = profileWith(c.namespace, first, n)
	p.Status.Networks = status
	attachments, named := Resolve(p, withNAD(in, c.namespace, c.config, c.resource))
	if named == nil {
		namedAttachment = attachments[1]
	}
	return generated, named, namedAttachment
}

// TestNamedNADsObeyTheSameRules: every case is resolved as a generated
// network and as a NAD reaching the same host network; both give the same
// verdict, and a named refusal names its profile field and its NAD.
func TestNamedNADsObeyTheSameRules(t *testing.T) {
	for _, c := range equivalents() {
		t.Run(c.name, func(t *testing.T) {
			in := Inputs{HostNetworks: declaredNetworks(), NamespaceLabels: map[string]string{"tenant": c.namespace}}
			generated, named, _ := bothWays(t, c, in, nil)
			if reasonOf(generated) != c.reason || reasonOf(named) != c.reason {
				t.Fatalf("want %q both ways; generated %+v, named %+v", c.reason, generated, named)
			}
			if named != nil && !strings.Contains(named.Message, "network net: spec.networks[1].nadName "+c.namespace+"/n: ") {
				t.Fatalf("a named refusal names the field and the NAD: %q", named.Message)
			}
		})
	}
}

func reasonOf(r *Refusal) string {
	if r == nil {
		return ""
	}
	return r.Reason
}

// TestNamedSegmentsMatchGenerated: an allowed named NAD is on the same
// segment, and counts as a user of the same HostNetwork, as its generated
// twin.
func TestNamedSegmentsMatchGenerated(t *testing.T) {
	for _, c := range equivalents() {
		if c.reason != "" {
			continue
		}
		t.Run(c.name, func(t *testing.T) {
			in := Inputs{HostNetworks: declaredNetworks(), NamespaceLabels: map[string]string{"tenant": c.namespace}}
			g := c.generated
			g.Name = "net"
			generated, refusal := Resolve(profileWith(c.namespace, g), in)
			if refusal != nil {
				t.Fatal(refusal)
			}
			_, _, named := bothWays(t, c, in, nil)
			if named.Segment != generated[0].Segment || named.HostNetworkName() != generated[0].HostNetworkName() || named.HostNetworkName() == "" {
				t.Fatalf("named %q on %q, generated %q on %q", named.Segment, named.HostNetworkName(), generated[0].Segment, generated[0].HostNetworkName())
			}
		})
	}
}

// TestNamedNADsUndeclaredOnlyWhenAllowed: with undeclared networks allowed
// (single tenant), a NAD reaching an undeclared host network passes as a
// generated one does.
func TestNamedNADsUndeclaredOnlyWhenAllowed(t *testing.T) {
	for _, c := range equivalents() {
		if c.reason != vmv1alpha1.ReasonHostNetworkNotDeclared {
			continue
		}
		t.Run(c.name, func(t *testing.T) {
			in := Inputs{HostNetworks: declaredNetworks(), NamespaceLabels: map[string]string{"tenant": c.namespace}, Policy: Policy{AllowUndeclared: true}}
			generated, named, _ := bothWays(t, c, in, nil)
			if generated != nil || named != nil {
				t.Fatalf("generated %+v, named %+v", generated, named)
			}
		})
	}
}

// TestNamedNADConfigsTheParserJudges: plugin lists are examined plugin by
// plugin; plugins that reach no host network pass; one naming a host
// interface the parser cannot judge is refused.
func TestNamedNADConfigsTheParserJudges(t *testing.T) {
	cases := []struct {
		name, config, reason, message string
	}{
		{"a conflist whose bridge comes after tuning is judged by the bridge",
			`{"cniVersion":"0.4.0","plugins":[{"type":"tuning"},{"type":"bridge","bridge":"br-mgmt","vlan":300}]}`, vmv1alpha1.ReasonVLANNotAllowed, "VLAN 300"},
		{"an MTU set by tuning in a conflist is checked",
			`{"cniVersion":"0.4.0","plugins":[{"type":"bridge","bridge":"br-mgmt","vlan":100},{"type":"tuning","mtu":9216}]}`, vmv1alpha1.ReasonMTUTooLarge, "mtu 9216 is above HostNetwork mgmt's 9000"},
		{"every plugin of a conflist is examined",
			`{"cniVersion":"0.4.0","plugins":[{"type":"bridge","bridge":"br-mgmt","vlan":100},{"type":"macvlan","master":"eth9"}]}`, vmv1alpha1.ReasonHostNetworkNotDeclared, "no HostNetwork declares interface eth9"},
		{"an overlay that names no host interface reaches no host network",
			`{"cniVersion":"0.4.0","type":"ovn-k8s-cni-overlay","topology":"layer2"}`, "", ""},
		{"an unknown plugin naming a host interface cannot be judged",
			`{"type":"vendor-cni","master":"eth1"}`, vmv1alpha1.ReasonHostNetworkNotDeclared, `plugin type "vendor-cni" names a host interface`},
		{"macvlan without master lands on the default route's interface",
			`{"type":"macvlan"}`, vmv1alpha1.ReasonHostNetworkNotDeclared, "default route"},
		{"host-device on a declared uplink obeys its HostNetwork",
			`{"type":"host-device","device":"eth2"}`, vmv1alpha1.ReasonNamespaceNotAllowed, "HostNetwork storage does not allow namespace other"},
		{"a bridge trunking VLANs to the VM puts it on more than its VLAN",
			`{"type":"bridge","bridge":"br-mgmt","vlan":100,"vlanTrunk":[{"minID":200,"maxID":210}]}`, vmv1alpha1.ReasonVLANNotAllowed, "vlanTrunk is not allowed on HostNetwork mgmt"},
		{"a tagged bridge port keeping VLAN 1 puts the VM on VLAN 1 too",
			`{"type":"bridge","bridge":"br-mgmt","vlan":100,"preserveDefaultVlan":true}`, vmv1alpha1.ReasonVLANNotAllowed, "preserveDefaultVlan is not allowed on HostNetwork mgmt"},
		{"the operator's own tagged bridge config passes",
			`{"type":"bridge","bridge":"br-mgmt","vlan":100,"preserveDefaultVlan":false,"macspoofchk":true,"vlanTrunk":null}`, "", ""},
		{"a config that is not JSON cannot be judged",
			`{"type":`, vmv1alpha1.ReasonHostNetworkNotDeclared, "not a CNI config"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			in := withNAD(Inputs{HostNetworks: declaredNetworks(), NamespaceLabels: map[string]string{"tenant": "other"}}, "other", c.config, "")
			_, refusal := Resolve(profileWith("other", vmv1alpha1.NetworkConfig{Name: "net", Type: "bridge", NADName: "n"}), in)
			if reasonOf(refusal) != c.reason || (refusal != nil && !strings.Contains(refusal.Message, c.message)) {
				t.Fatalf("want %q containing %q, got %+v", c.reason, c.message, refusal)
			}
		})
	}
}

// TestClosedHostNetworksTakeNoNewUsers: a HostNetwork being deleted, in
// conflict or impossible to build refuses a new user, generated or named,
// but keeps a profile whose status shows it attached; one still being
// verified stays open (placement holds its VMs).
func TestClosedHostNetworksTakeNoNewUsers(t *testing.T) {
	now := metav1.NewTime(epoch)
	notReady := func(reason string, verified int32) func(h *vmv1alpha1.HostNetwork) {
		return func(h *vmv1alpha1.HostNetwork) {
			h.Status.VerifiedNodes = verified
			h.Status.Conditions = []metav1.Condition{{Type: vmv1alpha1.ConditionReady, Status: metav1.ConditionFalse, Reason: reason, Message: "m"}}
		}
	}
	states := []struct {
		name   string
		mutate func(h *vmv1alpha1.HostNetwork)
		closed bool
	}{
		{"being deleted", func(h *vmv1alpha1.HostNetwork) { h.DeletionTimestamp = &now; h.Finalizers = []string{"f"} }, true},
		{"in conflict over an uplink", notReady(vmv1alpha1.ReasonUplinkConflict, 2), true},
		{"in conflict over a bridge", notReady(vmv1alpha1.ReasonBridgeConflict, 0), true},
		{"with overlapping uplink groups", notReady(vmv1alpha1.ReasonUplinkGroupsOverlap, 0), true},
		{"managed without nmstate", notReady(vmv1alpha1.ReasonNMStateMissing, 0), true},
		{"verified on no node yet", notReady(vmv1alpha1.ReasonNodesNotVerified, 0), false},
		{"selecting no node", notReady(vmv1alpha1.ReasonNoNodesSelected, 0), false},
		{"verified on some nodes", notReady(vmv1alpha1.ReasonNodesNotVerified, 1), false},
		{"Ready", func(h *vmv1alpha1.HostNetwork) {
			h.Status.Conditions = []metav1.Condition{{Type: vmv1alpha1.ConditionReady, Status: metav1.ConditionTrue, Reason: vmv1alpha1.ReasonAllNodesVerified}}
		}, false},
	}
	for _, c := range equivalents() {
		if c.reason != "" {
			continue
		}
		for _, s := range states {
			t.Run(c.name+"/"+s.name, func(t *testing.T) {
				in := Inputs{HostNetworks: declaredNetworks(), NamespaceLabels: map[string]string{"tenant": c.namespace}}
				g := c.generated
				g.Name = "net"
				attachments, refusal := Resolve(profileWith(c.namespace, g), in)
				if refusal != nil {
					t.Fatal(refusal)
				}
				target := attachments[0].HostNetworkName()
				for i := range in.HostNetworks {
					if in.HostNetworks[i].Name == target {
						s.mutate(&in.HostNetworks[i])
					}
				}
				want := ""
				if s.closed {
					want = vmv1alpha1.ReasonHostNetworkNotAccepting
				}
				// The profile's first network (pod, on mgmt) is attached already.
				pod := vmv1alpha1.NetworkStatus{Name: "pod", HostNetwork: "mgmt"}
				generated, named, _ := bothWays(t, c, in, []vmv1alpha1.NetworkStatus{pod})
				if reasonOf(generated) != want || reasonOf(named) != want {
					t.Fatalf("new user: want %q; generated %+v, named %+v", want, generated, named)
				}
				deleting := s.name == "being deleted"
				says := "HostNetwork " + target + " accepts no new users"
				if deleting {
					says = "HostNetwork " + target + " is being deleted and accepts no users"
				}
				// A deletion takes off every network on it (the profile's pod network too, when on mgmt).
				if generated != nil && ((generated.Network != "net" && !deleting) || !strings.Contains(generated.Message, says)) {
					t.Fatalf("the message says which HostNetwork and why: %q", generated.Message)
				}
				// Only the deletion revokes; a HostNetwork's health may pass.
				if generated != nil && (generated.Revokes != deleting || named.Revokes != deleting) {
					t.Fatalf("revokes: generated %+v, named %+v", generated, named)
				}
				existing := []vmv1alpha1.NetworkStatus{pod, {Name: "net", HostNetwork: target}}
				generated, named, _ = bothWays(t, c, in, existing)
				if deleting {
					if !generated.Revokes || !named.Revokes || !strings.Contains(generated.Restore, "HostNetwork "+target+" is declared again") {
						t.Fatalf("a deletion takes an existing user off: generated %+v, named %+v", generated, named)
					}
					return
				}
				if generated != nil || named != nil {
					t.Fatalf("an existing user is not cut: generated %+v, named %+v", generated, named)
				}
			})
		}
	}
}

// TestUnjudgedNADsOnlyWhenUndeclaredAllowed: what the parser cannot judge
// passes only when the operator allows undeclared networks (single tenant).
func TestUnjudgedNADsOnlyWhenUndeclaredAllowed(t *testing.T) {
	for config, segment := range map[string]string{`{"type":"vendor-cni","master":"eth1"}`: "nad/ns/n", `not json`: "nad/ns/n",
		`{"type":"macvlan"}`: "macvlan/default-route/0"} {
		in := withNAD(Inputs{HostNetworks: declaredNetworks(), Policy: Policy{AllowUndeclared: true}}, "ns", config, "")
		attachments, refusal := Resolve(profileWith("ns", vmv1alpha1.NetworkConfig{Name: "net", Type: "bridge", NADName: "n"}), in)
		if refusal != nil || attachments[0].Declared != nil || attachments[0].Segment != segment {
			t.Errorf("%s: %+v %+v", config, refusal, attachments)
		}
	}
}

// TestUntaggedOnlyWhereAllowed: with allowedVLANs set, an untagged
// attachment (generated or named) is refused, naming the field that would
// allow it, unless the HostNetwork says untagged: Allowed; without
// allowedVLANs untagged use is the only use and stays allowed.
func TestUntaggedOnlyWhereAllowed(t *testing.T) {
	bridge := func(vlans []vmv1alpha1.VLANRange, untagged vmv1alpha1.UntaggedPolicy) []vmv1alpha1.HostNetwork {
		return []vmv1alpha1.HostNetwork{hn("lan", 1, vmv1alpha1.HostNetworkSpec{Type: "bridge", BridgeName: "br-lan", AllowedVLANs: vlans, Untagged: untagged})}
	}
	cases := []struct {
		name         string
		hostNetworks []vmv1alpha1.HostNetwork
		vlan         *int32
		reason       string
	}{
		{"untagged, allowedVLANs set, untagged unset", bridge([]vmv1alpha1.VLANRange{"100"}, ""), nil, vmv1alpha1.ReasonVLANNotAllowed},
		{"untagged, allowedVLANs set, untagged Refused", bridge([]vmv1alpha1.VLANRange{"100"}, vmv1alpha1.UntaggedRefused), nil, vmv1alpha1.ReasonVLANNotAllowed},
		{"untagged, allowedVLANs set, untagged Allowed", bridge([]vmv1alpha1.VLANRange{"100"}, vmv1alpha1.UntaggedAllowed), nil, ""},
		{"tagged on an allowed VLAN, untagged Refused", bridge([]vmv1alpha1.VLANRange{"100"}, vmv1alpha1.UntaggedRefused), ptr.To[int32](100), ""},
		{"untagged, no allowedVLANs (unchanged)", bridge(nil, ""), nil, ""},
		{"tagged, no allowedVLANs (unchanged)", bridge(nil, ""), ptr.To[int32](100), vmv1alpha1.ReasonVLANNotAllowed},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			in := Inputs{HostNetworks: c.hostNetworks}
			_, generated := Resolve(profileWith("ns", vmv1alpha1.NetworkConfig{Name: "lan", Type: "bridge", VLANID: c.vlan}), in)
			config := `{"type":"bridge","bridge":"br-lan"}`
			if c.vlan != nil {
				config = fmt.Sprintf(`{"type":"bridge","bridge":"br-lan","vlan":%d}`, *c.vlan)
			}
			_, named := Resolve(profileWith("ns", vmv1alpha1.NetworkConfig{Name: "lan", Type: "bridge", NADName: "n"}), withNAD(in, "ns", config, ""))
			if reasonOf(generated) != c.reason || reasonOf(named) != c.reason {
				t.Fatalf("want %q; generated %+v, named %+v", c.reason, generated, named)
			}
			if c.reason != "" && c.vlan == nil {
				for _, r := range []*Refusal{generated, named} {
					if !strings.Contains(r.Message, "untagged use is not allowed on HostNetwork lan") || !strings.Contains(r.Message, "spec.untagged to Allowed") {
						t.Fatalf("the message names the network and the field that allows it: %q", r.Message)
					}
				}
			}
		})
	}
}
