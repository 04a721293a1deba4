//go:build scale

package scale

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	kubevirtv1 "kubevirt.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
	"github.com/jianfenliu/vmoperator/controller/desired"
)

// These tests break things while vmop-controller handles a burst of
// profiles, against the real control plane and garbage collector, and then
// demand exact convergence: every live profile Running with exactly one of
// each child, no orphans, no retained disk lost, and no write at rest.

var (
	env        *Env
	controller string // the vmop-controller binary
)

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	var err error
	if env, err = StartEnv(10); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer env.Stop()
	if controller, err = BuildController(env.Dir); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return m.Run()
}

// burst is the size of the SIGKILL test's burst; the other faults strike
// a smaller one (make test's time on 2 cores).
const (
	burst      = 500
	smallBurst = 300
)

// convergeTimeout bounds every convergence; the note records the times.
const convergeTimeout = 8 * time.Minute

// run is one test's namespace, observer and controller(s).
type run struct {
	t         *testing.T
	namespace string
	observer  *Observer
}

func newRun(t *testing.T) *run {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	namespace := strings.ToLower(strings.NewReplacer("Test", "", "_", "-").Replace(t.Name()))
	if err := CreateNamespace(ctx, env.Client, namespace); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := DeleteNamespace(context.Background(), env.Client, namespace, 5*time.Minute); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	observer, err := Observe(ctx, env.Plane.Config, namespace)
	if err != nil {
		t.Fatal(err)
	}
	return &run{t: t, namespace: namespace, observer: observer}
}

// supervise starts a supervised controller through its own proxy; both
// end with the test. On failure the controller's log is kept in the test log.
func (r *run) supervise(name string, args ...string) (*Supervisor, *Proxy) {
	r.t.Helper()
	proxy, kubeconfig, err := env.NewProxy(r.namespace + "-" + name)
	if err != nil {
		r.t.Fatal(err)
	}
	logPath := env.LogPath(r.namespace + "-" + name)
	supervisor, err := Supervise(controller, kubeconfig, logPath, ControllerFlags(args...)...)
	if err != nil {
		r.t.Fatal(err)
	}
	r.t.Cleanup(func() {
		supervisor.Stop()
		_ = proxy.Close()
		if r.t.Failed() {
			if log, err := os.ReadFile(logPath); err == nil {
				r.t.Logf("%s log (last 4 KiB):\n%s", name, log[max(0, len(log)-4096):])
			}
		}
	})
	return supervisor, proxy
}

// profile is the i-th profile of the run: the seed's test VM, whose disk
// is kept when the profile goes (the default, Retain), except every
// fourth, whose disk goes with it (retainPolicy Delete).
func (r *run) profile(i int) *vmv1alpha1.VirtualMachineProfile {
	p := Profile(r.namespace, i)
	if i%4 == 0 {
		p.Spec.Disks[0].RetainPolicy = vmv1alpha1.RetainPolicyDelete
	}
	return p
}

// create creates n profiles with 16 workers and returns their names.
func (r *run) create(n int) map[string]bool {
	r.t.Helper()
	live := map[string]bool{}
	for i := range n {
		live[r.profile(i).Name] = true
	}
	if _, err := ForEach(context.Background(), n, 16, func(ctx context.Context, i int) error {
		return env.Client.Create(ctx, r.profile(i))
	}); err != nil {
		r.t.Fatal(err)
	}
	return live
}

// deleteSome deletes every tenth profile once its claim exists, recording
// the claims of those that retain their disk: they must survive.
func (r *run) deleteSome(live map[string]bool, retained map[string]types.UID) {
	r.t.Helper()
	ctx := context.Background()
	for i := 0; i < burst; i += 10 {
		p := r.profile(i)
		claimName := p.Name + "-" + p.Spec.Disks[0].Name
		var claim corev1.PersistentVolumeClaim
		deadline := time.Now().Add(convergeTimeout)
		for env.Client.Get(ctx, client.ObjectKey{Namespace: r.namespace, Name: claimName}, &claim) != nil {
			if time.Now().After(deadline) {
				r.t.Fatalf("claim %s never appeared", claimName)
			}
			time.Sleep(100 * time.Millisecond)
		}
		if err := env.Client.Delete(ctx, p); err != nil {
			r.t.Fatal(err)
		}
		delete(live, p.Name)
		if p.Spec.Disks[0].EffectiveRetainPolicy() == vmv1alpha1.RetainPolicyRetain {
			retained[claimName] = claim.UID
		}
	}
}

