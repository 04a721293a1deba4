package scale

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/jianfenliu/vmoperator/controller/manager"
)

// BenchOptions say what one benchmark run does.
type BenchOptions struct {
	Profiles int
	Workers  int // creating profiles, and the raw client's workers
	Nodes    int
	// Rest is how long writes are counted after every profile is Running.
	Rest time.Duration
	// ControllerArgs are extra flags for vmop-controller, ControllerEnv
	// extra environment variables ("GOGC=50").
	ControllerArgs []string
	ControllerEnv  []string
	// Progress, when set, receives a line per phase.
	Progress func(format string, args ...any)
}

// BenchResult is what one run measured. Durations are from the first
// create of the phase.
type BenchResult struct {
	Profiles       int      `json:"profiles"`
	Workers        int      `json:"workers"`
	Nodes          int      `json:"nodes"`
	ControllerArgs []string `json:"controllerArgs"`
	ControllerEnv  []string `json:"controllerEnv"`

	RawChildren     Seconds `json:"rawChildrenSeconds"`
	ProfilesCreated Seconds `json:"profilesCreatedSeconds"`
	AllVMs          Seconds `json:"allVMsSeconds"`
	AllRunning      Seconds `json:"allRunningSeconds"`
	// Ratio is AllVMs over RawChildren.
	Ratio float64 `json:"ratio"`

	// Writes are the controller's writes until every profile was Running,
	// by "VERB resource" (leader election's Lease renewals apart).
	Writes           map[string]int `json:"writes"`
	WritesPerProfile float64        `json:"writesPerProfile"`
	LeaseWrites      int            `json:"leaseWrites"`
	Rest             Seconds        `json:"restSeconds"`
	WritesAtRest     map[string]int `json:"writesAtRest"`

	// CPU seconds used from the first profile's creation until every VM
	// existed, by the controller and by kube-apiserver and etcd together;
	// and by the raw client's phase on the apiserver side.
	ControllerCPUToVMs Seconds `json:"controllerCPUToVMsSeconds"`
	APIServerCPUToVMs  Seconds `json:"apiserverCPUToVMsSeconds"`
	APIServerCPURaw    Seconds `json:"apiserverCPURawSeconds"`

	RSSIdleMiB    float64 `json:"rssIdleMiB"`
	RSSPeakMiB    float64 `json:"rssPeakMiB"`
	RSSRestMiB    float64 `json:"rssRestMiB"`
	RSSPer1000MiB float64 `json:"rssPer1000ProfilesMiB"`
}

// Seconds is a duration printed in seconds.
type Seconds float64

func seconds(d time.Duration) Seconds { return Seconds(d.Seconds()) }

