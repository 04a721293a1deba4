package nmstatesim

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jianfenliu/vmoperator/internal/testing/netnstest"
)

// failingPolicy changes eth1's MTU and eth2's VF count, then asks for a
// VLAN on a NIC that does not exist: the apply fails on its last interface.
const failingPolicy = `
interfaces:
- {name: eth1, type: ethernet, state: up, mtu: 9000}
- {name: eth2, type: ethernet, state: up, ethernet: {sr-iov: {total-vfs: 4}}}
- {name: eth9.100, type: vlan, state: up, vlan: {base-iface: eth9, id: 100}}
`

// checkpointNode is a node with two NICs (veths: the host kernel has no
// dummies) and a sysfs where eth2 is an SR-IOV PF with no VFs.
func checkpointNode(t *testing.T) (Node, string) {
	t.Helper()
	ns := netnstest.New(t)
	ns.VethPair(t, "eth1", "peer1", "")
	ns.VethPair(t, "eth2", "peer2", "")
	sysfs := t.TempDir()
	numVFs := filepath.Join(sysfs, "class", "net", "eth2", "device", "sriov_numvfs")
	if err := os.MkdirAll(filepath.Dir(numVFs), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(numVFs, []byte("0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return Node{Name: "n", Links: ns.Handle, SysfsRoot: sysfs}, numVFs
}

func mtuOf(t *testing.T, n Node, name string) int {
	t.Helper()
	l, err := n.Links.LinkByName(name)
	if err != nil {
		t.Fatal(err)
	}
	return l.Attrs().MTU
}

func vfsOf(t *testing.T, path string) string {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(raw))
}

// TestCheckpointRollsBackAFailedApply runs on the host kernel: with the
// checkpoint switch on, an apply that fails on its last interface leaves
// the node as it found it (nmstate's with_nm_checkpoint rolls back on any
// error) and says so; with it off, the MTU and VF count it changed stay.
func TestCheckpointRollsBackAFailedApply(t *testing.T) {
	n, numVFs := checkpointNode(t)
	err := applyWith(n, Fidelity{Checkpoint: true}, []byte(failingPolicy))
	if err == nil || !strings.Contains(err.Error(), "eth9") || !strings.Contains(err.Error(), "rolled back to the checkpoint") {
		t.Fatalf("apply error %v, want the missing eth9 and the rollback named", err)
	}
	if got := mtuOf(t, n, "eth1"); got != 1500 {
		t.Errorf("after the rollback eth1 has MTU %d, want 1500 as before", got)
	}
	if got := vfsOf(t, numVFs); got != "0" {
		t.Errorf("after the rollback eth2 has %s VFs, want 0 as before", got)
	}

	n, numVFs = checkpointNode(t)
	if err := applyWith(n, Fidelity{}, []byte(failingPolicy)); err == nil || strings.Contains(err.Error(), "rolled back") {
		t.Fatalf("apply without the checkpoint: error %v, want a failure without rollback", err)
	}
	if got, vfs := mtuOf(t, n, "eth1"), vfsOf(t, numVFs); got != 9000 || vfs != "4" {
		t.Errorf("without the checkpoint eth1 has MTU %d and eth2 %s VFs, want 9000 and 4 (half-applied)", got, vfs)
	}
}
