//go:build integration

package daemon

import (
	"context"
	"fmt"
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
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/jianfenliu/vmoperator/agent/capability"
	"github.com/jianfenliu/vmoperator/agent/probe"
	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
	"github.com/jianfenliu/vmoperator/internal/testing/netnstest"
)

// TestProbesNeedNoCapability measures what the agent needs from the
// kernel: it runs the built binary as the chart runs it without the
// per-VLAN counters (uid 65532, every capability dropped, no way to gain
// one, no device node), in the host's network namespace, and checks that
// it reports the same links, bridges and KVM as probes running as root,
// with every probe succeeding. KVM comes from the kernel's misc device in
// sysfs, which anyone may read.
func TestProbesNeedNoCapability(t *testing.T) {
	const node = "node-unprivileged"
	setupNode(t, node)
	hostBridge(t, "vmopcap0", "vmopcapv0", "vmopcapw0")
	output := startRestrictedAgent(t, node, []string{"--reuid=65532", "--regid=65532", "--clear-groups",
		"--inh-caps=-all", "--bounding-set=-all", "--no-new-privs"}, "--metrics-bind-address=")
	var reported vmv1alpha1.NodeCapability
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := cp.Client.Get(context.Background(), client.ObjectKey{Name: node}, &reported)
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
	// The per-VLAN counters need CAP_BPF: without it the agent says so and runs on.
	if c := meta.FindStatusCondition(reported.Status.Conditions, vmv1alpha1.ConditionVLANCountersReady); c == nil ||
		c.Status != "False" || c.Reason != vmv1alpha1.ReasonBPFUnavailable || !strings.Contains(c.Message, "operation not permitted") {
		t.Errorf("VLANCountersReady without capabilities = %+v, want False %s (operation not permitted)", c, vmv1alpha1.ReasonBPFUnavailable)
	}
	asRoot := rootProbe(t)
	if got, want := names(reported.Status.Uplinks), names(asRoot.Uplinks); !slices.Equal(got, want) {
		t.Errorf("uplinks as nobody %v, as root %v", got, want)
	}
	if got, want := bridgeNames(reported.Status.Bridges), bridgeNames(asRoot.Bridges); !slices.Equal(got, want) || !slices.Contains(got, "vmopcap0") {
		t.Errorf("bridges as nobody %v, as root %v", got, want)
	}
	kvm, want := reported.Status.KVM, probe.NewKVM("", "/sys", "/proc").ProbeKVM()
	if kvm == nil || kvm.Available != want.Available || kvm.Reason != want.Reason || kvm.Nested != want.Nested || kvm.Vendor != want.Vendor {
		t.Errorf("KVM as uid 65532 without capabilities %+v, as root from sysfs %+v", kvm, want)
	}
	t.Logf("as uid 65532 without capabilities: %d uplinks, %d bridges, every link probe True; KVM available=%v %s",
		len(reported.Status.Uplinks), len(reported.Status.Bridges), kvm.Available, kvm.Reason)
}

// startRestrictedAgent builds the agent and runs it through setpriv with
// privs, in the host's network namespace, against the test control plane,
// until the test ends. It returns the agent's output and /metrics address.
func startRestrictedAgent(t *testing.T, node string, privs []string, args ...string) *strings.Builder {
	t.Helper()
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
	build := exec.Command("go", "build", "-o", binary, "../../cmd/vmop-agent")
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
	// No SR-IOV devices (the host's NICs stay out of the test), but this
	// host's KVM: the misc device and the modules are the real sysfs.
	sysfs := filepath.Join(dir, "sysfs")
	if err := os.MkdirAll(filepath.Join(sysfs, "class", "net"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, sub := range []string{"class/misc", "module"} {
		if err := os.Symlink(filepath.Join("/sys", sub), filepath.Join(sysfs, sub)); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	command := append(privs, "--", binary, "--node-name="+node, "--kubeconfig="+kubeconfig, "--lease-namespace=vmop-"+node,
		"--health-probe-bind-address="+freeAddr(t), "--sysfs-root="+sysfs,
		"--verify-policies=false", "--kvm-device=") // as the chart: no device node
	agent := exec.CommandContext(ctx, "setpriv", append(command, args...)...)
	output := &strings.Builder{}
	agent.Stdout, agent.Stderr = output, output
	if err := agent.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = agent.Process.Signal(unix.SIGTERM)
		_ = agent.Wait()
		cancel()
	})
	return output
}

// TestVLANCountersNeedOnlyBPFAndNetAdmin runs the agent as the chart does
// with agent.vlanCounters on: uid 0 with CAP_BPF and CAP_NET_ADMIN only.
// It attaches its counters (to this host's NICs too, with tcx, which passes
// every frame on and detaches when the process ends) and counts the frames
// sent into a test veth it reports as an uplink.
func TestVLANCountersNeedOnlyBPFAndNetAdmin(t *testing.T) {
	const node = "node-bpf-only"
	setupNode(t, node)
	hostBridge(t, "vmopbpf0", "vmopbpfv0", "vmopbpfw0")
	peer, err := netlink.LinkByName("vmopbpfw0")
	if err == nil {
		err = netlink.LinkSetUp(peer)
	}
	if err != nil {
		t.Fatal(err)
	}
	metricsAddr := freeAddr(t)
	output := startRestrictedAgent(t, node,
		[]string{"--inh-caps=-all", "--bounding-set=-all,+bpf,+net_admin", "--no-new-privs"},
		"--metrics-bind-address="+metricsAddr, "--extra-uplinks=vmopbpfw0")
	var reported vmv1alpha1.NodeCapability
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := cp.Client.Get(context.Background(), client.ObjectKey{Name: node}, &reported)
		if err == nil && meta.FindStatusCondition(reported.Status.Conditions, vmv1alpha1.ConditionVLANCountersReady) != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the agent published no VLANCountersReady: %v\n%s", err, output.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	c := meta.FindStatusCondition(reported.Status.Conditions, vmv1alpha1.ConditionVLANCountersReady)
	if c.Status != "True" || !strings.Contains(c.Message, "with tcx") {
		t.Fatalf("VLANCountersReady with CAP_BPF and CAP_NET_ADMIN = %s %s %q\n%s", c.Status, c.Reason, c.Message, output.String())
	}
	sendFrames(t, "vmopbpfv0", 5, 100, 64)
	token := scraper(t, "scraper-bpf-only", true)
	want := `vmop_node_vlan_disallowed_packets_total{interface="vmopbpfw0",vlan="other"} 5`
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		_, body := scrape(metricsAddr, token)
		if strings.Contains(body, want) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/metrics never showed %s:\n%s", want, grepLines(body, "vmop_node_vlan_"))
		}
	}
}

