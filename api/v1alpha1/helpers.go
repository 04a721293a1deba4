package v1alpha1

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// VMName is the name of the KubeVirt VirtualMachine made for a profile. The
// CRD limits profile names to 60 characters so that this name fits in a label.
func VMName(profileName string) string {
	return profileName + "-vm"
}

// VolumeName is the name of the PVC (or DataVolume) that holds one disk of a
// profile. It depends only on the two names, so a re-created profile finds the
// disks it retained.
func VolumeName(profileName, diskName string) string {
	return profileName + "-" + diskName
}

// EffectiveRunStrategy applies the documented precedence: an explicit
// runStrategy wins; otherwise autoStart: false means Halted; otherwise the
// high-availability restart policy maps Always → Always, OnFailure →
// RerunOnFailure, Never → Once; otherwise Always.
func (s *VirtualMachineProfileSpec) EffectiveRunStrategy() RunStrategy {
	if s.StartStrategy != nil && s.StartStrategy.RunStrategy != "" {
		return s.StartStrategy.RunStrategy
	}
	if s.StartStrategy != nil && s.StartStrategy.AutoStart != nil && !*s.StartStrategy.AutoStart {
		return RunStrategyHalted
	}
	if s.HighAvailability != nil {
		switch s.HighAvailability.RestartPolicy {
		case RestartOnFailure:
			return RunStrategyRerunOnFailure
		case RestartNever:
			return RunStrategyOnce
		}
	}
	return RunStrategyAlways
}

// BootDisk returns the disk marked boot: true, or nil.
func (s *VirtualMachineProfileSpec) BootDisk() *DiskConfig {
	for i := range s.Disks {
		if s.Disks[i].Boot {
			return &s.Disks[i]
		}
	}
	return nil
}

// DiskImage is the image imported into a disk: its own image, or the
// profile's osImage for a boot disk without one; empty for a blank disk.
func (s *VirtualMachineProfileSpec) DiskImage(d *DiskConfig) string {
	if d.Image != "" {
		return d.Image
	}
	if d.Boot {
		return s.OSImage
	}
	return ""
}

// EffectiveRetainPolicy is the disk's retain policy with the API default
// applied, for objects that did not pass through the apiserver.
func (d *DiskConfig) EffectiveRetainPolicy() RetainPolicy {
	if d.RetainPolicy == "" {
		return RetainPolicyRetain
	}
	return d.RetainPolicy
}

// FormatVLANs writes VLAN ids as a sorted, compact list of ids and ranges,
// for example "1,100,200-210". Duplicates are dropped.
func FormatVLANs(ids []int) string {
	sorted := slices.Clone(ids)
	slices.Sort(sorted)
	sorted = slices.Compact(sorted)
	var b strings.Builder
	for i := 0; i < len(sorted); {
		j := i
		for j+1 < len(sorted) && sorted[j+1] == sorted[j]+1 {
			j++
		}
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Itoa(sorted[i]))
		if j > i {
			b.WriteByte('-')
			b.WriteString(strconv.Itoa(sorted[j]))
		}
		i = j + 1
	}
	return b.String()
}

// VLANsContain reports whether a list written by FormatVLANs contains id.
// A malformed list contains nothing, and says why.
func VLANsContain(list string, id int) (bool, error) {
	if list == "" {
		return false, nil
	}
	for _, part := range strings.Split(list, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		from, err := strconv.Atoi(lo)
		if err != nil {
			return false, fmt.Errorf("VLAN list %q: %q is not a VLAN id", list, lo)
		}
		to := from
		if isRange {
			if to, err = strconv.Atoi(hi); err != nil {
				return false, fmt.Errorf("VLAN list %q: %q is not a VLAN id", list, hi)
			}
		}
		if from <= id && id <= to {
			return true, nil
		}
	}
	return false, nil
}

// VLANSpan is an inclusive range of VLAN ids.
type VLANSpan struct{ From, To int32 }

// Spans parses a HostNetwork's allowed VLANs. The CRD validates them, so
// an error only comes from objects that skipped admission.
func Spans(ranges []VLANRange) ([]VLANSpan, error) {
	spans := make([]VLANSpan, 0, len(ranges))
	for _, r := range ranges {
		lo, hi, isRange := strings.Cut(string(r), "-")
		from, err := strconv.Atoi(lo)
		if err != nil {
			return nil, fmt.Errorf("VLAN range %q: %q is not a VLAN id", r, lo)
		}
		to := from
		if isRange {
			if to, err = strconv.Atoi(hi); err != nil {
				return nil, fmt.Errorf("VLAN range %q: %q is not a VLAN id", r, hi)
			}
		}
		if from < 1 || to > 4094 || from > to {
			return nil, fmt.Errorf("VLAN range %q is outside 1-4094 or reversed", r)
		}
		spans = append(spans, VLANSpan{From: int32(from), To: int32(to)})
	}
	slices.SortFunc(spans, func(a, b VLANSpan) int { return int(a.From - b.From) })
	return spans, nil
}

// AllowsVLAN says whether a HostNetwork allows a VLAN id.
func (s *HostNetworkSpec) AllowsVLAN(id int32) bool {
	spans, err := Spans(s.AllowedVLANs)
	if err != nil {
		return false
	}
	for _, span := range spans {
		if span.From <= id && id <= span.To {
			return true
		}
	}
	return false
}

// DefaultHostMTU is the MTU of a HostNetwork that does not set one.
const DefaultHostMTU = 1500

// AllowsUntagged says whether an attachment without a VLAN may use the
// network: always without allowedVLANs (they are its only use), with them
// only when untagged says Allowed.
func (s *HostNetworkSpec) AllowsUntagged() bool {
	return len(s.AllowedVLANs) == 0 || s.Untagged == UntaggedAllowed
}

// EffectiveMTU is the largest MTU VMs may use on the network.
func (s *HostNetworkSpec) EffectiveMTU() int32 {
	if s.MTU == nil {
		return DefaultHostMTU
	}
	return *s.MTU
}
