package nodestack

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

// process is one command the stack started, its output in a log file.
type process struct {
	name    string
	cmd     *exec.Cmd
	log     string
	exited  chan error
	stopped bool
}

// startProcess runs path with args, writing its output to dir/<name>.log.
// Each process gets a process group of its own, so that stopping it ends
// what it started in the foreground too (kube-proxy's nft, say), and so
// that a test binary's interrupt does not reach it before its cleanup runs.
func startProcess(dir, name, path string, args []string, env []string) (*process, error) {
	logPath := filepath.Join(dir, name+".log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("log of %s: %w", name, err)
	}
	cmd := exec.Command(path, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.Env = append(os.Environ(), env...)
	// Pdeathsig: when the test binary dies without Stop (go test -timeout,
	// SIGKILL), its processes die with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &process{name: name, cmd: cmd, log: logPath, exited: make(chan error, 1)}
	go func() { p.exited <- cmd.Wait(); close(p.exited); logFile.Close() }()
	return p, nil
}

// alive says whether the process is still running.
func (p *process) alive() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// stop sends SIGTERM to the process group and SIGKILL after grace. An exit
// caused by either signal is no error.
func (p *process) stop(grace time.Duration) error {
	if p.stopped {
		return nil
	}
	p.stopped = true
	if !p.alive() {
		if state := p.cmd.ProcessState; state != nil && !state.Success() {
			return fmt.Errorf("%s had exited with %v before it was stopped (log %s)", p.name, state, p.log)
		}
		return nil
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(grace):
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.exited
	}
	// Whatever it exits with once told to stop is no failure: the
	// scheduler, for one, exits 1 on SIGTERM without leader election.
	return nil
}

// tail is the end of the process' log, for error messages.
func (p *process) tail() string {
	return tailFile(p.log, 3000)
}

func tailFile(path string, n int64) string {
	raw, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	if int64(len(raw)) > n {
		raw = raw[int64(len(raw))-n:]
	}
	return string(raw)
}

// run runs a short command and returns its standard output, for ctr and
// kube-proxy --cleanup; its standard error goes into the error only (ctr
// warns there that cgroup v1 is deprecated on every call).
func run(path string, args ...string) (string, error) {
	cmd := exec.Command(path, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return string(out), fmt.Errorf("%s %v: %w: %s", filepath.Base(path), args, err, stderr.String())
	}
	return string(out), nil
}