// TestAddedCapabilitiesNeedRoot shows why the chart runs the agent as uid
// 0 when it adds CAP_BPF and CAP_NET_ADMIN: a runtime gives a non-root
// container its added capabilities in the bounding, permitted, effective
// (and, with some runtimes, inheritable) sets, but Kubernetes sets no
// ambient ones, so the kernel clears them at the execve that starts the
// agent. The same uid with the same capabilities as ambient ones counts.
func TestAddedCapabilitiesNeedRoot(t *testing.T) {
	nonRoot := []string{"--reuid=65532", "--regid=65532", "--clear-groups", "--bounding-set=-all,+bpf,+net_admin", "--no-new-privs"}
	cases := []struct {
		name       string
		privs      []string
		wantStatus metav1.ConditionStatus
	}{
		{name: "non-root, no ambient capabilities (Kubernetes)", privs: append(slices.Clone(nonRoot), "--inh-caps=-all,+bpf,+net_admin"), wantStatus: "False"},
		{name: "non-root, ambient capabilities (not offered by Kubernetes)", privs: append(slices.Clone(nonRoot), "--inh-caps=-all,+bpf,+net_admin", "--ambient-caps=-all,+bpf,+net_admin"), wantStatus: "True"},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			node := fmt.Sprintf("node-caps-%d", i)
			setupNode(t, node)
			output := startRestrictedAgent(t, node, tc.privs, "--metrics-bind-address=")
			c := waitVLANCounters(t, node, output)
			if c.Status != tc.wantStatus || (tc.wantStatus == "False" && !strings.Contains(c.Message, "operation not permitted")) {
				t.Errorf("VLANCountersReady = %s %s %q, want %s", c.Status, c.Reason, c.Message, tc.wantStatus)
			}
			t.Logf("%s: VLANCountersReady %s %s", tc.name, c.Status, c.Reason)
		})
	}
}

// waitVLANCounters waits for the agent to publish VLANCountersReady.
func waitVLANCounters(t *testing.T, node string, output *strings.Builder) *metav1.Condition {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var reported vmv1alpha1.NodeCapability
		err := cp.Client.Get(context.Background(), client.ObjectKey{Name: node}, &reported)
		if c := meta.FindStatusCondition(reported.Status.Conditions, vmv1alpha1.ConditionVLANCountersReady); err == nil && c != nil {
			return c
		}
		if time.Now().After(deadline) {
			t.Fatalf("the agent published no VLANCountersReady: %v\n%s", err, output.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// sendFrames writes count broadcast frames of size bytes tagged with vid
// on a link of the host's namespace.
func sendFrames(t *testing.T, link string, count, vid, size int) {
	t.Helper()
	l, err := netlink.LinkByName(link)
	if err != nil {
		t.Fatal(err)
	}
	socket, err := netnstest.OpenSendSocket(l.Attrs().Index)
	if err != nil {
		t.Fatal(err)
	}
	defer socket.Close()
	frame := netnstest.Frame(vid, size)
	for range count {
		if err := socket.Send(frame); err != nil {
			t.Fatal(err)
		}
	}
}

func grepLines(text, prefix string) string {
	var out []string
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(line, prefix) {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
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
