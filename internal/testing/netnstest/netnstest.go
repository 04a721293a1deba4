// Package netnstest gives tests a throwaway network namespace with a netlink
// handle inside it, and small helpers to build bridges, veth pairs and taps
// there, and to move a link into another namespace as a CNI plugin does.
// Everything is removed in t.Cleanup, also when the test fails. Tests using
// it must run as root.
package netnstest

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Namespace is one throwaway network namespace.
type Namespace struct {
	NS     netns.NsHandle
	Handle *netlink.Handle
}

// New creates an unnamed namespace; it vanishes when its last handle closes.
// It skips the test when not root, saying so, because a skip is never a pass.
func New(t testing.TB) *Namespace {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("needs root to create network namespaces: run the tests as root (make test)")
	}
	ns := newNS(t)
	handle, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE) // links only: no xfrm/netfilter sockets
	if err != nil {
		ns.Close()
		t.Fatalf("netlink handle in new namespace: %v", err)
	}
	t.Cleanup(func() {
		handle.Close()
		ns.Close()
	})
	return &Namespace{NS: ns, Handle: handle}
}

// newNS switches one locked OS thread into a new namespace and straight back,
// so no goroutine of the test runs in the wrong namespace afterwards.
func newNS(t testing.TB) netns.NsHandle {
	t.Helper()
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		t.Fatalf("current namespace: %v", err)
	}
	defer orig.Close()
	ns, err := netns.New()
	if err != nil {
		runtime.UnlockOSThread()
		t.Fatalf("new namespace: %v", err)
	}
	if err := netns.Set(orig); err != nil {
		// Still locked: the runtime retires this thread, which is in the
		// wrong namespace, when the test goroutine exits.
		t.Fatalf("back to the original namespace: %v", err)
	}
	runtime.UnlockOSThread()
	return ns
}

// Path names the namespace for another process (a CNI plugin's
// CNI_NETNS): this process's descriptor of it, valid while the test runs.
func (n *Namespace) Path() string {
	return fmt.Sprintf("/proc/%d/fd/%d", os.Getpid(), int(n.NS))
}

// Bridge adds a bridge and sets it up.
func (n *Namespace) Bridge(t testing.TB, name string) *netlink.Bridge {
	t.Helper()
	br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: name}}
	n.must(t, "add bridge "+name, n.Handle.LinkAdd(br))
	n.SetUp(t, name)
	return br
}

// VethPair adds a veth pair, both ends up; port is enslaved to master when master is not empty.
func (n *Namespace) VethPair(t testing.TB, port, peer, master string) {
	t.Helper()
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: port}, PeerName: peer}
	n.must(t, "add veth "+port, n.Handle.LinkAdd(veth))
	if master != "" {
		n.Enslave(t, port, master)
	}
	n.SetUp(t, peer)
	n.SetUp(t, port)
}

// Macvlan adds a bridge-mode macvlan on parent and sets it up.
func (n *Namespace) Macvlan(t testing.TB, name, parent string) {
	t.Helper()
	p := n.Link(t, parent)
	mv := &netlink.Macvlan{
		LinkAttrs: netlink.LinkAttrs{Name: name, ParentIndex: p.Attrs().Index},
		Mode:      netlink.MACVLAN_MODE_BRIDGE,
	}
	n.must(t, "add macvlan "+name, n.Handle.LinkAdd(mv))
	n.SetUp(t, name)
}

// MoveTo moves a link into another namespace, as a CNI plugin moves the
// pod end of a veth into the pod's.
func (n *Namespace) MoveTo(t testing.TB, name string, to *Namespace) {
	t.Helper()
	n.must(t, "move "+name, n.Handle.LinkSetNsFd(n.Link(t, name), int(to.NS)))
}

// Tap adds a persistent tap device, as a hypervisor does for a VM's NIC,
// enslaved to master when master is not empty, and sets it up. The tun
// driver makes it in the namespace of the thread that asks, so it is made
// from inside the namespace.
func (n *Namespace) Tap(t testing.TB, name, master string) {
	t.Helper()
	tap := &netlink.Tuntap{LinkAttrs: netlink.LinkAttrs{Name: name}, Mode: netlink.TUNTAP_MODE_TAP}
	n.must(t, "add tap "+name, n.Do(func() error { return netlink.LinkAdd(tap) }))
	if master != "" {
		n.Enslave(t, name, master)
	}
	n.SetUp(t, name)
}

// Enslave puts link under master (a bridge or bond).
func (n *Namespace) Enslave(t testing.TB, link, master string) {
	t.Helper()
	n.must(t, "enslave "+link, n.Handle.LinkSetMasterByIndex(n.Link(t, link), n.Link(t, master).Attrs().Index))
}

// SetUp sets a link administratively up.
func (n *Namespace) SetUp(t testing.TB, name string) {
	t.Helper()
	n.must(t, "set up "+name, n.Handle.LinkSetUp(n.Link(t, name)))
}

// SetDown sets a link administratively down.
func (n *Namespace) SetDown(t testing.TB, name string) {
	t.Helper()
	n.must(t, "set down "+name, n.Handle.LinkSetDown(n.Link(t, name)))
}

// WaitOperState waits until the kernel reports want as name's operstate.
// Carrier changes reach operstate through the kernel's linkwatch work, which
// runs up to a second after the change that caused them, so a test that
// reads carrier right after setting a peer down must wait for it.
func (n *Namespace) WaitOperState(t testing.TB, name string, want netlink.LinkOperState) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := n.Link(t, name).Attrs().OperState
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("link %s: operstate %s after 5s, want %s", name, got, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Delete removes a link.
func (n *Namespace) Delete(t testing.TB, name string) {
	t.Helper()
	n.must(t, "delete "+name, n.Handle.LinkDel(n.Link(t, name)))
}

// Link looks a link up by name.
func (n *Namespace) Link(t testing.TB, name string) netlink.Link {
	t.Helper()
	l, err := n.Handle.LinkByName(name)
	n.must(t, "find link "+name, err)
	return l
}

func (n *Namespace) must(t testing.TB, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// Do runs fn on a locked OS thread switched into the namespace, for socket
// operations that netlink handles cannot do (sending traffic).
func (n *Namespace) Do(fn func() error) error {
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("current network namespace: %w", err)
	}
	defer orig.Close()
	if err := netns.Set(n.NS); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("enter network namespace %s: %w", n.NS, err)
	}
	fnErr := fn()
	if err := netns.Set(orig); err != nil {
		// The thread stays locked, so no other goroutine inherits the wrong namespace.
		return errors.Join(fnErr, fmt.Errorf("returning to the original namespace: %w", err))
	}
	runtime.UnlockOSThread()
	return fnErr
}
