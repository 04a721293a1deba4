// Package nodestack runs a real Kubernetes node beside the test control
// plane (internal/testing/controlplane): containerd 2 with runc, the
// kubelet, kube-scheduler, kube-proxy and the kube-controller-manager's
// workload controllers, with pod networking from the reference CNI plugins,
// all built into bin/ by `make nodestack`. Pods are scheduled by the real
// scheduler and run by the real kubelet from image archives imported into
// containerd (no registry can be reached).
//
// The kubelet runs on the host with failCgroupV1: false and the cgroupfs
// driver (these hosts boot a hybrid cgroup v1 hierarchy); docs/development.md
// says why the host and not the node VM.
//
// Everything the stack starts or creates it removes in Stop, also after a
// failure: processes (containers and shims through the stack's own cgroup
// tree), mounts under its directory (volumes, rootfs, network namespaces),
// its bridge, kube-proxy's and portmap's nftables tables, its cgroups, and
// the kernel sysctls the kubelet sets. What a test binary that died without
// Stop left (go test -timeout runs no cleanup), the next Start sweeps; its
// processes die with it (SIGKILL as parent-death signal), but for the
// containers and shims, which the sweep kills through their cgroups. Tests
// using it must run as root.
package nodestack

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/vishvananda/netlink"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/remotecommand"
	"k8s.io/streaming/pkg/httpstream"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/jianfenliu/vmoperator/internal/testing/controlplane"
)

// Options say what node to run.
type Options struct {
	// NodeName is the node's name (default nodestack-node).
	NodeName string
	// Images are OCI image archives (make images' bin/images/*.tar, build/images
	// -node's bin/node-images/*.tar) imported into containerd before the
	// kubelet starts; the pause image is always imported.
	Images []string
	// PodSubnet is the pod network's range (default 10.244.0.0/24).
	PodSubnet string
	// Taints are registered with the node, as kubeadm taints a control-plane
	// node.
	Taints []corev1.Taint
	// ControlPlane are options of the control plane the stack starts.
	ControlPlane []controlplane.Option
}

// Stack is a running control plane with one real node.
type Stack struct {
	// ControlPlane is the apiserver the node registered with.
	ControlPlane *controlplane.ControlPlane
	// NodeName is the node's name.
	NodeName string
	// Dir holds every file of the node (logs: Dir/*.log).
	Dir string
	// PodSubnet is the pod network's range.
	PodSubnet string
	// ImageRefs are the names the imported archives gave their images, by
	// archive path.
	ImageRefs map[string]string

	bin              string
	certs            kubeletClientCerts
	apiserverCertDir string
	servingCA        []byte
	cgroupMounts     []string
	cgroupRoot       string
	bridge           string
	socket           string
	nftBefore        map[string]bool
	sysctls          map[string]string
	processes        []*process // in start order
	containerd       *process
	kubeProxy        *process
	proxyConfig      string
	stopped          bool
}

// sysctlsKubeletSets are the kernel settings the kubelet writes at start
// (its container manager's kernel tunables, unless protectKernelDefaults,
// which instead refuses to start where they differ): Stop restores them.
var sysctlsKubeletSets = []string{
	"vm/overcommit_memory", "vm/panic_on_oom", "kernel/panic", "kernel/panic_on_oops",
	"kernel/keys/root_maxkeys", "kernel/keys/root_maxbytes",
}

// Binaries the stack runs from bin/, and where make builds them.
func requiredBinaries() []string {
	return []string{
		"kubelet", "kube-scheduler", "kube-proxy", "kube-controller-manager",
		"containerd", "containerd-shim-runc-v2", "ctr", "runc",
		"cni/bridge", "cni/host-local", "cni/loopback", "cni/portmap",
		"node-images/pause.tar",
	}
}

