package kubelet

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

// process is a Pod's running container.
type process struct {
	cmd  *exec.Cmd
	done chan struct{}
	err  error
	// stopping is closed when the node stops it on purpose.
	stopping chan struct{}
}

// stop sends SIGTERM and waits out the grace period, then kills.
func (p *process) stop(graceSeconds int64) {
	select {
	case <-p.stopping:
	default:
		close(p.stopping)
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(time.Duration(graceSeconds) * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

func (n *Node) reconcilePod(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	var pod corev1.Pod
	if err := n.client.Get(ctx, req.NamespacedName, &pod); err != nil {
		return reconcile.Result{}, client.IgnoreNotFound(err)
	}
	n.mu.Lock()
	p := n.processes[pod.UID]
	n.mu.Unlock()
	if !pod.DeletionTimestamp.IsZero() {
		return reconcile.Result{}, n.terminate(ctx, &pod, p)
	}
	if p != nil || pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
		return reconcile.Result{}, nil
	}
	return reconcile.Result{}, n.startPod(ctx, &pod)
}

// terminate stops the Pod's process and then lets the Pod go, as a kubelet
// confirms a graceful deletion.
func (n *Node) terminate(ctx context.Context, pod *corev1.Pod, p *process) error {
	if p != nil {
		grace := int64(30)
		if pod.DeletionGracePeriodSeconds != nil {
			grace = *pod.DeletionGracePeriodSeconds
		}
		p.stop(grace)
		n.mu.Lock()
		delete(n.processes, pod.UID)
		n.mu.Unlock()
		n.Logf("kubelet stand-in: stopped Pod %s/%s", pod.Namespace, pod.Name)
	}
	return client.IgnoreNotFound(n.client.Delete(ctx, pod, client.GracePeriodSeconds(0), client.Preconditions{UID: &pod.UID}))
}

func (n *Node) startPod(ctx context.Context, pod *corev1.Pod) error {
	container := pod.Spec.Containers[0]
	image, ok := n.Images[container.Image]
	if !ok {
		return n.setPhase(ctx, pod, corev1.PodPending, "ErrImageNeverPull", fmt.Sprintf("image %s is not on the node", container.Image))
	}
	cmd, err := n.command(pod, container, image)
	if err != nil {
		return n.setPhase(ctx, pod, corev1.PodFailed, "CreateContainerError", err.Error())
	}
	if err := cmd.Start(); err != nil {
		return n.setPhase(ctx, pod, corev1.PodFailed, "StartError", err.Error())
	}
	p := &process{cmd: cmd, done: make(chan struct{}), stopping: make(chan struct{})}
	n.mu.Lock()
	n.processes[pod.UID] = p
	n.mu.Unlock()
	n.Logf("kubelet stand-in: started Pod %s/%s: %s", pod.Namespace, pod.Name, strings.Join(cmd.Args, " "))
	go n.wait(pod.DeepCopy(), p)
	return n.setPhase(ctx, pod, corev1.PodRunning, "", "")
}

// wait records how the process ended: a Job's Pod ends Succeeded or
// Failed; a long-running Pod's process ending by itself is a crash.
func (n *Node) wait(pod *corev1.Pod, p *process) {
	p.err = p.cmd.Wait()
	close(p.done)
	select {
	case <-p.stopping:
		return
	default:
	}
	ctx := context.Background()
	var latest corev1.Pod
	if err := n.client.Get(ctx, client.ObjectKeyFromObject(pod), &latest); err != nil {
		return
	}
	if p.err == nil {
		n.Logf("kubelet stand-in: Pod %s/%s exited 0", pod.Namespace, pod.Name)
		_ = n.setPhase(ctx, &latest, corev1.PodSucceeded, "Completed", "")
		return
	}
	n.Logf("kubelet stand-in: Pod %s/%s failed: %v", pod.Namespace, pod.Name, p.err)
	_ = n.setPhase(ctx, &latest, corev1.PodFailed, "Error", fmt.Sprintf("container exited: %v", p.err))
}

func (n *Node) setPhase(ctx context.Context, pod *corev1.Pod, phase corev1.PodPhase, reason, message string) error {
	pod.Status.Phase, pod.Status.Reason, pod.Status.Message = phase, reason, message
	if pod.Status.StartTime == nil {
		now := metav1.Now()
		pod.Status.StartTime = &now
	}
	return client.IgnoreNotFound(n.client.Status().Update(ctx, pod))
}

// command builds the container's process: the image's entrypoint (or the
// container's command) with its args and env, as its user, with its
// hostPath mounts, talking to the apiserver as its service account.
func (n *Node) command(pod *corev1.Pod, container corev1.Container, image Image) (*exec.Cmd, error) {
	argv := image.Entrypoint
	if len(container.Command) > 0 {
		argv = container.Command
	}
	if len(argv) == 0 {
		return nil, errors.New("no entrypoint")
	}
	env, err := n.env(pod, container)
	if err != nil {
		return nil, err
	}
	argv = append([]string{filepath.Join(image.Root, argv[0])}, expandArgs(append(argv[1:], container.Args...), env)...)
	dir := filepath.Join(n.WorkDir, "pods")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	kubeconfig, err := n.serviceAccountKubeconfig(pod, filepath.Join(dir, pod.Name+".kubeconfig"))
	if err != nil {
		return nil, err
	}
	uid, gid, err := user(pod, container, image)
	if err != nil {
		return nil, err
	}
	mounts, err := n.hostMounts(pod, container)
	if err != nil {
		return nil, err
	}
	argv = wrap(argv, mounts, uid, gid, capabilities(container))
	log, err := os.Create(filepath.Join(dir, pod.Name+".log"))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(env, "KUBECONFIG="+kubeconfig)
	cmd.Dir = "/"
	cmd.Stdout, cmd.Stderr = log, log
	return cmd, nil
}

// serviceAccountKubeconfig writes a kubeconfig that impersonates the Pod's
// service account with the extra claims of a token the kubelet got bound
// to this Pod and node.
func (n *Node) serviceAccountKubeconfig(pod *corev1.Pod, path string) (string, error) {
	config, err := clientcmd.LoadFromFile(n.Kubeconfig)
	if err != nil {
		return "", fmt.Errorf("kubeconfig %s: %w", n.Kubeconfig, err)
	}
	account := pod.Spec.ServiceAccountName
	if account == "" {
		account = "default"
	}
	for _, auth := range config.AuthInfos {
		auth.Impersonate = fmt.Sprintf("system:serviceaccount:%s:%s", pod.Namespace, account)
		auth.ImpersonateGroups = []string{"system:serviceaccounts", "system:serviceaccounts:" + pod.Namespace, "system:authenticated"}
		auth.ImpersonateUserExtra = map[string][]string{
			"authentication.kubernetes.io/node-name": {n.Name},
			"authentication.kubernetes.io/pod-name":  {pod.Name},
			"authentication.kubernetes.io/pod-uid":   {string(pod.UID)},
		}
	}
	if err := clientcmd.WriteToFile(*config, path); err != nil {
		return "", fmt.Errorf("pod %s/%s: write kubeconfig %s: %w", pod.Namespace, pod.Name, path, err)
	}
	return path, os.Chmod(path, 0o644) // readable by a non-root container user
}

// env resolves the container's environment: values and the downward API
// fields the chart uses.
func (n *Node) env(pod *corev1.Pod, container corev1.Container) ([]string, error) {
	// What container runtimes set in every container (containerd: HOME=/
	// where the image's user has no home).
	env := []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOSTNAME=" + pod.Name, "HOME=/"}
	for _, e := range container.Env {
		value := e.Value
		if e.ValueFrom != nil {
			if e.ValueFrom.FieldRef == nil {
				return nil, fmt.Errorf("env %s: only fieldRef sources are supported by the stand-in", e.Name)
			}
			switch e.ValueFrom.FieldRef.FieldPath {
			case "spec.nodeName":
				value = n.Name
			case "metadata.namespace":
				value = pod.Namespace
			case "metadata.name":
				value = pod.Name
			case "status.podIP":
				value = PodIP
			default:
				return nil, fmt.Errorf("env %s: field %s not supported by the stand-in", e.Name, e.ValueFrom.FieldRef.FieldPath)
			}
		}
		env = append(env, e.Name+"="+value)
	}
	return env, nil
}

// PodIP is every Pod's IP here: the processes share this machine's
// network, so a Pod listening on its IP listens on loopback.
const PodIP = "127.0.0.1"

// expandArgs replaces $(NAME) in args with the container's variable NAME,
// as the kubelet does (the chart's args use $(POD_IP)); a name the
// container does not define stays as written, as in the kubelet. The
// kubelet's $$ escape is not needed by the chart and not handled.
func expandArgs(args, env []string) []string {
	var pairs []string
	for _, variable := range env {
		if name, value, ok := strings.Cut(variable, "="); ok {
			pairs = append(pairs, "$("+name+")", value)
		}
	}
	replacer := strings.NewReplacer(pairs...)
	expanded := make([]string, len(args))
	for i, arg := range args {
		expanded[i] = replacer.Replace(arg)
	}
	return expanded
}

// user is the container's, else the Pod's, else the image's user.
func user(pod *corev1.Pod, container corev1.Container, image Image) (uid, gid int64, err error) {
	uid, gid = -1, -1
	if sc := pod.Spec.SecurityContext; sc != nil {
		if sc.RunAsUser != nil {
			uid = *sc.RunAsUser
		}
		if sc.RunAsGroup != nil {
			gid = *sc.RunAsGroup
		}
	}
	if sc := container.SecurityContext; sc != nil {
		if sc.RunAsUser != nil {
			uid = *sc.RunAsUser
		}
		if sc.RunAsGroup != nil {
			gid = *sc.RunAsGroup
		}
	}
	imageUID, imageGID := int64(0), int64(0)
	if image.User != "" {
		parts := strings.SplitN(image.User, ":", 2)
		if imageUID, err = strconv.ParseInt(parts[0], 10, 64); err != nil {
			return 0, 0, fmt.Errorf("image user %q is not numeric", image.User)
		}
		imageGID = imageUID
		if len(parts) == 2 {
			if imageGID, err = strconv.ParseInt(parts[1], 10, 64); err != nil {
				return 0, 0, fmt.Errorf("image user %q is not numeric", image.User)
			}
		}
	}
	if uid < 0 {
		uid = imageUID
	}
	if gid < 0 {
		gid = imageGID
	}
	if sc := pod.Spec.SecurityContext; sc != nil && sc.RunAsNonRoot != nil && *sc.RunAsNonRoot && uid == 0 {
		return 0, 0, errors.New("runAsNonRoot, but the container would run as root")
	}
	return uid, gid, nil
}

type mount struct {
	host, path string
	readOnly   bool
	// recursive binds the host path with its submounts (a runtime's rbind),
	// read-only all the way down when readOnly: recursiveReadOnly asks for it.
	recursive bool
}

// hostMounts are the container's mounts of hostPath volumes. Their mount
// points are made on this machine (and removed by Stop).
func (n *Node) hostMounts(pod *corev1.Pod, container corev1.Container) ([]mount, error) {
	hostPaths := map[string]string{}
	for _, v := range pod.Spec.Volumes {
		if v.HostPath != nil {
			hostPaths[v.Name] = v.HostPath.Path
		}
	}
	var mounts []mount
	for _, m := range container.VolumeMounts {
		host, ok := hostPaths[m.Name]
		if !ok {
			continue // the service account token and the like: the kubeconfig stands in
		}
		if err := n.makeMountPoint(m.MountPath); err != nil {
			return nil, err
		}
		recursive := m.RecursiveReadOnly != nil && *m.RecursiveReadOnly != corev1.RecursiveReadOnlyDisabled
		mounts = append(mounts, mount{host: host, path: m.MountPath, readOnly: m.ReadOnly, recursive: recursive})
	}
	return mounts, nil
}

func (n *Node) makeMountPoint(path string) error {
	var missing []string
	for dir := path; dir != "/"; dir = filepath.Dir(dir) {
		if _, err := os.Stat(dir); err == nil {
			break
		}
		missing = append([]string{dir}, missing...)
	}
	for _, dir := range missing {
		if err := os.Mkdir(dir, 0o755); err != nil {
			return err
		}
		n.mu.Lock()
		n.createdDirs = append(n.createdDirs, dir)
		n.mu.Unlock()
	}
	return nil
}

// runtimeDefaultCapabilities are what containerd and CRI-O give a
// container unless its securityContext says otherwise.
var runtimeDefaultCapabilities = []string{"CHOWN", "DAC_OVERRIDE", "FSETID", "FOWNER", "MKNOD", "NET_RAW",
	"SETGID", "SETUID", "SETFCAP", "SETPCAP", "NET_BIND_SERVICE", "SYS_CHROOT", "KILL", "AUDIT_WRITE"}

// capabilities is the container's capability set as a runtime computes it
// from securityContext.capabilities (drop, then add), or nil when the
// container sets none: the process then keeps this test process's, so
// tests without a securityContext run as before.
func capabilities(container corev1.Container) []string {
	sc := container.SecurityContext
	if sc == nil || sc.Capabilities == nil {
		return nil
	}
	caps := slices.Clone(runtimeDefaultCapabilities)
	for _, drop := range sc.Capabilities.Drop {
		if drop == "ALL" {
			caps = nil
			break
		}
		caps = slices.DeleteFunc(caps, func(c string) bool { return c == string(drop) })
	}
	for _, add := range sc.Capabilities.Add {
		if !slices.Contains(caps, string(add)) {
			caps = append(caps, string(add))
		}
	}
	return caps
}

// wrap runs argv in a private mount namespace with the bind mounts, then
// as uid:gid with only caps (nil: unchanged): unshare and mount need root,
// so the user and capabilities change last.
func wrap(argv []string, mounts []mount, uid, gid int64, caps []string) []string {
	if len(mounts) == 0 && uid == 0 && caps == nil {
		return argv
	}
	var script []string
	for _, m := range mounts {
		switch {
		case m.recursive:
			// The mount and every submount (findmnt -R lists them) read-only,
			// as mount_setattr(AT_RECURSIVE) makes them in a runtime.
			script = append(script, fmt.Sprintf("mount --rbind %q %q", m.host, m.path),
				fmt.Sprintf(`for m in $(findmnt -R -n -r -o TARGET %q); do mount -o remount,bind,ro "$m"; done`, m.path))
		case m.readOnly:
			script = append(script, fmt.Sprintf("mount --bind %q %q", m.host, m.path), fmt.Sprintf("mount -o remount,bind,ro %q", m.path))
		default:
			script = append(script, fmt.Sprintf("mount --bind %q %q", m.host, m.path))
		}
	}
	var privs []string
	if uid != 0 {
		privs = append(privs, fmt.Sprintf("--reuid=%d --regid=%d --clear-groups", uid, gid))
	}
	if caps != nil {
		bounding := "-all"
		for _, c := range caps {
			bounding += ",+" + strings.ToLower(c)
		}
		privs = append(privs, "--inh-caps=-all --bounding-set="+bounding)
	}
	run := `exec "$@"`
	if len(privs) > 0 {
		run = fmt.Sprintf(`exec setpriv %s -- "$@"`, strings.Join(privs, " "))
	}
	script = append(script, run)
	return append([]string{"unshare", "--mount", "--propagation", "private", "--", "/bin/sh", "-ec", strings.Join(script, " && "), "sh"}, argv...)
}
