//go:build integration

package probe

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestKVMFromSysfs: availability follows the kernel's misc device, with or
// without a device node to open; a node that opens must answer API 12.
func TestKVMFromSysfs(t *testing.T) {
	regular := filepath.Join(t.TempDir(), "kvm")
	mustWrite(t, regular, "")
	nullLike := nullLikeDevice(t)
	missing := filepath.Join(t.TempDir(), "kvm")
	cases := []kvmCase{
		{name: "misc device, no device node given", misc: "10:232", flags: "vmx", modules: []string{"kvm_intel"}, wantAvailable: true},
		{name: "misc device, device node absent in the pod", misc: "10:232", flags: "svm", device: missing, wantAvailable: true},
		{name: "misc device with a wrong number", misc: "10:99", flags: "vmx", wantReason: "the kernel's kvm misc device is 10:99, want 10:232"},
		{name: "no misc device, vmx without kvm_intel", flags: "fpu vmx", wantReason: "the kernel offers no /dev/kvm (no kvm misc device in sysfs): "},
		{name: "no misc device, vmx without kvm_intel names it", flags: "fpu vmx", wantReason: "the CPU advertises vmx but kvm_intel is not loaded"},
		{name: "no misc device, svm with kvm_amd loaded", flags: "svm", modules: []string{"kvm", "kvm_amd"}, wantReason: "kvm_amd is loaded but registered no device"},
		{name: "no misc device, no virtualisation flag", flags: "fpu hypervisor", wantReason: "the CPU advertises neither vmx nor svm"},
		{name: "no misc device, a device node is not enough", flags: "vmx", device: nullLike, wantReason: "the kernel offers no /dev/kvm"},
		{name: "misc device, node that is not KVM", misc: "10:232", device: nullLike, wantReason: "KVM_GET_API_VERSION on " + nullLike + ": inappropriate ioctl for device"},
		{name: "misc device, regular file", misc: "10:232", device: regular, wantReason: "KVM_GET_API_VERSION on " + regular},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sysfs, proc := fakeKVMSysfs(t, tc)
			got := NewKVM(tc.device, sysfs, proc).ProbeKVM()
			checkKVM(t, got, tc)
		})
	}
}

// TestKVMThisHost probes this machine's own sysfs, with and without its
// /dev/kvm: whether a device is opened never changes availability, and an
// opened one answers API 12.
func TestKVMThisHost(t *testing.T) {
	_, err := os.Stat("/sys/class/misc/kvm/dev")
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("stat /sys/class/misc/kvm/dev: %v", err)
	}
	offered := err == nil
	t.Logf("this machine's kernel offers /dev/kvm: %v", offered)
	sysfsOnly := NewKVM("", "/sys", "/proc").ProbeKVM()
	withDevice := NewKVM("/dev/kvm", "/sys", "/proc").ProbeKVM()
	if sysfsOnly.Available != offered || withDevice.Available != offered {
		t.Errorf("sysfs only %+v, with /dev/kvm %+v; want available=%v", sysfsOnly, withDevice, offered)
	}
	if sysfsOnly.APIVersion != 0 {
		t.Errorf("API version without opening a device: %d", sysfsOnly.APIVersion)
	}
	if offered && withDevice.APIVersion != KVMAPIVersion {
		t.Errorf("/dev/kvm answers API %d, want %d", withDevice.APIVersion, KVMAPIVersion)
	}
	if !offered && !strings.Contains(sysfsOnly.Reason, "/dev/kvm") {
		t.Errorf("reason should name /dev/kvm: %q", sysfsOnly.Reason)
	}
}