// Start brings up the control plane and the node, and returns once the
// node is Ready. On error everything started is stopped again.
func Start(o Options) (*Stack, error) {
	if os.Geteuid() != 0 {
		return nil, errors.New("node stack: needs root (containerd, the kubelet and kube-proxy)")
	}
	s, err := prepare(o)
	if err != nil {
		return nil, err
	}
	cpOptions := append([]controlplane.Option{controlplane.WithAPIServerFlags(s.apiserverFlags()),
		controlplane.WithAPIServerCerts(s.apiserverCertDir, s.servingCA)}, o.ControlPlane...)
	s.ControlPlane, err = controlplane.Start(cpOptions...)
	if err != nil {
		return nil, errors.Join(err, s.Stop())
	}
	if err := s.start(o); err != nil {
		return nil, errors.Join(err, s.Stop())
	}
	return s, nil
}

// prepare checks the binaries and makes the stack's directory and the
// apiserver's kubelet client certificate, which the control plane needs
// before it starts.
func prepare(o Options) (*Stack, error) {
	bin := controlplane.BinDir()
	for _, name := range requiredBinaries() {
		if _, err := os.Stat(filepath.Join(bin, name)); err != nil {
			return nil, fmt.Errorf("node stack: %s not found in %s; run `make nodestack`: %w", name, bin, err)
		}
	}
	if err := sweepStale(); err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "nodestack-")
	if err != nil {
		return nil, err
	}
	if err := writeOwner(dir); err != nil {
		return nil, errors.Join(err, os.RemoveAll(dir))
	}
	// The directory's random suffix names the stack's cgroup tree and
	// bridge, so two stacks (or a stack and its leftovers) never share them.
	id := strings.TrimPrefix(filepath.Base(dir), "nodestack-")
	s := &Stack{
		NodeName: o.NodeName, Dir: dir, PodSubnet: o.PodSubnet, ImageRefs: map[string]string{},
		bin: bin, cgroupRoot: "/nodestack-" + id, bridge: "ns" + shorten(id, 10),
		socket: filepath.Join(dir, "containerd.sock"),
	}
	if s.NodeName == "" {
		s.NodeName = "nodestack-node"
	}
	if s.PodSubnet == "" {
		s.PodSubnet = "10.244.0.0/24"
	}
	if s.certs, err = writeKubeletClientCerts(dir); err != nil {
		return nil, errors.Join(err, os.RemoveAll(dir))
	}
	s.apiserverCertDir = filepath.Join(dir, "apiserver")
	if err := os.MkdirAll(s.apiserverCertDir, 0o700); err != nil {
		return nil, errors.Join(err, os.RemoveAll(dir))
	}
	if s.servingCA, err = writeAPIServerCerts(s.apiserverCertDir, nodeIPs()); err != nil {
		return nil, errors.Join(err, os.RemoveAll(dir))
	}
	return s, nil
}

