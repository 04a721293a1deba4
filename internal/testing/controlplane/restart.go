package controlplane

import (
	"bytes"
	"context"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"k8s.io/client-go/discovery"
)

// RestartAPIServer stops this control plane's kube-apiserver with SIGTERM
// (SIGKILL after 10 s), leaves it down for down, and starts the same binary with the same arguments again: same port,
// certificates, users and etcd, as when a real apiserver restarts. The
// caller must end the returned process before Stop (which no longer owns
// it). It returns once the new apiserver answers /readyz.
func (cp *ControlPlane) RestartAPIServer(down time.Duration) (*exec.Cmd, error) {
	pid, args, err := cp.apiserverProcess()
	if err != nil {
		return nil, err
	}
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		return nil, fmt.Errorf("stop kube-apiserver: %w", err)
	}
	// A loaded apiserver drains its requests for longer than a test should
	// wait (over a minute here); after 10 s it is killed, as a kubelet does
	// after the grace period.
	for deadline, killed := time.Now().Add(10*time.Second), false; processAlive(pid); {
		if !killed && time.Now().After(deadline) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
			killed = true
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(down)
	cmd := exec.Command(args[0], args[1:]...)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start kube-apiserver again: %w", err)
	}
	go func() { _ = cmd.Wait() }()
	if err := cp.waitReady(time.Minute); err != nil {
		_ = cmd.Process.Kill()
		return nil, err
	}
	return cmd, nil
}

// apiserverProcess finds the kube-apiserver serving this control plane's
// port and reads its command line.
func (cp *ControlPlane) apiserverProcess() (int, []string, error) {
	host, err := url.Parse(cp.Config.Host)
	if err != nil {
		return 0, nil, fmt.Errorf("apiserver address %q: %w", cp.Config.Host, err)
	}
	flag := "--secure-port=" + host.Port()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0, nil, err
	}
	for _, entry := range entries {
		pid, err := strconv.Atoi(entry.Name())
		if err != nil {
			continue
		}
		raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err != nil {
			continue
		}
		args := strings.Split(string(bytes.TrimRight(raw, "\x00")), "\x00")
		if len(args) > 1 && strings.HasSuffix(args[0], "kube-apiserver") && containsArg(args, flag) {
			return pid, args, nil
		}
	}
	return 0, nil, fmt.Errorf("no kube-apiserver with %s", flag)
}

func containsArg(args []string, want string) bool {
	for _, arg := range args {
		if arg == want {
			return true
		}
	}
	return false
}

func processAlive(pid int) bool {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// A zombie has exited; its parent has not reaped it yet.
	fields := strings.Fields(string(raw[bytes.LastIndexByte(raw, ')')+1:]))
	return len(fields) > 0 && fields[0] != "Z"
}

func (cp *ControlPlane) waitReady(timeout time.Duration) error {
	client, err := discovery.NewDiscoveryClientForConfig(cp.Config)
	if err != nil {
		return fmt.Errorf("discovery client for %s: %w", cp.Config.Host, err)
	}
	deadline := time.Now().Add(timeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err := client.RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
		cancel()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("kube-apiserver not ready %s after its restart: %w", timeout, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
