package identity

import (
	"slices"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
	"github.com/jianfenliu/vmoperator/controller/desired"
)

// holderProfile is a profile created age seconds after an epoch with one
// network "lan" on 10.0.0.<host>/24 and MAC 02:00:00:00:00:<host>; running
// gives it the status of a VM that runs with both.
func holderProfile(namespace, name string, age int, host string, running bool) *vmv1alpha1.VirtualMachineProfile {
	p := &vmv1alpha1.VirtualMachineProfile{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name, UID: types.UID("uid-" + name),
			CreationTimestamp: metav1.NewTime(time.Date(2026, 1, 1, 0, 0, age, 0, time.UTC))},
		Spec: vmv1alpha1.VirtualMachineProfileSpec{Networks: []vmv1alpha1.NetworkConfig{{Name: "lan", Type: "bridge", MACAddress: "02:00:00:00:00:" + host,
			IPConfig: &vmv1alpha1.IPConfigSpec{Mode: vmv1alpha1.IPModeStatic, Address: ptr.To("10.0.0." + host + "/24")}}}},
	}
	if running {
		p.Status = vmv1alpha1.VirtualMachineProfileStatus{Phase: vmv1alpha1.PhaseRunning,
			Conditions: []metav1.Condition{{Type: vmv1alpha1.ConditionNetworksConfigured, Status: metav1.ConditionTrue}},
			Networks:   []vmv1alpha1.NetworkStatus{{Name: "lan", IPAddress: "10.0.0." + host + "/24", MACAddress: "02:00:00:00:00:" + host}}}
	}
	return p
}

// moveTo edits a profile's spec onto another host number, as a user would:
// the status still shows what its VM runs with.
func moveTo(p *vmv1alpha1.VirtualMachineProfile, host string) *vmv1alpha1.VirtualMachineProfile {
	p = p.DeepCopy()
	p.Spec.Networks[0].MACAddress = "02:00:00:00:00:" + host
	p.Spec.Networks[0].IPConfig.Address = ptr.To("10.0.0." + host + "/24")
	return p
}

// decide runs the decision both ways for an identity on one segment:
// whether a keeps the value against b, and b against a.
func decide(a, b *vmv1alpha1.VirtualMachineProfile, id identity) (aKeeps, bKeeps bool) {
	attachments := func(p *vmv1alpha1.VirtualMachineProfile) []desired.Attachment {
		return []desired.Attachment{{Network: &p.Spec.Networks[0], Segment: "hostnetwork/mgmt/0"}}
	}
	ca, cb := claimsOf(a, attachments(a), id)["hostnetwork/mgmt/0"], claimsOf(b, attachments(b), id)["hostnetwork/mgmt/0"]
	if ca.value == "" || ca.value != cb.value {
		panic("the profiles do not clash: " + ca.value + " vs " + cb.value)
	}
	aRuns, bRuns := runsWith(a, ca, id), runsWith(b, cb, id)
	return keeps(a, b, aRuns, bRuns), keeps(b, a, bRuns, aRuns)
}

// TestRunningHolderKeepsItsIdentity: of two profiles claiming one address
// or MAC on a segment, the one whose VM runs with it keeps it, even when
// the other is older and was just edited onto it; with neither (or both)
// running, the older keeps it. Exactly one side keeps it in every case.
func TestRunningHolderKeepsItsIdentity(t *testing.T) {
	for _, id := range identities() {
		cases := []struct {
			name         string
			a, b         *vmv1alpha1.VirtualMachineProfile
			wantA, wantB bool
		}{
			{"neither runs: the older keeps it", holderProfile("ns", "old", 1, "5", false), holderProfile("ns", "young", 9, "5", false), true, false},
			{"the older runs: it keeps it", holderProfile("ns", "old", 1, "5", true), holderProfile("ns", "young", 9, "5", false), true, false},
			{"an older running profile edited onto a running younger one's value is refused",
				moveTo(holderProfile("ns", "old", 1, "4", true), "5"), holderProfile("ns", "young", 9, "5", true), false, true},
			{"an older stopped profile edited onto it is refused too", moveTo(holderProfile("ns", "old", 1, "4", false), "5"), holderProfile("ns", "young", 9, "5", true), false, true},
			{"both run with it (a race): the older keeps it", holderProfile("ns", "old", 1, "5", true), holderProfile("ns", "young", 9, "5", true), true, false},
			{"same second: the lower UID keeps it", holderProfile("ns", "a", 1, "5", false), holderProfile("ns", "b", 1, "5", false), true, false},
		}
		for _, c := range cases {
			t.Run(id.noun+"/"+c.name, func(t *testing.T) {
				gotA, gotB := decide(c.a, c.b, id)
				if gotA != c.wantA || gotB != c.wantB {
					t.Fatalf("%s keeps: %v, %s keeps: %v; want %v, %v", c.a.Name, gotA, c.b.Name, gotB, c.wantA, c.wantB)
				}
			})
		}
	}
}

// TestRefusedProfileHoldsNothing: a profile whose networks were refused
// (NetworksConfigured False) does not run with anything, even when its
// status still shows the value and its phase Running.
func TestRefusedProfileHoldsNothing(t *testing.T) {
	p := holderProfile("ns", "p", 1, "5", true)
	p.Status.Conditions[0].Status = metav1.ConditionFalse
	for _, id := range identities() {
		if runsWith(p, claim{network: "lan", value: id.of(p)["lan"]}, id) {
			t.Fatalf("%s: a refused profile runs with its value", id.noun)
		}
	}
}

// TestHolderMessageNamesNoOtherNamespace: the holder is named within the
// namespace, and neither its name nor namespace are given across namespaces.
func TestHolderMessageNamesNoOtherNamespace(t *testing.T) {
	mine := holderProfile("team-a", "web", 9, "5", false)
	for _, c := range []struct {
		other   *vmv1alpha1.VirtualMachineProfile
		running bool
		want    string
	}{
		{holderProfile("team-a", "db", 1, "5", false), false, "the older profile db"},
		{holderProfile("team-a", "db", 1, "5", true), true, "the running profile db"},
		{holderProfile("team-b", "secret-name", 1, "5", false), false, "an older profile in another namespace"},
		{holderProfile("team-b", "secret-name", 1, "5", true), true, "a running profile in another namespace"},
	} {
		if got := holderOf(c.other, mine, c.running); got != c.want {
			t.Fatalf("holder %s/%s: %q, want %q", c.other.Namespace, c.other.Name, got, c.want)
		}
	}
}

// TestMACIndexCoversGeneratedMACs: every network's MAC is indexed, set
// (lowercased) or generated, so a clash with either is found.
func TestMACIndexCoversGeneratedMACs(t *testing.T) {
	p := holderProfile("ns", "p", 1, "5", false)
	p.Spec.Networks[0].MACAddress = "02:00:00:00:00:AB"
	p.Spec.Networks = append(p.Spec.Networks, vmv1alpha1.NetworkConfig{Name: "gen", Type: "bridge"})
	keys := indexKeys(macIdentity())(p)
	generated := desired.MACAddress(p, &p.Spec.Networks[1])
	if len(keys) != 2 || !slices.Contains(keys, "02:00:00:00:00:ab") || !slices.Contains(keys, generated) {
		t.Fatalf("MAC index keys %v, want the set MAC lowercased and the generated %s", keys, generated)
	}
}