func shorten(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// apiserverFlags are what a real cluster's apiserver has and envtest's
// lacks: the Node authorizer and NodeRestriction (the kubelet acts as
// system:node:<name>), the ServiceAccount admission plugin (pods get their
// projected tokens; envtest disables it), and the client certificate it
// shows the kubelet for logs and exec.
func (s *Stack) apiserverFlags() map[string][]string {
	flags := map[string][]string{
		"authorization-mode":         {"Node,RBAC"},
		"enable-admission-plugins":   {"NodeRestriction"},
		"disable-admission-plugins":  nil,
		"kubelet-client-certificate": {s.certs.CertFile},
		"kubelet-client-key":         {s.certs.KeyFile},
		// The node's Hostname address is its name, which no DNS resolves
		// here; kubeadm prefers InternalIP too.
		"kubelet-preferred-address-types": {"InternalIP,ExternalIP,Hostname"},
	}
	// The kubernetes Service's endpoint is the advertised address: on
	// loopback, as envtest has it, kube-proxy has nowhere to send pods'
	// connections. envtest's own clients keep dialing 127.0.0.1.
	if ips := nodeIPs(); len(ips) > 0 {
		flags["advertise-address"] = []string{ips[0].String()}
		flags["bind-address"] = []string{"0.0.0.0"}
	}
	return flags
}

// start runs the node's processes in dependency order.
func (s *Stack) start(o Options) error {
	var err error
	if s.cgroupMounts, err = cgroupMounts(); err != nil {
		return err
	}
	if s.nftBefore, err = nftTables(); err != nil {
		return err
	}
	s.sysctls = readSysctls(sysctlsKubeletSets)
	if err := writeSysctls(s.Dir, s.sysctls); err != nil {
		return err
	}
	if err := createCgroup(s.cgroupMounts, s.cgroupRoot+"/runtime"); err != nil {
		return err
	}
	if err := s.startContainerd(); err != nil {
		return err
	}
	if err := s.importImages(append([]string{filepath.Join(s.bin, "node-images", "pause.tar")}, o.Images...)); err != nil {
		return err
	}
	if err := s.writeCNIConfig(); err != nil {
		return err
	}
	if err := s.startControllerManager(); err != nil {
		return err
	}
	if err := s.startScheduler(); err != nil {
		return err
	}
	if err := s.startKubelet(o.Taints); err != nil {
		return err
	}
	if err := s.startKubeProxy(); err != nil {
		return err
	}
	return s.waitNodeReady(2 * time.Minute)
}

// kubeconfig writes a kubeconfig for user in groups and returns its path.
func (s *Stack) kubeconfig(file, user string, groups ...string) (string, error) {
	raw, err := s.ControlPlane.UserKubeconfig(user, groups...)
	if err != nil {
		return "", err
	}
	path := filepath.Join(s.Dir, file)
	return path, os.WriteFile(path, raw, 0o600)
}

func (s *Stack) startContainerd() error {
	pause, err := archiveReference(filepath.Join(s.bin, "node-images", "pause.tar"))
	if err != nil {
		return err
	}
	p := paths{Bin: s.bin, Dir: s.Dir, ContainerdSocket: s.socket, CNIConfDir: filepath.Join(s.Dir, "cni", "net.d"), PauseImage: pause}
	configPath := filepath.Join(s.Dir, "containerd.toml")
	if err := os.WriteFile(configPath, []byte(containerdConfig(p)), 0o644); err != nil {
		return err
	}
	// containerd finds its shim on PATH; the shim runs runc by the
	// configured path.
	proc, err := startProcess(s.Dir, "containerd", filepath.Join(s.bin, "containerd"),
		[]string{"--config", configPath, "--log-level", "info"}, []string{"PATH=" + s.bin + ":" + os.Getenv("PATH")})
	if err != nil {
		return err
	}
	s.processes, s.containerd = append(s.processes, proc), proc
	// Into the stack's cgroup before it starts any shim: the shims and
	// the containers' processes it starts outside pod cgroups stay in the
	// tree Stop kills.
	if err := joinCgroup(s.cgroupMounts, s.cgroupRoot+"/runtime", proc.cmd.Process.Pid); err != nil {
		return err
	}
	return poll(30*time.Second, "containerd to serve "+s.socket, proc, func() (bool, error) {
		_, err := run(filepath.Join(s.bin, "ctr"), "--address", s.socket, "version")
		return err == nil, nil
	})
}

// importImages imports each archive into containerd's k8s.io namespace,
// where the CRI plugin (the kubelet's view) finds images, unpacked for the
// native snapshotter.
func (s *Stack) importImages(archives []string) error {
	for _, archive := range archives {
		ref, err := archiveReference(archive)
		if err != nil {
			return err
		}
		if _, err := run(filepath.Join(s.bin, "ctr"), "--address", s.socket, "--namespace", "k8s.io",
			"images", "import", "--snapshotter", "native", "--local", archive); err != nil {
			return fmt.Errorf("import %s: %w", archive, err)
		}
		s.ImageRefs[archive] = ref
	}
	return nil
}

// archiveReference reads the image name from an OCI archive's index.json.
func archiveReference(archive string) (string, error) {
	index, err := readTarFile(archive, "index.json")
	if err != nil {
		return "", err
	}
	ref, err := imageReference(index)
	if err != nil {
		return "", fmt.Errorf("%s: %w", archive, err)
	}
	return ref, nil
}

func (s *Stack) writeCNIConfig() error {
	raw, err := cniConfig(s.bridge, s.PodSubnet, filepath.Join(s.Dir, "cni", "ipam"))
	if err != nil {
		return err
	}
	dir := filepath.Join(s.Dir, "cni", "net.d")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "10-nodestack.conflist"), raw, 0o644)
}