// Bench runs the raw client, then vmop-controller, on one control plane.
func Bench(ctx context.Context, options BenchOptions) (*BenchResult, error) {
	progress := options.Progress
	if progress == nil {
		progress = func(string, ...any) {}
	}
	result := &BenchResult{Profiles: options.Profiles, Workers: options.Workers, Nodes: options.Nodes, ControllerArgs: options.ControllerArgs, ControllerEnv: options.ControllerEnv}
	env, err := StartEnv(options.Nodes)
	if err != nil {
		return nil, err
	}
	defer env.Stop()
	binary, err := BuildController(env.Dir)
	if err != nil {
		return nil, err
	}

	// One observer watches both phases' namespaces from the start, so its
	// watches load the apiserver the same in both.
	const namespace = "scale"
	for _, name := range []string{rawNamespace, namespace} {
		if err := CreateNamespace(ctx, env.Client, name); err != nil {
			return nil, err
		}
	}
	observer, err := Observe(ctx, env.Plane.Config, rawNamespace, namespace)
	if err != nil {
		return nil, err
	}
	progress("raw client: %d profiles' children (NAD, PVC, VM) by %d workers", options.Profiles, options.Workers)
	serverBefore := serverCPU()
	raw, err := rawChildren(ctx, env, options)
	result.APIServerCPURaw = Seconds(serverCPU() - serverBefore)
	if err != nil {
		return nil, err
	}
	result.RawChildren = seconds(raw)
	progress("raw client: %.2f s; removing its namespace", raw.Seconds())
	if err := DeleteNamespace(ctx, env.Client, rawNamespace, 10*time.Minute); err != nil {
		return nil, err
	}

	controller, proxy, err := env.StartController(binary, "bench", options.ControllerEnv, ControllerFlags(options.ControllerArgs...)...)
	if err != nil {
		return nil, err
	}
	defer proxy.Close()
	defer controller.Stop()
	if err := WaitForLeader(ctx, env.Client, time.Minute); err != nil {
		return nil, errors.Join(err, fmt.Errorf("controller log: %s", env.LogPath("bench")))
	}
	time.Sleep(5 * time.Second) // caches synced, start-up garbage collected
	idle, _, err := controller.Memory()
	if err != nil {
		return nil, err
	}
	if err := controller.ResetPeak(); err != nil {
		return nil, err
	}
	result.RSSIdleMiB = mib(idle)
	progress("controller leads; idle RSS %.1f MiB", result.RSSIdleMiB)

	before := proxy.Writes()
	controllerBefore, err := controller.CPUSeconds()
	if err != nil {
		return nil, err
	}
	serverBefore = serverCPU()
	start := time.Now()
	created, err := ForEach(ctx, options.Profiles, options.Workers, func(ctx context.Context, i int) error {
		return env.Client.Create(ctx, Profile(namespace, i))
	})
	if err != nil {
		return nil, err
	}
	result.ProfilesCreated = seconds(created)
	progress("%d profiles created in %.2f s", options.Profiles, created.Seconds())
	vmsExist, allRunning, cpu, err := waitForRunning(ctx, observer, namespace, controller, options.Profiles, start, 30*time.Minute)
	if err != nil {
		return nil, errors.Join(err, fmt.Errorf("controller log: %s", env.LogPath("bench")))
	}
	result.AllVMs, result.AllRunning = seconds(vmsExist), seconds(allRunning)
	result.ControllerCPUToVMs = Seconds(cpu.controller - controllerBefore)
	result.APIServerCPUToVMs = Seconds(cpu.server - serverBefore)
	result.Ratio = vmsExist.Seconds() / raw.Seconds()
	progress("every VM after %.2f s (%.2f× the raw client), every profile Running after %.2f s", vmsExist.Seconds(), result.Ratio, allRunning.Seconds())
	atRunning := proxy.Writes()
	result.Writes, result.LeaseWrites = splitLeases(diffCounts(atRunning, before))
	result.WritesPerProfile = float64(total(result.Writes)) / float64(options.Profiles)

	progress("counting writes at rest for %s", options.Rest)
	time.Sleep(options.Rest)
	result.Rest = seconds(options.Rest)
	result.WritesAtRest, _ = splitLeases(diffCounts(proxy.Writes(), atRunning))
	current, peak, err := controller.Memory()
	if err != nil {
		return nil, err
	}
	result.RSSRestMiB, result.RSSPeakMiB = mib(current), mib(peak)
	result.RSSPer1000MiB = (mib(current) - mib(idle)) * 1000 / float64(options.Profiles)
	return result, nil
}

// rawNamespace holds the raw client's objects.
const rawNamespace = "scale-raw"

