package probe

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
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

// kvmCase is one node (a sysfs tree and maybe a device node) and what the
// probe must report for it.
type kvmCase struct {
	name          string
	misc          string // content of class/misc/kvm/dev; "" leaves it out
	modules       []string
	flags         string
	device        string // "" opens nothing
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

// fakeKVMSysfs writes the misc device and the loaded modules of one case.
func fakeKVMSysfs(t *testing.T, tc kvmCase) (sysfs, proc string) {
	t.Helper()
	sysfs, proc = fakeRoots(t, nil, tc.flags)
	if tc.misc != "" {
		mustWrite(t, filepath.Join(sysfs, "class", "misc", "kvm", "dev"), tc.misc+"\n")
	}
	for _, m := range tc.modules {
		mustWrite(t, filepath.Join(sysfs, "module", m, "refcnt"), "0\n")
	}
	return sysfs, proc
}

func checkKVM(t *testing.T, got vmv1alpha1.KVMStatus, tc kvmCase) {
	t.Helper()
	if got.Available != tc.wantAvailable || got.APIVersion != tc.wantAPI {
		t.Errorf("available=%v api=%d (reason %q), want available=%v api=%d", got.Available, got.APIVersion, got.Reason, tc.wantAvailable, tc.wantAPI)
	}
	if tc.wantReason == "" && got.Reason != "" || !strings.Contains(got.Reason, tc.wantReason) {
		t.Errorf("reason = %q, want %q", got.Reason, tc.wantReason)
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

// TestIsVF reads a VF's physfn link from a sysfs tree the test writes.
func TestIsVF(t *testing.T) {
	sysfs := t.TempDir()
	pf := filepath.Join(sysfs, "devices", "pci0000:00", "0000:3b:00.0")
	vf := filepath.Join(sysfs, "devices", "pci0000:00", "0000:3b:02.0")
	mustWrite(t, filepath.Join(pf, "sriov_totalvfs"), "8\n")
	mustWrite(t, filepath.Join(vf, "vendor"), "0x8086\n")
	if err := os.Symlink(pf, filepath.Join(vf, "physfn")); err != nil {
		t.Fatal(err)
	}
	for name, device := range map[string]string{"ens1f0": pf, "ens1f0v0": vf} {
		if err := os.MkdirAll(filepath.Join(sysfs, "class", "net", name), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(device, filepath.Join(sysfs, "class", "net", name, "device")); err != nil {
			t.Fatal(err)
		}
	}
	links := NewLinks(nil, sysfs)
	if links.isVF("ens1f0") || !links.isVF("ens1f0v0") || links.isVF("missing") {
		t.Errorf("isVF: PF %v, VF %v, missing %v; want false, true, false", links.isVF("ens1f0"), links.isVF("ens1f0v0"), links.isVF("missing"))
	}
	if NewLinks(nil, "").isVF("ens1f0v0") {
		t.Error("without a sysfs root no link is a VF")
	}
}
