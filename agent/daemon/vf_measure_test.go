//go:build integration && measure

package daemon

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/jianfenliu/vmoperator/agent/vlantraffic"
	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
	"github.com/jianfenliu/vmoperator/internal/testing/controlplane"
)

// vfLinks is how many VF-like links the measured node has. Real VFs are
// left out of counting by their sysfs physfn link; these stand for the
// worst case the limit must hold: as many countable ports (named as
// uplinks), as a node with 256 VFs in its host namespace had before.
const vfLinks = 256

// TestVFNodeFootprint runs the agent binary, with the per-VLAN counters,
// on a throwaway namespace holding 256 macvlan links it counts as uplinks
// (dummy links are not built into every kernel), in a memory cgroup of its
// own, once with the chart's port limit and once with none (as before the
// limit). It prints the agent's RSS and the cgroup's peak, which includes
// the BPF maps the kernel charges to it, and fails when the chart's limit
// does not cover the run with the chart's port limit. `make bench` runs it.
func TestVFNodeFootprint(t *testing.T) {
	memoryLimit, maxPorts := chartAgentLimits(t)
	bin := filepath.Join(t.TempDir(), "vmop-agent")
	if out, err := exec.Command("go", "build", "-o", bin, "../../cmd/vmop-agent").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	var runs []footprint
	for _, run := range []struct {
		name     string
		maxPorts int
	}{{"no limit (before)", vlantraffic.MaxVLANs}, {fmt.Sprintf("chart limit %d", maxPorts), maxPorts}} {
		t.Run(run.name, func(t *testing.T) {
			fp := measureVFNode(t, bin, run.maxPorts)
			runs = append(runs, fp)
			t.Logf("%d VF-like links, --vlan-counter-max-ports=%d: %d ports counted, %d skipped; agent RSS %.1f MiB (peak %.1f MiB), cgroup peak %.1f MiB (BPF maps included); chart limit %s",
				vfLinks, run.maxPorts, fp.counted, fp.skipped, mib(fp.rss), mib(fp.rssPeak), mib(fp.cgroupPeak), memoryLimit.String())
			if run.maxPorts != maxPorts {
				return
			}
			if fp.counted != maxPorts || fp.skipped != vfLinks-maxPorts {
				t.Errorf("counted %d, skipped %d; want %d and %d", fp.counted, fp.skipped, maxPorts, vfLinks-maxPorts)
			}
			if used := max(fp.cgroupPeak, fp.rssPeak); used >= memoryLimit.Value() {
				t.Errorf("the agent peaked at %.1f MiB, over the chart's limit %s", mib(used), memoryLimit.String())
			}
		})
	}
	if len(runs) == 2 && runs[0].counted > runs[1].counted {
		ports := int64(runs[0].counted - runs[1].counted)
		t.Logf("per counted port: %.0f KiB of cgroup peak, %.0f KiB of RSS (vlantraffic.PortCost is %d KiB of maps)",
			float64(runs[0].cgroupPeak-runs[1].cgroupPeak)/float64(ports)/1024, float64(runs[0].rss-runs[1].rss)/float64(ports)/1024, vlantraffic.PortCost/1024)
	}
}

type footprint struct {
	counted, skipped         int
	rss, rssPeak, cgroupPeak int64
}

// measureVFNode runs one agent until its counters are attached and a scrape
// has read every map, and measures it.
func measureVFNode(t *testing.T, bin string, maxPorts int) footprint {
	node := fmt.Sprintf("node-vfs-%d", maxPorts)
	ns := setupNode(t, node)
	ns.VethPair(t, "pf0", "pf0-wire", "")
	var uplinks []string
	for i := range vfLinks {
		name := fmt.Sprintf("pf0v%d", i)
		ns.Macvlan(t, name, "pf0")
		uplinks = append(uplinks, name)
	}
	cgroup := newMemoryCgroup(t, node)
	metricsAddr := freeAddr(t)
	args := append(agentArgs(t, node, ns, metricsAddr, freeAddr(t)),
		"--extra-uplinks="+strings.Join(uplinks, ","), fmt.Sprintf("--vlan-counter-max-ports=%d", maxPorts),
		"--verify-policies=false", "--resync=5m")
	// The shell joins the cgroup before it becomes the agent, so every page
	// the agent and the kernel on its behalf allocate is charged there.
	cmd := exec.Command("/bin/sh", append([]string{"-c", `echo $$ > "$0" && exec "$@"`, cgroup.procs, bin}, args...)...)
	output := &strings.Builder{}
	cmd.Stdout, cmd.Stderr = output, output
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	})
	deadline := time.Now().Add(60 * time.Second)
	for {
		var nc vmv1alpha1.NodeCapability
		err := cp.Client.Get(context.Background(), client.ObjectKey{Name: node}, &nc)
		if c := meta.FindStatusCondition(nc.Status.Conditions, vmv1alpha1.ConditionVLANCountersReady); err == nil && c != nil &&
			(c.Status == "True" || c.Reason == vmv1alpha1.ReasonPortLimitReached) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no VLANCountersReady from the agent: %v\n%s", err, output.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
	token := scraper(t, "vf-footprint", true)
	scrape(metricsAddr, token) // reads every counted port's map into the agent
	time.Sleep(2 * time.Second)
	_, body := scrape(metricsAddr, token)
	fp := footprint{
		counted: gaugeValue(t, body, `vmop_node_vlan_ports{state="counted"}`),
		skipped: gaugeValue(t, body, `vmop_node_vlan_ports{state="skipped"}`),
		rss:     statusKiB(t, cmd.Process.Pid, "VmRSS:") * 1024, rssPeak: statusKiB(t, cmd.Process.Pid, "VmHWM:") * 1024,
		cgroupPeak: cgroup.peak(t),
	}
	return fp
}

