package probe

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
)

// vfioDriver is the driver a VF is bound to when it is handed to a VM.
const vfioDriver = "vfio-pci"

// SRIOVResult is what one SR-IOV probe found.
type SRIOVResult struct {
	// PFs are sorted by name.
	PFs []vmv1alpha1.SRIOVPF
	// Skipped are interfaces that could not be read: one unreadable PF must
	// not hide the others.
	Skipped []Skipped
}

// SRIOVProber lists the SR-IOV physical functions of the node.
type SRIOVProber interface {
	ProbeSRIOV() (SRIOVResult, error)
}

// SRIOV reads sysfs under a root. sriovnet v1.2.0 reads fixed /sys paths
// through package globals, so it cannot be pointed at a test tree or used
// from parallel tests; the few files we need are read here instead.
type SRIOV struct {
	sysfsRoot string
}

// NewSRIOV builds an SR-IOV probe reading sysfsRoot (usually /sys).
func NewSRIOV(sysfsRoot string) *SRIOV {
	return &SRIOV{sysfsRoot: sysfsRoot}
}

// ProbeSRIOV returns one entry per network interface whose PCI device has
// sriov_totalvfs. It fails only when class/net cannot be listed; an
// interface that cannot be read is skipped and named. A node without
// SR-IOV returns nothing.
func (s *SRIOV) ProbeSRIOV() (SRIOVResult, error) {
	netDir := filepath.Join(s.sysfsRoot, "class", "net")
	entries, err := os.ReadDir(netDir)
	if err != nil {
		return SRIOVResult{}, fmt.Errorf("listing %s: %w", netDir, err)
	}
	var result SRIOVResult
	for _, entry := range entries {
		pf, ok, err := s.probeEntry(netDir, entry.Name())
		switch {
		case err != nil:
			result.Skipped = append(result.Skipped, Skipped{Name: entry.Name(), Reason: err.Error()})
		case ok:
			result.PFs = append(result.PFs, pf)
		}
	}
	slices.SortFunc(result.PFs, func(a, b vmv1alpha1.SRIOVPF) int { return strings.Compare(a.Name, b.Name) })
	return result, nil
}

// probeEntry reads one entry of class/net: a PF, nothing (not an interface,
// or not SR-IOV capable), or an error.
func (s *SRIOV) probeEntry(netDir, name string) (vmv1alpha1.SRIOVPF, bool, error) {
	isIf, err := isInterface(filepath.Join(netDir, name))
	if err != nil || !isIf {
		return vmv1alpha1.SRIOVPF{}, false, err
	}
	return s.probePF(name)
}

// isInterface tells interfaces (symlinks to their device directory) from
// the other entries of class/net, such as bonding_masters, a regular file
// present once the bonding module is loaded. An interface that vanished
// since the listing is no longer one.
func isInterface(path string) (bool, error) {
	info, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("%s: %w", path, err)
	}
	return info.IsDir(), nil
}

// representorPort matches phys_port_name of switchdev representors (pf0vf3,
// pf0sf1, c1pf0vf2). Their device link points at the PF's PCI function too,
// so without this filter every representor would be listed as another PF.
var representorPort = regexp.MustCompile(`^(c\d+)?pf\d+(vf|sf)\d+$`)

func (s *SRIOV) probePF(name string) (vmv1alpha1.SRIOVPF, bool, error) {
	netdev := filepath.Join(s.sysfsRoot, "class", "net", name)
	if port, err := os.ReadFile(filepath.Join(netdev, "phys_port_name")); err == nil && representorPort.MatchString(strings.TrimSpace(string(port))) {
		return vmv1alpha1.SRIOVPF{}, false, nil
	}
	device := filepath.Join(netdev, "device")
	total, err := readInt(filepath.Join(device, "sriov_totalvfs"))
	if errors.Is(err, fs.ErrNotExist) {
		return vmv1alpha1.SRIOVPF{}, false, nil // not an SR-IOV capable PCI function
	}
	if err != nil {
		return vmv1alpha1.SRIOVPF{}, false, err
	}
	num, err := readInt(filepath.Join(device, "sriov_numvfs"))
	if err != nil {
		return vmv1alpha1.SRIOVPF{}, false, err
	}
	pciPath, err := filepath.EvalSymlinks(device)
	if err != nil {
		return vmv1alpha1.SRIOVPF{}, false, fmt.Errorf("resolving PCI device: %w", err)
	}
	inUse, err := countVFsInUse(device)
	if err != nil {
		return vmv1alpha1.SRIOVPF{}, false, err
	}
	return vmv1alpha1.SRIOVPF{
		Name:       name,
		PCIAddress: filepath.Base(pciPath),
		Driver:     driverOf(device),
		TotalVFs:   int32(total),
		NumVFs:     int32(num),
		VFsInUse:   int32(inUse),
		LinkUp:     linkUp(netdev),
	}, true, nil
}

// countVFsInUse follows the PF's virtfnN links. A VF is in use when it is
// bound to vfio-pci (passed to a VM) or when it is bound to a network driver
// but its netdev is gone from the host namespace (moved into a pod). A VF
// with no driver at all is idle.
func countVFsInUse(pfDevice string) (int, error) {
	vfs, err := filepath.Glob(filepath.Join(pfDevice, "virtfn*"))
	if err != nil {
		return 0, fmt.Errorf("list VFs of %s: %w", pfDevice, err)
	}
	inUse := 0
	for _, vf := range vfs {
		driver := driverOf(vf)
		switch {
		case driver == vfioDriver:
			inUse++
		case driver != "" && !hasNetdev(vf):
			inUse++
		}
	}
	return inUse, nil
}

func driverOf(device string) string {
	target, err := filepath.EvalSymlinks(filepath.Join(device, "driver"))
	if err != nil {
		return ""
	}
	return filepath.Base(target)
}

func hasNetdev(device string) bool {
	entries, err := os.ReadDir(filepath.Join(device, "net"))
	return err == nil && len(entries) > 0
}

// linkUp prefers operstate, which says "up" only with carrier.
func linkUp(netdev string) bool {
	raw, err := os.ReadFile(filepath.Join(netdev, "operstate"))
	return err == nil && strings.TrimSpace(string(raw)) == "up"
}

func readInt(path string) (int, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(raw)))
	if err != nil {
		return 0, fmt.Errorf("%s: %q is not a number", path, strings.TrimSpace(string(raw)))
	}
	return n, nil
}
