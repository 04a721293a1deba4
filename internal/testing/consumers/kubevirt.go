package consumers

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kubevirtv1 "kubevirt.io/api/core/v1"
)

// KubeVirtVerdict is KubeVirt's judgement of one VirtualMachine.
type KubeVirtVerdict struct {
	Namespace string               `json:"namespace"`
	Name      string               `json:"name"`
	Causes    []metav1.StatusCause `json:"causes"`
}

// KubeVirtAdmitBinary is bin/kubevirt-admit (make builds it from
// test/tools/kubevirt-admit, KubeVirt v1.8.0's own admitters).
func KubeVirtAdmitBinary() (string, error) {
	root, err := repoRoot()
	if err != nil {
		return "", err
	}
	path := filepath.Join(root, "bin", "kubevirt-admit")
	if _, err := os.Stat(path); err != nil {
		return "", fmt.Errorf("%w (make test builds it from test/tools/kubevirt-admit)", err)
	}
	return path, nil
}

// KubeVirtAdmitter is one running bin/kubevirt-admit, serving requests
// until Close: starting one costs over 3 s (KubeVirt's packages
// initialising), so callers keep one per test process. Safe for concurrent use.
type KubeVirtAdmitter struct {
	mu     sync.Mutex
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	out    *json.Decoder
	stderr *bytes.Buffer
}

// StartKubeVirtAdmitter starts bin/kubevirt-admit.
func StartKubeVirtAdmitter() (*KubeVirtAdmitter, error) {
	binary, err := KubeVirtAdmitBinary()
	if err != nil {
		return nil, err
	}
	a := &KubeVirtAdmitter{cmd: exec.Command(binary), stderr: &bytes.Buffer{}}
	a.cmd.Stderr = a.stderr
	if a.stdin, err = a.cmd.StdinPipe(); err != nil {
		return nil, fmt.Errorf("stdin of %s: %w", binary, err)
	}
	stdout, err := a.cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("stdout of %s: %w", binary, err)
	}
	a.out = json.NewDecoder(stdout)
	if err := a.cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting kubevirt-admit: %w", err)
	}
	return a, nil
}

// Admit runs KubeVirt's validation on vms and returns its verdicts, in
// order; an error means the validation could not run, not that it refused.
func (a *KubeVirtAdmitter) Admit(vms []kubevirtv1.VirtualMachine) ([]KubeVirtVerdict, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if vms == nil {
		vms = []kubevirtv1.VirtualMachine{}
	}
	if err := json.NewEncoder(a.stdin).Encode(vms); err != nil {
		return nil, fmt.Errorf("kubevirt-admit: %w: %s", err, a.stderr.String())
	}
	var verdicts []KubeVirtVerdict
	if err := a.out.Decode(&verdicts); err != nil {
		return nil, fmt.Errorf("kubevirt-admit: %w: %s", err, a.stderr.String())
	}
	if len(verdicts) != len(vms) {
		return nil, fmt.Errorf("kubevirt-admit: %d verdicts for %d VMs", len(verdicts), len(vms))
	}
	return verdicts, nil
}

// Close ends the process.
func (a *KubeVirtAdmitter) Close() error {
	a.stdin.Close()
	if err := a.cmd.Wait(); err != nil {
		return fmt.Errorf("%s: %w: %s", a.cmd.Path, err, a.stderr.String())
	}
	return nil
}

// RefusedVMs is an error listing each refused VM with KubeVirt's exact
// causes, or nil when KubeVirt admits them all.
func RefusedVMs(verdicts []KubeVirtVerdict) error {
	var errs []error
	for _, v := range verdicts {
		if len(v.Causes) == 0 {
			continue
		}
		var causes []string
		for _, c := range v.Causes {
			causes = append(causes, fmt.Sprintf("%s: %s (%s)", c.Field, c.Message, c.Type))
		}
		errs = append(errs, fmt.Errorf("KubeVirt refuses VM %s/%s: %s", v.Namespace, v.Name, strings.Join(causes, "; ")))
	}
	return errors.Join(errs...)
}