// startControllerManager runs kube-controller-manager with the controllers
// a node's workloads need: service accounts (pods need their namespace's
// default one), the CA bundle their tokens' projected volumes read, endpoint
// slices (kube-proxy's input), the workload controllers, node lifecycle
// (taints a node that stops reporting), garbage collection and namespaces.
func (s *Stack) startControllerManager() error {
	caFile := filepath.Join(s.Dir, "apiserver-ca.crt")
	if err := os.WriteFile(caFile, s.ControlPlane.Config.CAData, 0o644); err != nil {
		return err
	}
	controllers := []string{
		"serviceaccount", "root-ca-cert-publisher", "endpointslice", "endpointslicemirroring",
		"daemonset", "deployment", "replicaset", "statefulset", "job", "disruption",
		"nodelifecycle", "podgc", "garbagecollector", "namespace", "clusterrole-aggregation",
	}
	proc, err := startProcess(s.Dir, "kube-controller-manager", filepath.Join(s.bin, "kube-controller-manager"), []string{
		"--kubeconfig=" + s.ControlPlane.Kubeconfig,
		"--controllers=" + strings.Join(controllers, ","),
		"--root-ca-file=" + caFile,
		"--leader-elect=false",
		"--secure-port=0",
		"--authentication-skip-lookup=true",
	}, nil)
	if err != nil {
		return err
	}
	s.processes = append(s.processes, proc)
	return nil
}

// startScheduler runs kube-scheduler as system:kube-scheduler, whose
// bootstrap RBAC roles every apiserver has.
func (s *Stack) startScheduler() error {
	kubeconfig, err := s.kubeconfig("scheduler.kubeconfig", "system:kube-scheduler")
	if err != nil {
		return err
	}
	proc, err := startProcess(s.Dir, "kube-scheduler", filepath.Join(s.bin, "kube-scheduler"), []string{
		"--kubeconfig=" + kubeconfig, "--leader-elect=false", "--secure-port=0",
	}, nil)
	if err != nil {
		return err
	}
	s.processes = append(s.processes, proc)
	return nil
}

func (s *Stack) startKubelet(taints []corev1.Taint) error {
	kubeconfig, err := s.kubeconfig("kubelet.kubeconfig", "system:node:"+s.NodeName, "system:nodes")
	if err != nil {
		return err
	}
	port, err := freePort()
	if err != nil {
		return err
	}
	healthz, err := freePort()
	if err != nil {
		return err
	}
	var taintList []map[string]string
	for _, taint := range taints {
		taintList = append(taintList, map[string]string{"key": taint.Key, "value": taint.Value, "effect": string(taint.Effect)})
	}
	raw, err := kubeletConfig(kubeletSettings{
		CgroupRoot: s.cgroupRoot, ContainerdSocket: s.socket, ClientCAFile: s.certs.CAFile,
		Port: port, HealthzPort: healthz, PodLogsDir: filepath.Join(s.Dir, "pod-logs"), Taints: taintList,
	})
	if err != nil {
		return err
	}
	configPath := filepath.Join(s.Dir, "kubelet.yaml")
	if err := os.WriteFile(configPath, raw, 0o644); err != nil {
		return err
	}
	if err := createCgroup(s.cgroupMounts, s.cgroupRoot); err != nil {
		return err
	}
	proc, err := startProcess(s.Dir, "kubelet", filepath.Join(s.bin, "kubelet"), []string{
		"--config=" + configPath,
		"--kubeconfig=" + kubeconfig,
		"--root-dir=" + filepath.Join(s.Dir, "kubelet"),
		"--cert-dir=" + filepath.Join(s.Dir, "kubelet", "pki"),
		"--hostname-override=" + s.NodeName,
		"--v=2",
	}, []string{"PATH=" + s.bin + ":" + os.Getenv("PATH")})
	if err != nil {
		return err
	}
	s.processes = append(s.processes, proc)
	return nil
}

