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

// kvmMiscDevice is /dev/kvm's number: the misc major and KVM_MINOR
// (include/linux/miscdevice.h), fixed on every architecture.
const kvmMiscDevice = "10:232"

// vendorModules are the x86 modules that back /dev/kvm; they name the
// missing piece when the kernel offers no device. Other hosts (arm64, where
// KVM is built in, or a paravirtualised kvm_pvm) need none of them, so their
// absence alone never makes KVM unavailable.
var vendorModules = []struct{ module, cpuFlag string }{{"kvm_intel", "vmx"}, {"kvm_amd", "svm"}}

// KVMProber reports the state of hardware virtualisation on the node.
type KVMProber interface {
	ProbeKVM() vmv1alpha1.KVMStatus
}

// KVM probes what the kernel exposes about KVM without taking a device
// unit: the misc device in sysfs (class/misc/kvm/dev), the kvm_intel/kvm_amd
// module parameters and the CPU flags. Where the agent can open the device
// node too (a test on the host, an agent run as root outside Kubernetes) it
// also asks its API version.
type KVM struct {
	devicePath string // usually /dev/kvm; empty never opens a device
	sysfsRoot  string // usually /sys
	procRoot   string // usually /proc
}

// NewKVM builds a KVM probe reading the given sysfs and procfs roots, and
// the given device node when it can be opened ("" for sysfs alone).
func NewKVM(devicePath, sysfsRoot, procRoot string) *KVM {
	return &KVM{devicePath: devicePath, sysfsRoot: sysfsRoot, procRoot: procRoot}
}

// ProbeKVM never fails: an unusable device is a result, with the reason in
// it. Available means the kernel offers /dev/kvm on this node: its misc
// device is registered, which is also what makes devtmpfs create the node.
// A device that opens but does not answer API 12 is unavailable too.
func (k *KVM) ProbeKVM() vmv1alpha1.KVMStatus {
	status := vmv1alpha1.KVMStatus{
		Nested: k.nested(),
		Vendor: k.vendor(),
	}
	status.Available, status.Reason = k.miscDevice(status.Vendor)
	if !status.Available {
		return status
	}
	version, err := k.apiVersion()
	if errors.Is(err, errNotOpened) {
		return status // the sysfs answer stands: the agent holds no device
	}
	status.APIVersion = int32(version)
	status.Available, status.Reason = judgeAPIVersion(k.devicePath, version, err)
	return status
}

// miscDevice reads the kvm misc device's number from sysfs. Without it,
// the reason names what is missing: the vendor module the CPU asks for, or
// the CPU feature itself.
func (k *KVM) miscDevice(vendor string) (bool, string) {
	path := filepath.Join(k.sysfsRoot, "class", "misc", "kvm", "dev")
	raw, err := os.ReadFile(path)
	switch {
	case err == nil && strings.TrimSpace(string(raw)) == kvmMiscDevice:
		return true, ""
	case err == nil:
		return false, fmt.Sprintf("the kernel's kvm misc device is %s, want %s", strings.TrimSpace(string(raw)), kvmMiscDevice)
	case !errors.Is(err, os.ErrNotExist):
		return false, fmt.Sprintf("reading %s: %v", path, err)
	}
	// The reason names no host path, so it reads the same wherever sysfs is mounted.
	return false, "the kernel offers no /dev/kvm (no kvm misc device in sysfs): " + k.whyNoDevice(vendor)
}

// whyNoDevice guesses the missing piece from the CPU flag and the loaded
// modules, for the operator to act on.
func (k *KVM) whyNoDevice(vendor string) string {
	for _, v := range vendorModules {
		if vendor != strings.TrimPrefix(v.module, "kvm_") {
			continue
		}
		if k.moduleLoaded(v.module) {
			return fmt.Sprintf("%s is loaded but registered no device (virtualisation disabled in the firmware?)", v.module)
		}
		return fmt.Sprintf("the CPU advertises %s but %s is not loaded", v.cpuFlag, v.module)
	}
	return "the CPU advertises neither vmx nor svm (a VM without nested virtualisation?)"
}

func (k *KVM) moduleLoaded(module string) bool {
	_, err := os.Stat(filepath.Join(k.sysfsRoot, "module", module))
	return err == nil
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

// errNotOpened says the device node could not be opened here: in a pod
// without a device unit it does not exist, or the device cgroup refuses it.
// That is no verdict on the node's KVM.
var errNotOpened = errors.New("device not opened")

// apiVersion opens the device read-write, as a VMM would, and asks its API
// version. It answers errNotOpened when there is no device to ask.
func (k *KVM) apiVersion() (int, error) {
	if k.devicePath == "" {
		return 0, errNotOpened
	}
	fd, err := unix.Open(k.devicePath, unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0, fmt.Errorf("opening %s: %w: %w", k.devicePath, errNotOpened, err)
	}
	defer unix.Close(fd)
	version, err := unix.IoctlRetInt(fd, kvmGetAPIVersion)
	if err != nil {
		return 0, fmt.Errorf("KVM_GET_API_VERSION on %s: %w", k.devicePath, err)
	}
	return version, nil
}

// nested reads the module parameter of whichever vendor module is loaded;
// kvm_intel says Y/N, kvm_amd says 1/0.
func (k *KVM) nested() bool {
	for _, v := range vendorModules {
		raw, err := os.ReadFile(filepath.Join(k.sysfsRoot, "module", v.module, "parameters", "nested"))
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
