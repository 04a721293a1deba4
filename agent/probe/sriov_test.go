package probe

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
)

// fakeVF is one VF of a fake PF: its driver ("" for none) and whether its
// netdev is still in the host namespace.
type fakeVF struct {
	driver    string
	hostNetns bool
}

type fakePF struct {
	name, pci, driver, operstate string
	representors                 []string // phys_port_name of switchdev representors sharing the PF's device
	total                        int
	vfs                          []fakeVF
	numVFs                       string // raw sriov_numvfs content; defaults to len(vfs)
}

type pfOption func(*fakePF)

func pf(name, pci string, opts ...pfOption) fakePF {
	p := fakePF{name: name, pci: pci, driver: "ice", operstate: "up", total: 64}
	for _, o := range opts {
		o(&p)
	}
	return p
}

func withTotal(n int) pfOption        { return func(p *fakePF) { p.total = n } }
func withDriver(d string) pfOption    { return func(p *fakePF) { p.driver = d } }
func withOperstate(s string) pfOption { return func(p *fakePF) { p.operstate = s } }
func withRawNumVFs(s string) pfOption { return func(p *fakePF) { p.numVFs = s } }
func withVFs(vfs ...fakeVF) pfOption  { return func(p *fakePF) { p.vfs = append(p.vfs, vfs...) } }
func withRepresentors(ports ...string) pfOption {
	return func(p *fakePF) { p.representors = append(p.representors, ports...) }
}
func idleVF() fakeVF    { return fakeVF{driver: "iavf", hostNetns: true} }
func vfioVF() fakeVF    { return fakeVF{driver: vfioDriver} }
func movedVF() fakeVF   { return fakeVF{driver: "iavf"} }
func unboundVF() fakeVF { return fakeVF{} }
func symlink(t *testing.T, target, link string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(link), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
}

// writeSysfs lays out the parts of sysfs the probe reads, with the same
// symlink shape as the kernel: class/net/X → devices/.../net/X, device →
// the PCI function, driver → bus/pci/drivers/D, virtfnN → the VF's function.
func writeSysfs(t *testing.T, pfs ...fakePF) string {
	t.Helper()
	root := t.TempDir()
	pciRoot := filepath.Join(root, "devices", "pci0000:00")
	drivers := filepath.Join(root, "bus", "pci", "drivers")
	for _, p := range pfs {
		dev := filepath.Join(pciRoot, p.pci)
		netdev := filepath.Join(dev, "net", p.name)
		mustWrite(t, filepath.Join(netdev, "operstate"), p.operstate+"\n")
		symlink(t, dev, filepath.Join(netdev, "device"))
		symlink(t, netdev, filepath.Join(root, "class", "net", p.name))
		symlink(t, filepath.Join(drivers, p.driver), filepath.Join(dev, "driver"))
		mustWrite(t, filepath.Join(drivers, p.driver, "bind"), "")
		mustWrite(t, filepath.Join(dev, "sriov_totalvfs"), fmt.Sprintf("%d\n", p.total))
		num := p.numVFs
		if num == "" {
			num = fmt.Sprintf("%d\n", len(p.vfs))
		}
		mustWrite(t, filepath.Join(dev, "sriov_numvfs"), num)
		for i, vf := range p.vfs {
			writeVF(t, root, p, i, vf)
		}
		mustWrite(t, filepath.Join(netdev, "phys_port_name"), "p0\n") // the uplink representor: a real PF
		for i, port := range p.representors {
			rep := filepath.Join(dev, "net", fmt.Sprintf("%s_%d", p.name, i))
			mustWrite(t, filepath.Join(rep, "phys_port_name"), port+"\n")
			mustWrite(t, filepath.Join(rep, "operstate"), "up\n")
			symlink(t, dev, filepath.Join(rep, "device"))
			symlink(t, rep, filepath.Join(root, "class", "net", filepath.Base(rep)))
		}
	}
	// A non-SR-IOV NIC and a virtual link, which the probe must pass over.
	plain := filepath.Join(pciRoot, "0000:00:03.0")
	mustWrite(t, filepath.Join(plain, "net", "eth0", "operstate"), "up\n")
	symlink(t, plain, filepath.Join(plain, "net", "eth0", "device"))
	symlink(t, filepath.Join(plain, "net", "eth0"), filepath.Join(root, "class", "net", "eth0"))
	mustWrite(t, filepath.Join(root, "devices", "virtual", "net", "lo", "operstate"), "unknown\n")
	symlink(t, filepath.Join(root, "devices", "virtual", "net", "lo"), filepath.Join(root, "class", "net", "lo"))
	return root
}

