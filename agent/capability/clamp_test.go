package capability

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
)

// TestBuildKeepsEveryStringWithinItsBound: a probe that returns a megabyte
// of text (a KVM reason, a policy's message and kernel summary, a failed
// probe's error) yields a status whose strings are within their CRD
// maxLength, cut at a character boundary with an ellipsis, so the agent's
// write is never refused; the input it was built from is not modified.
func TestBuildKeepsEveryStringWithinItsBound(t *testing.T) {
	huge := strings.Repeat("é", 1<<19) // 1 MiB of two-byte characters
	kvm := vmv1alpha1.KVMStatus{Available: false, Vendor: "intel", Reason: "open /dev/kvm: " + huge}
	policies := []vmv1alpha1.PolicyVerification{{Name: "br-mgmt-eth1", Enactment: "Available", Kernel: huge, Message: huge}}
	sriov := []vmv1alpha1.SRIOVPF{{Name: "ens1f0", PCIAddress: "0000:3b:00.0", Driver: strings.Repeat("d", 200), TotalVFs: 8, NumVFs: 4}}
	in := Input{KVM: kvm, Policies: policies, SRIOV: sriov,
		LinksProbe: Outcome{Err: errors.New("netlink: " + huge)}}

	s := Build(in)

	within := func(field, got string, bound int) {
		t.Helper()
		if n := utf8.RuneCountInString(got); n > bound || !utf8.ValidString(got) {
			t.Errorf("%s: %d characters (bound %d), valid UTF-8 %v", field, n, bound, utf8.ValidString(got))
		}
	}
	cut := func(field, got, original string, bound int) {
		t.Helper()
		within(field, got, bound)
		kept, ok := strings.CutSuffix(got, vmv1alpha1.Ellipsis)
		if !ok || !strings.HasPrefix(original, kept) || utf8.RuneCountInString(got) != bound {
			t.Errorf("%s: not the original's first %d characters and an ellipsis", field, bound-1)
		}
	}
	cut("kvm.reason", s.KVM.Reason, kvm.Reason, vmv1alpha1.MaxAgentMessageLength)
	cut("policies[0].message", s.Policies[0].Message, huge, vmv1alpha1.MaxAgentMessageLength)
	cut("policies[0].kernel", s.Policies[0].Kernel, huge, vmv1alpha1.MaxAgentMessageLength)
	cut("sriov[0].driver", s.SRIOV[0].Driver, sriov[0].Driver, maxDriverLength)
	if s.KVM.Vendor != "intel" || s.Policies[0].Name != "br-mgmt-eth1" || s.SRIOV[0].PCIAddress != "0000:3b:00.0" {
		t.Errorf("strings within their bounds changed: %q %q %q", s.KVM.Vendor, s.Policies[0].Name, s.SRIOV[0].PCIAddress)
	}
	var longest int
	for _, c := range s.Conditions {
		within("condition "+c.Type, c.Message, maxConditionMessageLength)
		longest = max(longest, len(c.Message))
	}
	if longest < maxConditionMessageLength {
		t.Errorf("no condition message was cut (longest %d bytes): the probe's error should fill one", longest)
	}
	t.Logf("status of %d bytes from 4 MiB of probe text", statusBytes(t, s))

	if policies[0].Message != huge || sriov[0].Driver != strings.Repeat("d", 200) || in.KVM.Reason != kvm.Reason {
		t.Error("Build modified its input")
	}
}