// startKubeProxy runs kube-proxy as system:kube-proxy (bound to the
// bootstrap role system:node-proxier).
func (s *Stack) startKubeProxy() error {
	kubeconfig, err := s.kubeconfig("kube-proxy.kubeconfig", "system:kube-proxy")
	if err != nil {
		return err
	}
	healthz, err := freePort()
	if err != nil {
		return err
	}
	metrics, err := freePort()
	if err != nil {
		return err
	}
	raw, err := kubeProxyConfig(kubeconfig, s.NodeName, s.PodSubnet, healthz, metrics)
	if err != nil {
		return err
	}
	s.proxyConfig = filepath.Join(s.Dir, "kube-proxy.yaml")
	if err := os.WriteFile(s.proxyConfig, raw, 0o644); err != nil {
		return err
	}
	proc, err := startProcess(s.Dir, "kube-proxy", filepath.Join(s.bin, "kube-proxy"),
		[]string{"--config=" + s.proxyConfig, "--v=2"}, nil)
	if err != nil {
		return err
	}
	s.processes, s.kubeProxy = append(s.processes, proc), proc
	return nil
}

// waitNodeReady waits for the kubelet to register the node and report it
// Ready (which takes the runtime and the CNI config).
func (s *Stack) waitNodeReady(timeout time.Duration) error {
	kubelet := s.processes[len(s.processes)-2]
	return poll(timeout, "node "+s.NodeName+" Ready", kubelet, func() (bool, error) {
		node := &corev1.Node{}
		if err := s.ControlPlane.Client.Get(context.Background(), client.ObjectKey{Name: s.NodeName}, node); err != nil {
			return false, nil //nolint:nilerr // not registered yet
		}
		for _, c := range node.Status.Conditions {
			if c.Type == corev1.NodeReady {
				return c.Status == corev1.ConditionTrue, nil
			}
		}
		return false, nil
	})
}

// poll calls done every 200 ms until it says true, fails, the watched
// process exits (its log's end then in the error) or timeout passes.
func poll(timeout time.Duration, what string, watched *process, done func() (bool, error)) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	err := wait.PollUntilContextCancel(ctx, 200*time.Millisecond, true, func(context.Context) (bool, error) {
		if watched != nil && !watched.alive() {
			return false, fmt.Errorf("%s exited", watched.name)
		}
		return done()
	})
	if err != nil {
		tail := ""
		if watched != nil {
			tail = "\n--- end of " + watched.log + " ---\n" + watched.tail()
		}
		return fmt.Errorf("waiting for %s: %w%s", what, err, tail)
	}
	return nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Stop ends the node and the control plane and removes everything the stack
