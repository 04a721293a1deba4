// Command vmnode runs inside the development environment's VM, which boots
// Debian's stock kernel because the host kernel lacks 802.1Q VLANs and bridge
// VLAN filtering. For each node it builds the node's links in a network
// namespace of its own and runs that node's vmop-agent, which reaches the
// host's apiserver through qemu's user network (10.0.2.2). Development
// environment only; never shipped.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// node is one node's kernel setup: a VLAN-filtering bridge br-mgmt with its
// uplink eth1 (a dummy link: it has carrier like a cabled NIC) trunking the
// given VLANs, and optionally a fake SR-IOV PF in the agent's sysfs tree.
type node struct {
	name  string
	vlans []int
	sriov bool
}

func main() {
	agent := flag.String("agent", "/vmop-agent", "vmop-agent binary")
	kubeconfig := flag.String("kubeconfig", "/kubeconfig", "kubeconfig reaching the host's apiserver")
	flag.Parse()
	nodes := []node{
		{name: "node-a", vlans: []int{1, 100}, sriov: true},
		{name: "node-b", vlans: []int{200}},
	}
	var agents []*exec.Cmd
	for i, n := range nodes {
		if err := build(n); err != nil {
			fail("node %s: %v", n.name, err)
		}
		sysfs := "/tmp/sysfs-" + n.name
		if err := fakeSysfs(sysfs, n.sriov); err != nil {
			fail("node %s: sysfs: %v", n.name, err)
		}
		cmd := exec.Command(*agent, "--node-name", n.name, "--kubeconfig", *kubeconfig,
			"--netns", "/run/netns/"+n.name, "--lease-namespace", "vmop-system",
			"--lease-duration", "30s", "--lease-renew-interval", "10s",
			"--metrics-bind-address", "", "--health-probe-bind-address", fmt.Sprintf("127.0.0.1:%d", 8081+i),
			"--sysfs-root", sysfs, "--extra-uplinks", "eth1")
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stdout
		if err := cmd.Start(); err != nil {
			fail("node %s: agent: %v", n.name, err)
		}
		fmt.Printf("VMOP-DEV-NODE-READY %s\n", n.name)
		agents = append(agents, cmd)
	}
	for _, cmd := range agents {
		_ = cmd.Wait()
	}
}

func fail(format string, args ...any) {
	fmt.Printf("VMOP-DEV-NODE-FAILED "+format+"\n", args...)
	os.Exit(1)
}

// build creates the node's namespace and links.
func build(n node) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	host, err := netns.Get()
	if err != nil {
		return err
	}
	defer host.Close()
	ns, err := netns.NewNamed(n.name) // also switches this thread into it
	if err != nil {
		return err
	}
	defer ns.Close()
	defer netns.Set(host) //nolint:errcheck // best effort; the thread is unlocked right after
	// Route only: the VM's kernel has no xfrm or netfilter netlink loaded.
	handle, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err != nil {
		return err
	}
	defer handle.Close()
	on := true
	steps := []struct {
		what string
		do   func() error
	}{
		{"set lo up", func() error { return up(handle, "lo") }},
		{"add uplink eth1", func() error { return handle.LinkAdd(&netlink.Dummy{LinkAttrs: netlink.LinkAttrs{Name: "eth1"}}) }},
		{"add VLAN-filtering bridge br-mgmt", func() error {
			return handle.LinkAdd(&netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: "br-mgmt"}, VlanFiltering: &on})
		}},
		{"enslave eth1 to br-mgmt", func() error { return enslave(handle, "eth1", "br-mgmt") }},
		{"set eth1 up", func() error { return up(handle, "eth1") }},
		{"set br-mgmt up", func() error { return up(handle, "br-mgmt") }},
	}
	for _, step := range steps {
		if err := step.do(); err != nil {
			return fmt.Errorf("%s: %w", step.what, err)
		}
	}
	eth1, err := handle.LinkByName("eth1")
	if err != nil {
		return err
	}
	for _, vlan := range n.vlans {
		if err := handle.BridgeVlanAdd(eth1, uint16(vlan), false, false, false, true); err != nil {
			return fmt.Errorf("allow VLAN %d on eth1: %w", vlan, err)
		}
	}
	return nil
}

func up(h *netlink.Handle, name string) error {
	link, err := h.LinkByName(name)
	if err != nil {
		return err
	}
	return h.LinkSetUp(link)
}

func enslave(h *netlink.Handle, port, bridge string) error {
	p, err := h.LinkByName(port)
	if err != nil {
		return err
	}
	b, err := h.LinkByName(bridge)
	if err != nil {
		return err
	}
	return h.LinkSetMaster(p, b)
}

// fakeSysfs writes the part of sysfs the agent's SR-IOV probe reads: no
// kernel here has SR-IOV hardware. With sriov, PF ens1f0 has 8 VFs possible,
// 4 created, one of them bound to vfio-pci (in use).
func fakeSysfs(root string, sriov bool) error {
	if err := os.MkdirAll(filepath.Join(root, "class", "net"), 0o755); err != nil || !sriov {
		return err
	}
	pci := filepath.Join(root, "devices", "pci0000:00")
	pf := filepath.Join(pci, "0000:3b:00.0")
	files := map[string]string{
		filepath.Join(pf, "sriov_totalvfs"):                            "8",
		filepath.Join(pf, "sriov_numvfs"):                              "4",
		filepath.Join(root, "class", "net", "ens1f0.dir", "operstate"): "up",
	}
	for path, content := range files {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(path, []byte(content+"\n"), 0o644); err != nil {
			return err
		}
	}
	drivers := filepath.Join(root, "bus", "pci", "drivers")
	links := map[string]string{filepath.Join(pf, "driver"): filepath.Join(drivers, "ixgbe")}
	for vf := 0; vf < 4; vf++ {
		dir := filepath.Join(pci, fmt.Sprintf("0000:3b:10.%d", vf))
		driver := "iavf"
		if vf == 0 {
			driver = "vfio-pci" // handed to a VM
		} else if err := os.MkdirAll(filepath.Join(dir, "net", fmt.Sprintf("ens1f0v%d", vf)), 0o755); err != nil {
			return err
		}
		links[filepath.Join(pf, fmt.Sprintf("virtfn%d", vf))] = dir
		links[filepath.Join(dir, "driver")] = filepath.Join(drivers, driver)
	}
	for _, d := range []string{"ixgbe", "iavf", "vfio-pci"} {
		if err := os.MkdirAll(filepath.Join(drivers, d), 0o755); err != nil {
			return err
		}
	}
	netdev := filepath.Join(root, "class", "net", "ens1f0")
	if err := os.Rename(netdev+".dir", netdev); err != nil {
		return err
	}
	links[filepath.Join(netdev, "device")] = pf
	for link, target := range links {
		if err := os.MkdirAll(filepath.Dir(link), 0o755); err != nil {
			return err
		}
		if err := os.Symlink(target, link); err != nil && !strings.Contains(err.Error(), "exists") {
			return err
		}
	}
	return nil
}
