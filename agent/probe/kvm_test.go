package probe

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// fakeRoots writes a sysfs and a procfs tree with the given nested parameter
// (module → value) and cpuinfo flags.
func fakeRoots(t *testing.T, nested map[string]string, flags string) (sysfs, proc string) {
	t.Helper()
	sysfs, proc = t.TempDir(), t.TempDir()
	for module, value := range nested {
		dir := filepath.Join(sysfs, "module", module, "parameters")
		mustWrite(t, filepath.Join(dir, "nested"), value+"\n")
	}
	cpuinfo := "processor\t: 0\nvendor_id\t: GenuineIntel\nflags\t\t: " + flags + "\n\nprocessor\t: 1\nflags\t\t: " + flags + "\n"
	mustWrite(t, filepath.Join(proc, "cpuinfo"), cpuinfo)
	return sysfs, proc
}

func mustWrite(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestKVMNestedAndVendor(t *testing.T) {
	cases := []struct {
		name       string
		nested     map[string]string
		flags      string
		wantNested bool
		wantVendor string
	}{
		{name: "intel nested Y", nested: map[string]string{"kvm_intel": "Y"}, flags: "fpu vmx sse", wantNested: true, wantVendor: "intel"},
		{name: "intel nested N", nested: map[string]string{"kvm_intel": "N"}, flags: "fpu vmx", wantVendor: "intel"},
		{name: "amd nested 1", nested: map[string]string{"kvm_amd": "1"}, flags: "svm fpu", wantNested: true, wantVendor: "amd"},
		{name: "amd nested 0", nested: map[string]string{"kvm_amd": "0"}, flags: "svm", wantVendor: "amd"},
		{name: "no vendor module, no flag", flags: "fpu hypervisor"},
		{name: "flag name only as substring", flags: "vmxfoo svmbar"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sysfs, proc := fakeRoots(t, tc.nested, tc.flags)
			got := NewKVM(filepath.Join(t.TempDir(), "kvm"), sysfs, proc).ProbeKVM()
			if got.Nested != tc.wantNested || got.Vendor != tc.wantVendor {
				t.Errorf("nested=%v vendor=%q, want nested=%v vendor=%q", got.Nested, got.Vendor, tc.wantNested, tc.wantVendor)
			}
		})
	}
}

func TestKVMDeviceErrors(t *testing.T) {
	sysfs, proc := fakeRoots(t, nil, "fpu")
	regular := filepath.Join(t.TempDir(), "kvm")
	mustWrite(t, regular, "")
	cases := []struct {
		name       string
		device     string
		wantReason string
	}{
		{name: "missing device", device: filepath.Join(t.TempDir(), "kvm"), wantReason: "no KVM device"},
		// A regular file opens but refuses the ioctl, as a wrong device would.
		{name: "not a KVM device", device: regular, wantReason: "KVM_GET_API_VERSION on " + regular},
	}
	if os.Geteuid() == 0 {
		// A character device with KVM's numbers that no module backs: the
		// kernel itself answers ENODEV/ENXIO, the "module unloaded" case.
		node := filepath.Join(t.TempDir(), "kvm")
		if err := unix.Mknod(node, unix.S_IFCHR|0o600, int(unix.Mkdev(10, 232))); err == nil && !kvmRegistered() {
			cases = append(cases, struct {
				name, device, wantReason string
			}{name: "unbacked device node", device: node, wantReason: "no KVM module backs it"})
		}
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := NewKVM(tc.device, sysfs, proc).ProbeKVM()
			if got.Available || !strings.Contains(got.Reason, tc.wantReason) {
				t.Errorf("available=%v reason=%q, want unavailable with %q", got.Available, got.Reason, tc.wantReason)
			}
		})
	}
}

func TestJudgeAPIVersion(t *testing.T) {
	cases := []struct {
		name       string
		version    int
		err        error
		wantOK     bool
		wantReason string
	}{
		{name: "12", version: 12, wantOK: true},
		{name: "wrong version", version: 11, wantReason: "answers KVM API version 11, want 12"},
		{name: "ioctl error", err: errors.New("boom"), wantReason: "boom"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ok, reason := judgeAPIVersion("/dev/kvm", tc.version, tc.err)
			if ok != tc.wantOK || !strings.Contains(reason, tc.wantReason) {
				t.Errorf("got (%v, %q), want (%v, contains %q)", ok, reason, tc.wantOK, tc.wantReason)
			}
		})
	}
}

// kvmRegistered tells whether this kernel registered the kvm misc device.
func kvmRegistered() bool {
	_, err := os.Stat("/sys/class/misc/kvm")
	return err == nil
}

// TestKVMThisHost probes the real /dev/kvm, /sys and /proc and checks the
// answer against what the kernel shows independently: the misc device is
// registered exactly when KVM should be available with API 12.
func TestKVMThisHost(t *testing.T) {
	got := NewKVM("/dev/kvm", "/sys", "/proc").ProbeKVM()
	t.Logf("this host: %+v (kvm misc device registered: %v)", got, kvmRegistered())
	_, devErr := os.Stat("/dev/kvm")
	switch {
	case kvmRegistered() && devErr == nil:
		if !got.Available || got.APIVersion != KVMAPIVersion {
			t.Errorf("kernel registers kvm and /dev/kvm exists, but probe says %+v", got)
		}
	case devErr != nil:
		if got.Available || !strings.Contains(got.Reason, "does not exist") {
			t.Errorf("/dev/kvm missing, but probe says %+v", got)
		}
	default:
		if got.Available {
			t.Errorf("/dev/kvm exists without a registered kvm device, but probe says available: %+v", got)
		}
	}
}