// converge waits for the expected state and then checks that the
// controller, seen through proxy, writes nothing for 15 s. It logs the
// convergence time and the counts the note quotes.
func (r *run) converge(expected Expected, proxies ...*Proxy) {
	r.t.Helper()
	took, err := r.observer.WaitConverged(context.Background(), env.Client, r.namespace, expected, convergeTimeout)
	if err != nil {
		r.t.Fatal(err)
	}
	r.t.Logf("converged %.1f s after the last fault: %d live profiles, each with exactly one PVC and VM and one NAD per network; 0 duplicates, 0 orphans; %d retained claims kept with their UIDs",
		took.Seconds(), len(expected.Live), len(expected.Retained))
	for _, proxy := range proxies {
		if deletes := proxy.Writes()["DELETE persistentvolumeclaims"]; deletes != 0 {
			r.t.Errorf("the controller deleted %d claims; only the garbage collector may", deletes)
		}
	}
	time.Sleep(2 * time.Second) // a Running status may be written up to --status-interval late
	before := make([]map[string]int, len(proxies))
	for i, proxy := range proxies {
		before[i] = proxy.Writes()
	}
	time.Sleep(15 * time.Second)
	for i, proxy := range proxies {
		if atRest, _ := splitLeases(diffCounts(proxy.Writes(), before[i])); len(atRest) > 0 {
			r.t.Errorf("writes at rest in 15 s: %v", atRest)
		}
	}
}

// TestConvergesThroughTwentySIGKILLs kills the controller 20 times at
// random points while it handles a 500-profile burst, with every tenth
// profile deleted as soon as its disk exists. Leader election is off: a
// killed leader's Lease would hold the next process back for its whole
// duration (the failover test covers election).
func TestConvergesThroughTwentySIGKILLs(t *testing.T) {
	r := newRun(t)
	supervisor, proxy := r.supervise("kill", "--leader-elect=false")
	seed := uint64(time.Now().UnixNano())
	t.Logf("kill timing seed %d", seed)
	random := rand.New(rand.NewPCG(seed, 1))
	live := r.create(burst)
	retained := map[string]types.UID{}
	var deleting sync.WaitGroup
	deleting.Go(func() { r.deleteSome(live, retained) })
	for range 20 {
		time.Sleep(time.Duration(300+random.IntN(2200)) * time.Millisecond)
		supervisor.Kill()
	}
	deleting.Wait()
	t.Logf("%d controller processes started", supervisor.Starts())
	r.converge(Expected{Live: live, Retained: retained}, proxy)
}

// TestLeaderFailoverMidBurst runs two replicas; once a third of the VMs
// exist the leader is SIGKILLed and not restarted (its node died), so the
// other must take over and finish. A restarted leader could win the Lease
// back and the test would prove nothing about failover.
func TestLeaderFailoverMidBurst(t *testing.T) {
	r := newRun(t)
	a, proxyA := r.supervise("a", ShortLeaderElection...)
	b, proxyB := r.supervise("b", ShortLeaderElection...)
	live := r.create(smallBurst)
	waitForVMs(t, r, smallBurst/3)
	leader, other := a, proxyB
	if proxyB.Writes()["PATCH virtualmachines"] > proxyA.Writes()["PATCH virtualmachines"] {
		leader, other = b, proxyA
	}
	before := other.Writes()["PATCH virtualmachines"]
	killed := time.Now()
	leader.Fail()
	r.converge(Expected{Live: live, Retained: map[string]types.UID{}}, proxyA, proxyB)
	if other.Writes()["PATCH virtualmachines"] == before {
		t.Errorf("the replica that was not killed wrote no VM: it never took over")
	}
	t.Logf("leader killed; converged %.1f s later", time.Since(killed).Seconds())
}