func writeVF(t *testing.T, root string, p fakePF, i int, vf fakeVF) {
	t.Helper()
	// VFs sit on the same bus as their PF, functions numbered after it.
	vfPCI := fmt.Sprintf("%s.%d", strings.TrimSuffix(p.pci, ".0")+fmt.Sprintf("%02d", i+1), 0)
	vfDev := filepath.Join(root, "devices", "pci0000:00", vfPCI)
	if err := os.MkdirAll(vfDev, 0o755); err != nil {
		t.Fatal(err)
	}
	symlink(t, vfDev, filepath.Join(root, "devices", "pci0000:00", p.pci, fmt.Sprintf("virtfn%d", i)))
	if vf.driver != "" {
		drv := filepath.Join(root, "bus", "pci", "drivers", vf.driver)
		if err := os.MkdirAll(drv, 0o755); err != nil {
			t.Fatal(err)
		}
		symlink(t, drv, filepath.Join(vfDev, "driver"))
	}
	if vf.hostNetns {
		mustWrite(t, filepath.Join(vfDev, "net", fmt.Sprintf("%sv%d", p.name, i), "operstate"), "up\n")
	}
}

func TestSRIOV(t *testing.T) {
	cases := []struct {
		name        string
		pfs         []fakePF
		extra       func(t *testing.T, root string) // more entries in class/net
		want        []vmv1alpha1.SRIOVPF
		wantSkipped map[string]string // name → text the reason contains
	}{
		{name: "no SR-IOV on the node"},
		{
			name: "several PFs, VFs idle, passed through, moved and unbound; representors are not PFs",
			pfs: []fakePF{
				pf("ens2f0", "0000:3b:00.0", withVFs(idleVF(), vfioVF(), vfioVF(), movedVF(), unboundVF())),
				pf("ens2f1", "0000:3c:00.0", withTotal(8), withDriver("mlx5_core"), withOperstate("down")),
				pf("ens1", "0000:5e:00.0", withVFs(idleVF(), idleVF()), withRepresentors("pf0vf0", "pf0vf1", "c1pf0sf7")),
			},
			want: []vmv1alpha1.SRIOVPF{
				{Name: "ens1", PCIAddress: "0000:5e:00.0", Driver: "ice", TotalVFs: 64, NumVFs: 2, VFsInUse: 0, LinkUp: true},
				{Name: "ens2f0", PCIAddress: "0000:3b:00.0", Driver: "ice", TotalVFs: 64, NumVFs: 5, VFsInUse: 3, LinkUp: true},
				{Name: "ens2f1", PCIAddress: "0000:3c:00.0", Driver: "mlx5_core", TotalVFs: 8, NumVFs: 0, VFsInUse: 0, LinkUp: false},
			},
		},
		{
			name: "one bad PF is skipped and named; the others are still reported",
			pfs: []fakePF{
				pf("ens1", "0000:5e:00.0", withVFs(idleVF())),
				pf("ens3", "0000:af:00.0", withRawNumVFs("lots\n")),
				pf("ens4", "0000:b0:00.0"),
			},
			want: []vmv1alpha1.SRIOVPF{
				{Name: "ens1", PCIAddress: "0000:5e:00.0", Driver: "ice", TotalVFs: 64, NumVFs: 1, LinkUp: true},
				{Name: "ens4", PCIAddress: "0000:b0:00.0", Driver: "ice", TotalVFs: 64, LinkUp: true},
			},
			wantSkipped: map[string]string{"ens3": `ens3/device/sriov_numvfs: "lots" is not a number`},
		},
		{
			name: "bonding_masters and a vanished interface are not interfaces; an unreadable entry is skipped",
			pfs:  []fakePF{pf("ens1", "0000:5e:00.0")},
			extra: func(t *testing.T, root string) {
				net := filepath.Join(root, "class", "net")
				mustWrite(t, filepath.Join(net, "bonding_masters"), "bond0\n")
				symlink(t, filepath.Join(root, "devices", "virtual", "net", "gone0"), filepath.Join(net, "gone0"))
				symlink(t, filepath.Join(net, "loop0"), filepath.Join(net, "loop0")) // stat: too many levels of symbolic links
			},
			want:        []vmv1alpha1.SRIOVPF{{Name: "ens1", PCIAddress: "0000:5e:00.0", Driver: "ice", TotalVFs: 64, LinkUp: true}},
			wantSkipped: map[string]string{"loop0": "too many levels of symbolic links"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			root := writeSysfs(t, tc.pfs...)
			if tc.extra != nil {
				tc.extra(t, root)
			}
			got, err := NewSRIOV(root).ProbeSRIOV()
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(got.PFs) != fmt.Sprint(tc.want) {
				t.Errorf("PFs  %+v\nwant %+v", got.PFs, tc.want)
			}
			if len(got.Skipped) != len(tc.wantSkipped) {
				t.Errorf("skipped = %+v, want %v", got.Skipped, tc.wantSkipped)
			}
			for _, s := range got.Skipped {
				if want, ok := tc.wantSkipped[s.Name]; !ok || !strings.Contains(s.Reason, want) {
					t.Errorf("skipped %s: %q, want a reason containing %q", s.Name, s.Reason, want)
				}
			}
		})
	}
}

func TestSRIOVMissingRoot(t *testing.T) {
	_, err := NewSRIOV(filepath.Join(t.TempDir(), "nope")).ProbeSRIOV()
	// The whole probe fails: there is nothing to skip entry by entry.
	if err == nil || !strings.Contains(err.Error(), "class/net") {
		t.Fatalf("err = %v, want one naming class/net", err)
	}
}
