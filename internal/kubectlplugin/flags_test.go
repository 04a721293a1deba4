package kubectlplugin

import (
	"strings"
	"testing"

	"github.com/jianfenliu/vmoperator/controller/manager"
)

// TestParseFlagsAnywhere: flags may follow the profile, as kubectl's do;
// after -- everything goes to virtctl.
func TestParseFlagsAnywhere(t *testing.T) {
	var f flags
	positional, err := parseFlags(&f, []string{"user@test-vm", "-n", "demo", "--context=lab", "--allow-emulation", "--", "-i", "key", "-n", "x"})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(positional, " ") != "user@test-vm -i key -n x" || f.namespace != "demo" || f.context != "lab" {
		t.Errorf("positional %q, flags %+v", positional, f)
	}
	if f.overrides.allowEmulation == nil || !*f.overrides.allowEmulation || f.overrides.allowUndeclared != nil {
		t.Errorf("overrides %+v", f.overrides)
	}
	if _, err := parseFlags(&flags{}, []string{"--no-such-flag"}); err == nil {
		t.Error("an unknown flag was accepted")
	}
}

// TestApplyArgsReadsTheControllerFlags: the chart's controller arguments
// set what placement and resolution depend on.
func TestApplyArgsReadsTheControllerFlags(t *testing.T) {
	s := settings{leaseNamespace: manager.DefaultLeaseNamespace}
	applyArgs(&s, []string{"--leader-elect=true", "--agent-lease-namespace=ops", "--allow-emulation=true",
		"--allow-undeclared-host-networks=false", "--default-sriov-resource=nvidia.com/cx6", "--shared-nad-namespaces=net, infra,"})
	if s.leaseNamespace != "ops" || !s.allowEmulation || s.policy.AllowUndeclared || s.policy.DefaultSRIOVResource != "nvidia.com/cx6" ||
		strings.Join(s.policy.SharedNADNamespaces, ",") != "net,infra" {
		t.Errorf("settings %+v", s)
	}
	applyArgs(&s, []string{"--allow-emulation=false", "--allow-undeclared-host-networks"})
	if s.allowEmulation || !s.policy.AllowUndeclared {
		t.Errorf("settings after the second arguments %+v", s)
	}
}