// rawChildren creates every profile's four children with a client that is
// not rate-limited: the apiserver's own pace.
func rawChildren(ctx context.Context, env *Env, options BenchOptions) (time.Duration, error) {
	config := rest.CopyConfig(env.Plane.Config)
	config.QPS = -1 // no client-side limit
	c, err := client.New(config, client.Options{Scheme: env.Plane.Scheme})
	if err != nil {
		return 0, fmt.Errorf("create an unthrottled client for %s: %w", config.Host, err)
	}
	return ForEach(ctx, options.Profiles, options.Workers, func(ctx context.Context, i int) error {
		children, err := Children(Profile(rawNamespace, i))
		if err != nil {
			return err
		}
		for _, child := range children {
			if err := c.Create(ctx, child); err != nil {
				return fmt.Errorf("create %T %s/%s: %w", child, child.GetNamespace(), child.GetName(), err)
			}
		}
		return nil
	})
}

// cpuAt is the CPU time used by the controller and the apiserver side
// (kube-apiserver and etcd) at one moment.
type cpuAt struct{ controller, server float64 }

func serverCPU() float64 { return ProcessCPUSeconds("kube-apiserver") + ProcessCPUSeconds("etcd") }

// waitForRunning polls the observer's cache until every VM exists and
// every profile is Running; it fails when the controller exits.
func waitForRunning(ctx context.Context, observer *Observer, namespace string, controller *Controller, n int, start time.Time, timeout time.Duration) (vmsExist, allRunning time.Duration, cpu cpuAt, err error) {
	deadline := start.Add(timeout)
	var counts Counts
	for time.Now().Before(deadline) {
		if controller.Exited() {
			return 0, 0, cpu, errors.New("vmop-controller exited")
		}
		counts, err = observer.Count(ctx, namespace)
		if err != nil {
			return 0, 0, cpu, err
		}
		if vmsExist == 0 && counts.VMs >= n {
			vmsExist = time.Since(start)
			cpu.server = serverCPU()
			if cpu.controller, err = controller.CPUSeconds(); err != nil {
				return 0, 0, cpu, err
			}
		}
		if counts.Running >= n {
			return vmsExist, time.Since(start), cpu, nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return 0, 0, cpu, fmt.Errorf("after %s: %d of %d VMs, %d of %d profiles Running", timeout, counts.VMs, n, counts.Running, n)
}

// WaitForLeader waits until some controller holds the election Lease.
func WaitForLeader(ctx context.Context, c client.Client, timeout time.Duration) error {
	_, err := Leader(ctx, c, "", timeout)
	return err
}

// Leader waits until the election Lease names a holder other than notHolder
// and returns it.
func Leader(ctx context.Context, c client.Client, notHolder string, timeout time.Duration) (string, error) {
	deadline := time.Now().Add(timeout)
	for {
		var lease coordinationv1.Lease
		err := c.Get(ctx, client.ObjectKey{Namespace: LeaseNamespace, Name: manager.LeaderElectionID}, &lease)
		if client.IgnoreNotFound(err) != nil {
			return "", fmt.Errorf("get Lease %s/%s: %w", LeaseNamespace, manager.LeaderElectionID, err)
		}
		if err == nil && lease.Spec.HolderIdentity != nil && *lease.Spec.HolderIdentity != "" && *lease.Spec.HolderIdentity != notHolder {
			return *lease.Spec.HolderIdentity, nil
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("no controller leads after %s", timeout)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func splitLeases(writes map[string]int) (map[string]int, int) {
	leases := 0
	for key, n := range writes {
		if strings.HasSuffix(key, " leases") {
			leases += n
			delete(writes, key)
		}
	}
	return writes, leases
}

func diffCounts(after, before map[string]int) map[string]int {
	out := map[string]int{}
	for key, n := range after {
		if d := n - before[key]; d != 0 {
			out[key] = d
		}
	}
	return out
}

func total(counts map[string]int) int {
	sum := 0
	for _, n := range counts {
		sum += n
	}
	return sum
}

func mib(bytes uint64) float64 { return float64(bytes) / (1 << 20) }

// SortedKeys lists a count map's keys in order.
func SortedKeys(counts map[string]int) []string {
	keys := make([]string, 0, len(counts))
	for key := range counts {
		keys = append(keys, key)
	}
	sort.Strings(keys)
	return keys
}
