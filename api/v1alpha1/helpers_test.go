package v1alpha1

import (
	"testing"

	"k8s.io/utils/ptr"
)

func TestEffectiveRunStrategy(t *testing.T) {
	cases := []struct {
		name string
		spec VirtualMachineProfileSpec
		want RunStrategy
	}{
		{"nothing set runs always", VirtualMachineProfileSpec{}, RunStrategyAlways},
		{"explicit runStrategy wins over restartPolicy", VirtualMachineProfileSpec{
			StartStrategy:    &StartStrategySpec{RunStrategy: RunStrategyManual},
			HighAvailability: &HighAvailabilitySpec{RestartPolicy: RestartNever},
		}, RunStrategyManual},
		{"explicit runStrategy wins over autoStart false", VirtualMachineProfileSpec{
			StartStrategy: &StartStrategySpec{RunStrategy: RunStrategyAlways, AutoStart: ptr.To(false)},
		}, RunStrategyAlways},
		{"autoStart false halts", VirtualMachineProfileSpec{
			StartStrategy:    &StartStrategySpec{AutoStart: ptr.To(false)},
			HighAvailability: &HighAvailabilitySpec{RestartPolicy: RestartAlways},
		}, RunStrategyHalted},
		{"autoStart true defers to restartPolicy", VirtualMachineProfileSpec{
			StartStrategy:    &StartStrategySpec{AutoStart: ptr.To(true)},
			HighAvailability: &HighAvailabilitySpec{RestartPolicy: RestartOnFailure},
		}, RunStrategyRerunOnFailure},
		{"restartPolicy Always", VirtualMachineProfileSpec{HighAvailability: &HighAvailabilitySpec{RestartPolicy: RestartAlways}}, RunStrategyAlways},
		{"restartPolicy OnFailure", VirtualMachineProfileSpec{HighAvailability: &HighAvailabilitySpec{RestartPolicy: RestartOnFailure}}, RunStrategyRerunOnFailure},
		{"restartPolicy Never", VirtualMachineProfileSpec{HighAvailability: &HighAvailabilitySpec{RestartPolicy: RestartNever}}, RunStrategyOnce},
		{"antiAffinity alone runs always", VirtualMachineProfileSpec{HighAvailability: &HighAvailabilitySpec{AntiAffinity: true}}, RunStrategyAlways},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := c.spec.EffectiveRunStrategy(); got != c.want {
				t.Fatalf("got %s, want %s", got, c.want)
			}
		})
	}
}

func TestDiskImageAndBootDisk(t *testing.T) {
	spec := VirtualMachineProfileSpec{
		OSImage: "registry.local/os:1",
		Disks: []DiskConfig{
			{Name: "data", Size: "1Gi"},
			{Name: "system", Size: "20Gi", Boot: true},
			{Name: "seeded", Size: "1Gi", Image: "registry.local/seed:1"},
		},
	}
	if got := spec.BootDisk(); got == nil || got.Name != "system" {
		t.Fatalf("boot disk: got %v", got)
	}
	want := map[string]string{"data": "", "system": "registry.local/os:1", "seeded": "registry.local/seed:1"}
	for i := range spec.Disks {
		if got := spec.DiskImage(&spec.Disks[i]); got != want[spec.Disks[i].Name] {
			t.Errorf("%s: image %q, want %q", spec.Disks[i].Name, got, want[spec.Disks[i].Name])
		}
	}
	if (&VirtualMachineProfileSpec{}).BootDisk() != nil {
		t.Fatal("no disks, yet a boot disk")
	}
}

func TestNames(t *testing.T) {
	if got := VMName("web-vm-01"); got != "web-vm-01-vm" {
		t.Fatalf("VMName: %s", got)
	}
	if got := VolumeName("web-vm-01", "system"); got != "web-vm-01-system" {
		t.Fatalf("VolumeName: %s", got)
	}
	if got := (&DiskConfig{}).EffectiveRetainPolicy(); got != RetainPolicyRetain {
		t.Fatalf("default retain policy: %s", got)
	}
	if got := (&DiskConfig{RetainPolicy: RetainPolicyDelete}).EffectiveRetainPolicy(); got != RetainPolicyDelete {
		t.Fatalf("retain policy: %s", got)
	}
}

func TestFormatVLANs(t *testing.T) {
	cases := []struct {
		ids  []int
		want string
	}{
		{nil, ""},
		{[]int{100}, "100"},
		{[]int{200, 1, 100, 201, 202, 100}, "1,100,200-202"},
		{[]int{1, 2, 4, 5, 4094}, "1-2,4-5,4094"},
	}
	for _, c := range cases {
		if got := FormatVLANs(c.ids); got != c.want {
			t.Errorf("FormatVLANs(%v) = %q, want %q", c.ids, got, c.want)
		}
	}
}

func TestVLANsContain(t *testing.T) {
	cases := []struct {
		list    string
		id      int
		want    bool
		wantErr bool
	}{
		{"", 100, false, false},
		{"100", 100, true, false},
		{"1,100,200-210", 205, true, false},
		{"1,100,200-210", 211, false, false},
		{"1,100,200-210", 2, false, false},
		{"1,x", 100, false, true},
		{"200-y", 100, false, true},
	}
	for _, c := range cases {
		got, err := VLANsContain(c.list, c.id)
		if got != c.want || (err != nil) != c.wantErr {
			t.Errorf("VLANsContain(%q, %d) = %v, %v; want %v, error %v", c.list, c.id, got, err, c.want, c.wantErr)
		}
	}
	// FormatVLANs and VLANsContain agree.
	list := FormatVLANs([]int{7, 8, 9, 300})
	for _, id := range []int{7, 8, 9, 300} {
		if ok, _ := VLANsContain(list, id); !ok {
			t.Errorf("%q should contain %d", list, id)
		}
	}
}