// made. Every step runs whatever failed before it; the errors are joined.
func (s *Stack) Stop() error {
	if s.stopped {
		return nil
	}
	s.stopped = true
	var errs []error
	// The controllers and the scheduler first, so that no DaemonSet or
	// ReplicaSet replaces the pods drainPods deletes; then the reverse of
	// start: kube-proxy, kubelet, containerd last (the kubelet tears pods
	// down through it).
	for _, p := range s.processes {
		if p.name == "kube-controller-manager" || p.name == "kube-scheduler" {
			errs = append(errs, p.stop(10*time.Second))
		}
	}
	if s.ControlPlane != nil && s.kubeProxy != nil {
		errs = append(errs, s.drainPods(60*time.Second))
	}
	for i := len(s.processes) - 1; i >= 0; i-- {
		errs = append(errs, s.processes[i].stop(10*time.Second))
	}
	if s.proxyConfig != "" {
		// kube-proxy --cleanup removes its nftables tables, as on a node
		// leaving a cluster.
		if _, err := run(filepath.Join(s.bin, "kube-proxy"), "--config="+s.proxyConfig, "--cleanup"); err != nil {
			errs = append(errs, err)
		}
	}
	if len(s.cgroupMounts) > 0 {
		errs = append(errs, killCgroupTree(s.cgroupMounts, s.cgroupRoot))
	}
	if s.Dir != "" {
		errs = append(errs, unmountAll(s.Dir))
	}
	errs = append(errs, deleteLink(s.bridge))
	if s.nftBefore != nil {
		errs = append(errs, deleteNewNftTables(s.nftBefore))
	}
	if len(s.cgroupMounts) > 0 {
		errs = append(errs, removeCgroupTree(s.cgroupMounts, s.cgroupRoot))
	}
	errs = append(errs, restoreSysctls(s.sysctls))
	if s.ControlPlane != nil {
		errs = append(errs, s.ControlPlane.Stop())
	}
	if s.Dir != "" && os.Getenv("NODESTACK_KEEP") == "" {
		errs = append(errs, os.RemoveAll(s.Dir))
	}
	return errors.Join(errs...)
}

// drainPods deletes every pod on the node and waits until the kubelet has
// stopped their sandboxes, so that the CNI plugins' DEL runs (addresses,
// veths, portmap rules) before the processes stop.
func (s *Stack) drainPods(timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	pods := &corev1.PodList{}
	if err := s.ControlPlane.Client.List(ctx, pods); err != nil {
		return fmt.Errorf("list pods to drain node %s: %w", s.NodeName, err)
	}
	zero := int64(0)
	for i := range pods.Items {
		pod := &pods.Items[i]
		if pod.Spec.NodeName != s.NodeName {
			continue
		}
		if err := s.ControlPlane.Client.Delete(ctx, pod, &client.DeleteOptions{GracePeriodSeconds: &zero}); client.IgnoreNotFound(err) != nil {
			return fmt.Errorf("delete pod %s/%s: %w", pod.Namespace, pod.Name, err)
		}
	}
	var tasks string
	err := wait.PollUntilContextCancel(ctx, 500*time.Millisecond, true, func(context.Context) (bool, error) {
		out, err := run(filepath.Join(s.bin, "ctr"), "--address", s.socket, "--namespace", "k8s.io", "tasks", "list", "--quiet")
		tasks = out
		return err == nil && strings.TrimSpace(out) == "", nil
	})
	if err != nil {
		return fmt.Errorf("drain node %s: containerd still runs tasks %q: %w", s.NodeName, tasks, err)
	}
	return nil
}

// PodLogs are a container's logs, read through the apiserver, which asks
// the kubelet (with its client certificate), as kubectl logs does.
func (s *Stack) PodLogs(ctx context.Context, namespace, pod, container string) (string, error) {
	clientset, err := s.clientset()
	if err != nil {
		return "", err
	}
	raw, err := clientset.CoreV1().Pods(namespace).GetLogs(pod, &corev1.PodLogOptions{Container: container}).DoRaw(ctx)
	if err != nil {
		return "", fmt.Errorf("logs of pod %s/%s: %w", namespace, pod, err)
	}
	return string(raw), nil
}

