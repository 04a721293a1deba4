package scale

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jianfenliu/vmoperator/internal/testing/controlplane"
)

// BuildController builds cmd/vmop-controller into dir and returns its path.
func BuildController(dir string) (string, error) {
	binary := filepath.Join(dir, "vmop-controller")
	cmd := exec.Command("go", "build", "-o", binary, "./cmd/vmop-controller")
	cmd.Dir = controlplane.RepoRoot()
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build vmop-controller: %w\n%s", err, out)
	}
	return binary, nil
}

// Controller is one running vmop-controller process.
type Controller struct {
	cmd    *exec.Cmd
	exited chan struct{}
	log    *os.File
}

// ControllerFlags are the flags every controller of these runs gets: no
// metrics or probe ports (several replicas share the host), leader election
// in the agents' namespace (production timing), and the given extra flags.
func ControllerFlags(extra ...string) []string {
	return append([]string{
		"--metrics-bind-address=0",
		"--health-probe-bind-address=0",
		"--leader-elect=true",
		"--leader-election-namespace=" + LeaseNamespace,
		"--agent-lease-namespace=" + LeaseNamespace,
	}, extra...)
}

// ShortLeaderElection are leader-election flags for the fault tests: a
// killed leader is replaced within about 8 s instead of 15.
var ShortLeaderElection = []string{
	"--leader-elect-lease-duration=8s",
	"--leader-elect-renew-deadline=6s",
	"--leader-elect-retry-period=1s",
}

// StartController runs binary with kubeconfig and args, its output
// appended to logPath.
func StartController(binary, kubeconfig, logPath string, args ...string) (*Controller, error) {
	return StartControllerWithEnv(binary, kubeconfig, logPath, nil, args...)
}

// StartControllerWithEnv is StartController with extra environment
// variables ("NAME=value") for the controller alone.
func StartControllerWithEnv(binary, kubeconfig, logPath string, extraEnv []string, args ...string) (*Controller, error) {
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(binary, args...)
	cmd.Env = append(append(os.Environ(), "KUBECONFIG="+kubeconfig), extraEnv...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("start %s: %w", binary, err)
	}
	c := &Controller{cmd: cmd, exited: make(chan struct{}), log: logFile}
	go func() {
		_ = cmd.Wait()
		logFile.Close()
		close(c.exited)
	}()
	return c, nil
}

// Kill ends the process with SIGKILL, as the kernel's OOM killer or a node
// failure would, and waits until it is gone.
func (c *Controller) Kill() { c.signal(syscall.SIGKILL) }

// Stop ends the process with SIGTERM, as the kubelet does, and waits.
func (c *Controller) Stop() { c.signal(syscall.SIGTERM) }

func (c *Controller) signal(sig syscall.Signal) {
	select {
	case <-c.exited:
		return
	default:
	}
	_ = c.cmd.Process.Signal(sig)
	select {
	case <-c.exited:
	case <-time.After(30 * time.Second):
		_ = c.cmd.Process.Kill()
		<-c.exited
	}
}

// Exited says whether the process has ended.
func (c *Controller) Exited() bool {
	select {
	case <-c.exited:
		return true
	default:
		return false
	}
}

// Memory is the process's resident memory now and at its peak, in bytes,
// as the kernel counts them (VmRSS and VmHWM).
func (c *Controller) Memory() (current, peak uint64, err error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", c.cmd.Process.Pid))
	if err != nil {
		return 0, 0, err
	}
	return parseMemory(raw)
}

// CPUSeconds is the CPU time the process has used so far (user and system).
func (c *Controller) CPUSeconds() (float64, error) {
	return processCPUSeconds(c.cmd.Process.Pid)
}

// processCPUSeconds reads utime and stime from /proc/PID/stat (clock ticks
// of 1/100 s, USER_HZ on Linux).
func processCPUSeconds(pid int) (float64, error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name may hold spaces: fields start after its ')'.
	fields := strings.Fields(string(raw[bytes.LastIndexByte(raw, ')')+1:]))
	if len(fields) < 13 {
		return 0, fmt.Errorf("short /proc/%d/stat", pid)
	}
	utime, err1 := strconv.ParseUint(fields[11], 10, 64)
	stime, err2 := strconv.ParseUint(fields[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	return float64(utime+stime) / 100, nil
}

// ProcessCPUSeconds is the CPU time used so far by every process whose
// command name is name (for example kube-apiserver), summed.
func ProcessCPUSeconds(name string) float64 {
	entries, _ := os.ReadDir("/proc")
	total := 0.0
	for _, entry := range entries {
		pid, err := strconv.Atoi(entry.Name())
		if err != nil {
			continue
		}
		comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
		if err != nil || strings.TrimSpace(string(comm)) != name {
			continue
		}
		if seconds, err := processCPUSeconds(pid); err == nil {
			total += seconds
		}
	}
	return total
}

// ResetPeak restarts the kernel's peak-RSS count (VmHWM) from the current
// RSS, so that a later peak is the peak of what followed.
func (c *Controller) ResetPeak() error {
	return os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", c.cmd.Process.Pid), []byte("5"), 0o200)
}

func parseMemory(status []byte) (current, peak uint64, err error) {
	scanner := bufio.NewScanner(bytes.NewReader(status))
	for scanner.Scan() {
		field, value, ok := strings.Cut(scanner.Text(), ":")
		if !ok || (field != "VmRSS" && field != "VmHWM") {
			continue
		}
		kib, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(value), " kB"), 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("%s: %w", field, err)
		}
		if field == "VmRSS" {
			current = kib * 1024
		} else {
			peak = kib * 1024
		}
	}
	if current == 0 || peak == 0 {
		return 0, 0, errors.New("no VmRSS/VmHWM in /proc status")
	}
	return current, peak, nil
}
