// Package observe holds what the integration and end-to-end tests share to
// watch profiles: waiting for a condition with a generous bound, and
// describing a profile's status for failure messages.
package observe

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"go.uber.org/zap/zapcore"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/yaml"

	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
	"github.com/jianfenliu/vmoperator/internal/testing/controlplane"
)

// Eventually polls check until it reports done, failing with its last word
// after timeout. Timeouts bound a hang; they do not measure speed.
func Eventually(t testing.TB, timeout time.Duration, what string, check func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	last := ""
	for time.Now().Before(deadline) {
		ok, detail := check()
		if ok {
			return
		}
		last = detail
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s: not reached within %v; last seen: %s", what, timeout, last)
}

// Describe summarises a profile's status: phase, node, placement, conditions.
func Describe(p *vmv1alpha1.VirtualMachineProfile) string {
	s := fmt.Sprintf("phase=%s node=%s", p.Status.Phase, p.Status.NodeName)
	if p.Status.Placement != nil {
		s += fmt.Sprintf(" placement=%+v", *p.Status.Placement)
	}
	for _, c := range p.Status.Conditions {
		s += fmt.Sprintf(" [%s=%s %s: %s]", c.Type, c.Status, c.Reason, c.Message)
	}
	return s
}

// Exclusion is the reason placement gives for not using node, or "".
func Exclusion(p *vmv1alpha1.VirtualMachineProfile, node string) string {
	if p.Status.Placement == nil {
		return ""
	}
	for _, e := range p.Status.Placement.Excluded {
		if e.Node == node {
			return e.Reason
		}
	}
	return ""
}

// SampleDirs are where the samples live: config/samples, the request's
// test VM and its HostNetwork (kubebuilder's layout; `kubectl apply -f
// config/samples/` runs on make dev), and deploy/samples, the other examples.
func SampleDirs() []string { return []string{"config/samples", "deploy/samples"} }

// SamplePath is the path of the sample file named file, in whichever of
// SampleDirs holds it.
func SamplePath(t testing.TB, file string) string {
	t.Helper()
	for _, dir := range SampleDirs() {
		path := filepath.Join(controlplane.RepoRoot(), dir, file)
		if _, err := os.Stat(path); err == nil {
			return path
		}
	}
	t.Fatalf("no sample %s in %v", file, SampleDirs())
	return ""
}

// Sample reads a profile from a sample file (SampleDirs) into namespace.
func Sample(t testing.TB, file, namespace string) *vmv1alpha1.VirtualMachineProfile {
	t.Helper()
	raw, err := os.ReadFile(SamplePath(t, file))
	if err != nil {
		t.Fatal(err)
	}
	var profile vmv1alpha1.VirtualMachineProfile
	if err := yaml.Unmarshal(raw, &profile); err != nil {
		t.Fatal(err)
	}
	profile.Namespace = namespace
	return &profile
}

// ControllerLogger is silent unless VMOP_TEST_LOG is set (to a zap level
// such as debug or info): then the controller under test logs to stderr,
// for debugging a test.
func ControllerLogger() logr.Logger {
	level := os.Getenv("VMOP_TEST_LOG")
	if level == "" {
		return logr.Discard()
	}
	var zapLevel zapcore.Level
	if err := zapLevel.UnmarshalText([]byte(level)); err != nil {
		zapLevel = zapcore.DebugLevel
	}
	return zap.New(zap.WriteTo(os.Stderr), zap.Level(zapLevel))
}
