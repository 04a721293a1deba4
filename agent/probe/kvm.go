package probe

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
)

// KVMAPIVersion is the only KVM API version Linux has shipped since 2.6.22;
// any other answer means the device is not the KVM we know.
const KVMAPIVersion = 12

// kvmGetAPIVersion is _IO(KVMIO, 0x00) from linux/kvm.h; x/sys/unix does
// not export it.
const kvmGetAPIVersion = 0xAE00

// KVMProber reports the state of hardware virtualisation on the node.
type KVMProber interface {
	ProbeKVM() vmv1alpha1.KVMStatus
}

// KVM probes /dev/kvm, the kvm_intel/kvm_amd "nested" parameter and the CPU flags.
type KVM struct {
	devicePath string // usually /dev/kvm
	sysfsRoot  string // usually /sys
	procRoot   string // usually /proc
}

// NewKVM builds a KVM probe reading the given device and the given sysfs and procfs roots.
func NewKVM(devicePath, sysfsRoot, procRoot string) *KVM {
	return &KVM{devicePath: devicePath, sysfsRoot: sysfsRoot, procRoot: procRoot}
}

// ProbeKVM never fails: an unusable device is a result, with the reason in it.
func (k *KVM) ProbeKVM() vmv1alpha1.KVMStatus {
	status := vmv1alpha1.KVMStatus{
		Nested: k.nested(),
		Vendor: k.vendor(),
	}
	version, err := k.apiVersion()
	status.APIVersion = int32(version)
	status.Available, status.Reason = judgeAPIVersion(k.devicePath, version, err)
	return status
}

// judgeAPIVersion decides availability from the ioctl's answer.
func judgeAPIVersion(path string, version int, err error) (bool, string) {
	switch {
	case err != nil:
		return false, err.Error()
	case version != KVMAPIVersion:
		return false, fmt.Sprintf("%s answers KVM API version %d, want %d", path, version, KVMAPIVersion)
	}
	return true, ""
}

// apiVersion opens the device read-write, as a VMM would, so a permission
// problem shows here rather than when the first VM starts.
func (k *KVM) apiVersion() (int, error) {
	fd, err := unix.Open(k.devicePath, unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0, describeOpenError(k.devicePath, err)
	}
	defer unix.Close(fd)
	version, err := unix.IoctlRetInt(fd, kvmGetAPIVersion)
	if err != nil {
		return 0, fmt.Errorf("KVM_GET_API_VERSION on %s: %w", k.devicePath, err)
	}
	return version, nil
}

func describeOpenError(path string, err error) error {
	switch {
	case errors.Is(err, unix.ENOENT):
		return fmt.Errorf("no KVM device: %s does not exist", path)
	case errors.Is(err, unix.EACCES), errors.Is(err, unix.EPERM):
		return fmt.Errorf("permission denied opening %s", path)
	case errors.Is(err, unix.ENXIO), errors.Is(err, unix.ENODEV):
		return fmt.Errorf("%s exists but no KVM module backs it: %w", path, err)
	}
	return fmt.Errorf("opening %s: %w", path, err)
}

// nested reads the module parameter of whichever vendor module is loaded;
// kvm_intel says Y/N, kvm_amd says 1/0.
func (k *KVM) nested() bool {
	for _, module := range []string{"kvm_intel", "kvm_amd"} {
		raw, err := os.ReadFile(filepath.Join(k.sysfsRoot, "module", module, "parameters", "nested"))
		if err != nil {
			continue
		}
		switch strings.TrimSpace(string(raw)) {
		case "Y", "y", "1":
			return true
		}
	}
	return false
}

// vendor is empty when the CPU advertises neither vmx nor svm, as on a
// paravirtualised host whose /dev/kvm is backed by something else.
func (k *KVM) vendor() string {
	f, err := os.Open(filepath.Join(k.procRoot, "cpuinfo"))
	if err != nil {
		return ""
	}
	defer f.Close()
	scanner := bufio.NewScanner(f)
	scanner.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	for scanner.Scan() {
		key, value, ok := strings.Cut(scanner.Text(), ":")
		if !ok || strings.TrimSpace(key) != "flags" {
			continue
		}
		for _, flag := range strings.Fields(value) {
			switch flag {
			case "vmx":
				return "intel"
			case "svm":
				return "amd"
			}
		}
		return "" // every CPU lists the same flags; the first line decides
	}
	return ""
}