// TestAPIServerRestartMidBurst stops kube-apiserver for 5 s while the
// controller handles a burst; the controller (restarted when it exits, as
// the kubelet would) must finish.
func TestAPIServerRestartMidBurst(t *testing.T) {
	r := newRun(t)
	supervisor, proxy := r.supervise("restart")
	live := r.create(smallBurst)
	waitForVMs(t, r, smallBurst/4)
	if err := env.RestartAPIServer(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	t.Logf("kube-apiserver restarted; %d controller processes so far", supervisor.Starts())
	r.converge(Expected{Live: live, Retained: map[string]types.UID{}}, proxy)
}

// TestTenPercentOfWritesFail answers a random 10 % of the controller's
// writes with 429 or 500 during the whole burst.
func TestTenPercentOfWritesFail(t *testing.T) {
	r := newRun(t)
	_, proxy := r.supervise("faults")
	proxy.SetFaultRate(0.1)
	live := r.create(smallBurst)
	r.converge(Expected{Live: live, Retained: map[string]types.UID{}}, proxy)
	t.Logf("writes failed by the proxy: %v", proxy.Injected())
	if len(proxy.Injected()) == 0 {
		t.Error("the proxy failed no write")
	}
}

// TestTenConcurrentEditors has ten users change 100 profiles' CPUs and add
// or remove a second network at once, with conflicts, for 20 s; every
// profile must end with its VM and attachments matching its last spec.
func TestTenConcurrentEditors(t *testing.T) {
	r := newRun(t)
	_, proxy := r.supervise("editors")
	const profiles = 100
	live := r.create(profiles)
	var edits, conflicts sync.Map
	var editors sync.WaitGroup
	stop := time.Now().Add(20 * time.Second)
	for editor := range 10 {
		editors.Go(func() {
			random := rand.New(rand.NewPCG(uint64(editor), 2))
			for time.Now().Before(stop) {
				name := r.profile(random.IntN(profiles)).Name
				n, err := edit(r.namespace, name, random)
				count(&edits, editor, 1)
				count(&conflicts, editor, n)
				if err != nil {
					t.Errorf("editor %d: %v", editor, err)
					return
				}
			}
		})
	}
	editors.Wait()
	t.Logf("edits: %d, conflicts retried: %d", sum(&edits), sum(&conflicts))
	r.converge(Expected{Live: live, Retained: map[string]types.UID{}, Extra: vmMatchesSpec}, proxy)
}

// edit changes a profile's CPU count and adds or removes a second network,
// retrying on conflicts as kubectl edit's user would; it returns how many
// conflicts it met.
func edit(namespace, name string, random *rand.Rand) (int, error) {
	ctx := context.Background()
	for conflicts := 0; ; conflicts++ {
		var p vmv1alpha1.VirtualMachineProfile
		if err := env.Client.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, &p); err != nil {
			return conflicts, err
		}
		p.Spec.CPU = int32(1 + random.IntN(8))
		if len(p.Spec.Networks) == 1 {
			p.Spec.Networks = append(p.Spec.Networks, vmv1alpha1.NetworkConfig{Name: "lan", Type: vmv1alpha1.NetworkTypeBridge, BridgeName: "br-mgmt"})
		} else {
			p.Spec.Networks = p.Spec.Networks[:1]
		}
		err := env.Client.Update(ctx, &p)
		if err == nil {
			return conflicts, nil
		}
		if !strings.Contains(err.Error(), "the object has been modified") {
			return conflicts, err
		}
	}
}

// vmMatchesSpec checks that the profile's VM has its CPU count and one
// interface per network.
func vmMatchesSpec(ctx context.Context, p *vmv1alpha1.VirtualMachineProfile) string {
	var vm kubevirtv1.VirtualMachine
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: p.Namespace, Name: vmv1alpha1.VMName(p.Name)}, &vm); err != nil {
		return err.Error()
	}
	domain := vm.Spec.Template.Spec.Domain
	if domain.CPU == nil || int32(domain.CPU.Cores*max(domain.CPU.Sockets, 1)*max(domain.CPU.Threads, 1)) != p.Spec.CPU {
		return fmt.Sprintf("VM CPU %+v, profile asks %d", domain.CPU, p.Spec.CPU)
	}
	if len(domain.Devices.Interfaces) != len(p.Spec.Networks) {
		return fmt.Sprintf("VM has %d interfaces, profile %d networks", len(domain.Devices.Interfaces), len(p.Spec.Networks))
	}
	for _, network := range p.Spec.Networks {
		var nad nadv1.NetworkAttachmentDefinition
		key := client.ObjectKey{Namespace: p.Namespace, Name: desired.NADName(p.Name, network.Name)}
		if err := env.Client.Get(ctx, key, &nad); err != nil {
			return fmt.Sprintf("attachment of network %s: %v", network.Name, err)
		}
	}
	return ""
}

func waitForVMs(t *testing.T, r *run, n int) {
	t.Helper()
	deadline := time.Now().Add(convergeTimeout)
	for {
		counts, err := r.observer.Count(context.Background(), r.namespace)
		if err != nil {
			t.Fatal(err)
		}
		if counts.VMs >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d VMs after %s", counts.VMs, convergeTimeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func count(m *sync.Map, key, n int) {
	v, _ := m.LoadOrStore(key, new(int))
	*(v.(*int)) += n
}

func sum(m *sync.Map) int {
	total := 0
	m.Range(func(_, v any) bool { total += *(v.(*int)); return true })
	return total
}