// Exec runs command in a container and returns its standard output and
// error, through the apiserver and the kubelet to containerd's streaming
// server, as kubectl exec does (WebSocket, falling back to SPDY).
func (s *Stack) Exec(ctx context.Context, namespace, pod, container string, command ...string) (string, string, error) {
	clientset, err := s.clientset()
	if err != nil {
		return "", "", err
	}
	request := clientset.CoreV1().RESTClient().Post().Resource("pods").Namespace(namespace).Name(pod).SubResource("exec").
		VersionedParams(&corev1.PodExecOptions{Container: container, Command: command, Stdout: true, Stderr: true}, clientgoscheme.ParameterCodec)
	websocket, err := remotecommand.NewWebSocketExecutor(s.ControlPlane.Config, "GET", request.URL().String())
	if err != nil {
		return "", "", fmt.Errorf("exec in pod %s/%s: %w", namespace, pod, err)
	}
	spdy, err := remotecommand.NewSPDYExecutor(s.ControlPlane.Config, "POST", request.URL())
	if err != nil {
		return "", "", fmt.Errorf("exec in pod %s/%s: %w", namespace, pod, err)
	}
	executor, err := remotecommand.NewFallbackExecutor(websocket, spdy, httpstream.IsUpgradeFailure)
	if err != nil {
		return "", "", fmt.Errorf("exec in pod %s/%s: %w", namespace, pod, err)
	}
	var stdout, stderr bytes.Buffer
	if err := executor.StreamWithContext(ctx, remotecommand.StreamOptions{Stdout: &stdout, Stderr: &stderr}); err != nil {
		return stdout.String(), stderr.String(), fmt.Errorf("exec %v in pod %s/%s: %w", command, namespace, pod, err)
	}
	return stdout.String(), stderr.String(), nil
}

// Node is the node object as the apiserver has it.
func (s *Stack) Node(ctx context.Context) (*corev1.Node, error) {
	node := &corev1.Node{}
	if err := s.ControlPlane.Client.Get(ctx, client.ObjectKey{Name: s.NodeName}, node); err != nil {
		return nil, fmt.Errorf("node %s: %w", s.NodeName, err)
	}
	return node, nil
}

// Processes names each process the stack runs and says whether it is alive,
// for tests' failure messages.
func (s *Stack) Processes() map[string]bool {
	alive := map[string]bool{}
	for _, p := range s.processes {
		alive[p.name] = p.alive()
	}
	return alive
}

// Leftovers lists what of the stack is still on the host after Stop: none
// of it should be.
func (s *Stack) Leftovers() ([]string, error) {
	var left []string
	if pids := cgroupTreePids(s.cgroupMounts, s.cgroupRoot); len(pids) > 0 {
		left = append(left, fmt.Sprintf("processes %v in cgroup %s", pids, s.cgroupRoot))
	}
	for _, mount := range s.cgroupMounts {
		if _, err := os.Stat(filepath.Join(mount, s.cgroupRoot)); err == nil {
			left = append(left, "cgroup "+filepath.Join(mount, s.cgroupRoot))
		}
	}
	mounts, err := mountsUnder(s.Dir)
	if err != nil {
		return nil, err
	}
	for _, mount := range mounts {
		left = append(left, "mount "+mount)
	}
	if _, err := netlink.LinkByName(s.bridge); err == nil {
		left = append(left, "link "+s.bridge)
	}
	tables, err := leftNftTables(s.nftBefore)
	if err != nil {
		return nil, err
	}
	for _, table := range tables {
		left = append(left, "nftables table "+table)
	}
	if _, err := os.Stat(s.Dir); err == nil && os.Getenv("NODESTACK_KEEP") == "" {
		left = append(left, "directory "+s.Dir)
	}
	for name, value := range s.sysctls {
		if now := readSysctls([]string{name})[name]; now != value {
			left = append(left, fmt.Sprintf("sysctl %s=%s (was %s)", name, now, value))
		}
	}
	return left, nil
}
