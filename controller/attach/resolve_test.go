package attach

import (
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
			AllowedVLANs: []vmv1alpha1.VLANRange{"1", "100", "200-210"}, MTU: ptr.To[int32](9000), NodeSelector: map[string]string{"net/mgmt": "true"}}),
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
