package probe

import (
	"errors"
	"io/fs"
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

// kvmCase is one device the probe opens and what it must report.
type kvmCase struct {
	name          string
	device        string
	wantAvailable bool
	wantAPI       int32
	wantReason    string // contained in the reason; "" means no reason
}

// nullLikeDevice makes a character device node with /dev/null's numbers:
// it opens everywhere (no module, no device cgroup rule needed) but refuses
// the KVM ioctl, as a device node that is not KVM would.
func nullLikeDevice(t *testing.T) string {
	t.Helper()
	node := filepath.Join(t.TempDir(), "kvm")
	if err := unix.Mknod(node, unix.S_IFCHR|0o600, int(unix.Mkdev(1, 3))); err != nil {
		t.Fatalf("mknod %s (the tests run as root): %v", node, err)
	}
	return node
}

// thisHostCase is the real /dev/kvm, whichever kind of machine runs the
// test: present, it must answer API 12; absent, the probe must say so.
func thisHostCase(t *testing.T) kvmCase {
	t.Helper()
	c := kvmCase{name: "this host's /dev/kvm", device: "/dev/kvm"}
	_, err := os.Stat(c.device)
	switch {
	case err == nil:
		c.wantAvailable, c.wantAPI = true, KVMAPIVersion
	case errors.Is(err, fs.ErrNotExist):
		c.wantReason = "no KVM device: /dev/kvm does not exist"
	default:
		t.Fatalf("stat /dev/kvm: %v", err)
	}
	t.Logf("/dev/kvm on this machine: stat error %v, so want available=%v", err, c.wantAvailable)
	return c
}

// TestKVMDevice runs the same cases on every machine, with or without
// /dev/kvm: the faked devices behave alike everywhere and the real device's
// expectation follows from whether it exists.
func TestKVMDevice(t *testing.T) {
	sysfs, proc := fakeRoots(t, nil, "fpu")
	regular := filepath.Join(t.TempDir(), "kvm")
	mustWrite(t, regular, "")
	nullLike := nullLikeDevice(t)
	cases := []kvmCase{
		{name: "missing device", device: filepath.Join(t.TempDir(), "kvm"), wantReason: "does not exist"},
		{name: "character device that is not KVM", device: nullLike, wantReason: "KVM_GET_API_VERSION on " + nullLike + ": inappropriate ioctl for device"},
		{name: "regular file", device: regular, wantReason: "KVM_GET_API_VERSION on " + regular},
		thisHostCase(t),
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := NewKVM(tc.device, sysfs, proc).ProbeKVM()
			if got.Available != tc.wantAvailable || got.APIVersion != tc.wantAPI {
				t.Errorf("available=%v api=%d (reason %q), want available=%v api=%d", got.Available, got.APIVersion, got.Reason, tc.wantAvailable, tc.wantAPI)
			}
			if tc.wantReason == "" && got.Reason != "" || !strings.Contains(got.Reason, tc.wantReason) {
				t.Errorf("reason = %q, want %q", got.Reason, tc.wantReason)
			}
		})
	}
}

// TestDescribeOpenError covers what open(2) can answer for a device node,
// including the errors only some machines produce (no module behind the
// node, permission denied), so every machine tests every message.
func TestDescribeOpenError(t *testing.T) {
	cases := []struct {
		err  error
		want string
	}{
		{err: unix.ENOENT, want: "no KVM device: /dev/kvm does not exist"},
		{err: unix.EACCES, want: "permission denied opening /dev/kvm"},
		{err: unix.EPERM, want: "permission denied opening /dev/kvm"},
		{err: unix.ENXIO, want: "/dev/kvm exists but no KVM module backs it: no such device or address"},
		{err: unix.ENODEV, want: "/dev/kvm exists but no KVM module backs it: no such device"},
		{err: unix.EIO, want: "opening /dev/kvm: input/output error"},
	}
	for _, tc := range cases {
		t.Run(tc.err.Error(), func(t *testing.T) {
			if got := describeOpenError("/dev/kvm", tc.err).Error(); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
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
