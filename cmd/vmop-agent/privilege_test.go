package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
	"k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/jianfenliu/vmoperator/agent/capability"
	"github.com/jianfenliu/vmoperator/agent/probe"
	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
)

// TestProbesNeedNoCapability measures what the agent needs from the
// kernel: it runs the built binary as nobody (uid 65534) with every
// capability dropped and no way to gain one, in the host's network
// namespace, and checks that it reports the same links and bridges as a
// probe running as root, with every link probe succeeding. Only /dev/kvm is
// out of its reach (root's device, 0600): the chart runs the agent as uid 0
// without capabilities and gets /dev/kvm through KubeVirt's device plugin.
func TestProbesNeedNoCapability(t *testing.T) {
	const node = "node-unprivileged"
	setupNode(t, node)
	hostBridge(t, "vmopcap0", "vmopcapv0", "vmopcapw0")
	// A directory nobody can read (t.TempDir's parent is private to root).
	dir, err := os.MkdirTemp("", "vmop-unprivileged-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	binary := filepath.Join(dir, "vmop-agent")
	build := exec.Command("go", "build", "-o", binary, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	kubeconfig := filepath.Join(dir, "kubeconfig")
	raw, err := os.ReadFile(cp.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(kubeconfig, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	sysfs := filepath.Join(dir, "sysfs")
	if err := os.MkdirAll(filepath.Join(sysfs, "class", "net"), 0o755); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	agent := exec.CommandContext(ctx, "setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
		"--inh-caps=-all", "--bounding-set=-all", "--no-new-privs", "--",
		binary, "--node-name="+node, "--kubeconfig="+kubeconfig, "--lease-namespace=vmop-"+node,
		"--metrics-bind-address=", "--health-probe-bind-address="+freeAddr(t), "--sysfs-root="+sysfs,
		"--verify-policies=false", "--kvm-device=/dev/kvm")
	var output strings.Builder
	agent.Stdout, agent.Stderr = &output, &output
	if err := agent.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = agent.Process.Signal(unix.SIGTERM)
		_ = agent.Wait()
	})
	var reported vmv1alpha1.NodeCapability
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := cp.Client.Get(ctx, client.ObjectKey{Name: node}, &reported)
		if err == nil && meta.FindStatusCondition(reported.Status.Conditions, vmv1alpha1.ConditionLinksProbed) != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the unprivileged agent published nothing: %v\n%s", err, output.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, condition := range []string{vmv1alpha1.ConditionLinksProbed, vmv1alpha1.ConditionBridgeVLANsProbed, vmv1alpha1.ConditionSRIOVProbed} {
		if c := meta.FindStatusCondition(reported.Status.Conditions, condition); c.Status != "True" {
			t.Errorf("%s without capabilities: %s %s", condition, c.Reason, c.Message)
		}
	}
	asRoot := rootProbe(t)
	if got, want := names(reported.Status.Uplinks), names(asRoot.Uplinks); !slices.Equal(got, want) {
		t.Errorf("uplinks as nobody %v, as root %v", got, want)
	}
	if got, want := bridgeNames(reported.Status.Bridges), bridgeNames(asRoot.Bridges); !slices.Equal(got, want) || !slices.Contains(got, "vmopcap0") {
		t.Errorf("bridges as nobody %v, as root %v", got, want)
	}
	kvm := reported.Status.KVM
	_, statErr := os.Stat("/dev/kvm")
	switch {
	case statErr == nil && (kvm.Available || !strings.Contains(kvm.Reason, "permission denied")):
		t.Errorf("/dev/kvm (root's, 0600) as nobody: %+v", kvm)
	case statErr != nil && !strings.Contains(kvm.Reason, "does not exist"):
		t.Errorf("no /dev/kvm: %+v", kvm)
	}
	t.Logf("as nobody without capabilities: %d uplinks, %d bridges, every link probe True; KVM: %s",
		len(reported.Status.Uplinks), len(reported.Status.Bridges), kvm.Reason)
}

// hostBridge adds a bridge with one veth port to the host's own network
// namespace (the agent without capabilities cannot enter another), removed
// when the test ends.
func hostBridge(t *testing.T, bridge, port, peer string) {
	t.Helper()
	br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: bridge}}
	if err := netlink.LinkAdd(br); err != nil {
		t.Fatalf("add bridge %s: %v", bridge, err)
	}
	t.Cleanup(func() { _ = netlink.LinkDel(br) })
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: port, MasterIndex: br.Index}, PeerName: peer}
	if err := netlink.LinkAdd(veth); err != nil {
		t.Fatalf("add veth %s: %v", port, err)
	}
	t.Cleanup(func() { _ = netlink.LinkDel(veth) })
	for _, link := range []netlink.Link{br, veth} {
		if err := netlink.LinkSetUp(link); err != nil {
			t.Fatal(err)
		}
	}
}

// rootProbe is what a probe running as root finds in the host namespace.
func rootProbe(t *testing.T) vmv1alpha1.NodeCapabilityStatus {
	t.Helper()
	source, err := probe.NewNetlink(netns.None())
	if err != nil {
		t.Fatal(err)
	}
	defer source.Close()
	snapshot, err := probe.NewLinks(source, "").ProbeLinks()
	if err != nil {
		t.Fatal(err)
	}
	return capability.Build(capability.Input{Links: snapshot})
}

func names(uplinks []vmv1alpha1.UplinkStatus) []string {
	var out []string
	for _, u := range uplinks {
		out = append(out, u.Name)
	}
	return out
}

func bridgeNames(bridges []vmv1alpha1.BridgeStatus) []string {
	var out []string
	for _, b := range bridges {
		out = append(out, b.Name)
	}
	return out
}