// chartAgentLimits reads the agent's memory limit and port limit from the
// chart's values.yaml, so the measurement checks what the chart ships.
func chartAgentLimits(t *testing.T) (resource.Quantity, int) {
	raw, err := os.ReadFile(filepath.Join(controlplane.RepoRoot(), "deploy", "chart", "values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var values struct {
		Agent struct {
			VLANCounterMaxPorts int `json:"vlanCounterMaxPorts"`
			Resources           struct {
				Limits struct {
					Memory string `json:"memory"`
				} `json:"limits"`
			} `json:"resources"`
		} `json:"agent"`
	}
	if err := yaml.Unmarshal(raw, &values); err != nil {
		t.Fatal(err)
	}
	limit, err := resource.ParseQuantity(values.Agent.Resources.Limits.Memory)
	if err != nil || values.Agent.VLANCounterMaxPorts <= 0 {
		t.Fatalf("chart values: memory limit %q (%v), vlanCounterMaxPorts %d", values.Agent.Resources.Limits.Memory, err, values.Agent.VLANCounterMaxPorts)
	}
	return limit, values.Agent.VLANCounterMaxPorts
}

// memoryCgroup is a cgroup of its own for one measured process.
type memoryCgroup struct {
	dir, procs, peakFile string
}

// newMemoryCgroup makes a child cgroup with the memory controller, on
// cgroup v2 or v1, removed when the test ends (after the process is gone).
func newMemoryCgroup(t *testing.T, name string) memoryCgroup {
	t.Helper()
	var c memoryCgroup
	if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err == nil {
		c = memoryCgroup{dir: filepath.Join("/sys/fs/cgroup", "vmop-measure-"+name), peakFile: "memory.peak"}
	} else {
		c = memoryCgroup{dir: filepath.Join("/sys/fs/cgroup/memory", "vmop-measure-"+name), peakFile: "memory.max_usage_in_bytes"}
	}
	c.procs = filepath.Join(c.dir, "cgroup.procs")
	if err := os.Mkdir(c.dir, 0o755); err != nil {
		t.Fatalf("memory cgroup: %v", err)
	}
	t.Cleanup(func() {
		// The agent's exit (an earlier cleanup) empties it; rmdir may race
		// the kernel's bookkeeping for a moment.
		for i := 0; i < 50; i++ {
			if err := os.Remove(c.dir); err == nil || errors.Is(err, os.ErrNotExist) {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Errorf("could not remove %s", c.dir)
	})
	return c
}

func (c memoryCgroup) peak(t *testing.T) int64 {
	raw, err := os.ReadFile(filepath.Join(c.dir, c.peakFile))
	if err != nil {
		t.Fatal(err)
	}
	v, err := strconv.ParseInt(strings.TrimSpace(string(raw)), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// statusKiB reads one "kB" line of /proc/PID/status.
func statusKiB(t *testing.T, pid int, key string) int64 {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	fields := strings.Fields(strings.TrimPrefix(metricLine(string(raw), key), key))
	if len(fields) == 0 {
		t.Fatalf("no %s in /proc/%d/status", key, pid)
	}
	v, err := strconv.ParseInt(fields[0], 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func gaugeValue(t *testing.T, scrape, series string) int {
	line := metricLine(scrape, series+" ")
	v, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimPrefix(line, series)), 64)
	if err != nil {
		t.Fatalf("no %s in the scrape: %v", series, err)
	}
	return int(v)
}

func mib(bytes int64) float64 { return float64(bytes) / (1 << 20) }
