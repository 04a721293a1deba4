package consumers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/containernetworking/cni/pkg/types"
	"github.com/vishvananda/netlink"

	"github.com/jianfenliu/vmoperator/internal/testing/netnstest"
)

// nadConfig is what the checks read of a NAD's CNI config.
type nadConfig struct {
	Type   string `json:"type"`
	Bridge string `json:"bridge"`
	Master string `json:"master"`
	VLAN   int    `json:"vlan"`
	MTU    int    `json:"mtu"`
}

// CheckNAD runs one NAD config through its reference plugin on this host,
// in a throwaway node namespace that holds what the config names (the
// bridge on an uplink, or the macvlan master) and a throwaway pod
// namespace, with the VM's MAC as Multus passes it, and checks the links
// ADD made. It says why when this host cannot run the config: a bridge with
// a VLAN or a master on a VLAN link needs 802.1Q and VLAN filtering (the
// kernel VM runs the builder's forms of those), and SR-IOV and OVS have no
// plugin here.
func CheckNAD(t testing.TB, binDir string, config []byte, mac string) (skipped string, err error) {
	t.Helper()
	var c nadConfig
	if err := json.Unmarshal(config, &c); err != nil {
		return "", fmt.Errorf("NAD config: %w", err)
	}
	switch {
	case c.Type == "bridge" && c.VLAN != 0:
		return "bridge with a VLAN needs bridge VLAN filtering", nil
	case c.Type == "macvlan" && strings.Contains(c.Master, "."):
		return "macvlan on a VLAN link needs 802.1Q", nil
	case c.Type != "bridge" && c.Type != "macvlan":
		return "no " + c.Type + " plugin on this host", nil
	}
	node, pod := netnstest.New(t), netnstest.New(t)
	master := c.Master
	switch c.Type {
	case "bridge":
		node.Bridge(t, c.Bridge)
		node.VethPair(t, "uplink0", "uplink0-wire", c.Bridge)
	case "macvlan":
		if master == "" { // the plugin takes the default route's link
			master = "eth0"
			node.VethPair(t, master, master+"-wire", "")
			if err := defaultRoute(node, master); err != nil {
				return "", err
			}
		} else {
			node.VethPair(t, master, "wire0", "")
		}
	}
	wantMTU := c.MTU
	if wantMTU == 0 {
		wantMTU = 1500
	}
	delegate := Delegate{BinDir: binDir, Node: node.Do, PodNetNS: pod.Path(), PodNamespace: "consumers", PodName: "virt-launcher"}
	return "", delegate.AddCheckDel(context.Background(), config, "net1", mac, func(types.Result) error {
		if c.Type == "bridge" {
			return InspectBridgePort(node, pod, c.Bridge, "uplink0", wantMTU)
		}
		return InspectMacvlan(node, pod, master, mac, wantMTU)
	})
}

func defaultRoute(node *netnstest.Namespace, link string) error {
	l, err := node.Handle.LinkByName(link)
	if err != nil {
		return fmt.Errorf("link %s: %w", link, err)
	}
	addr, err := netlink.ParseAddr("192.0.2.2/24")
	if err != nil {
		return fmt.Errorf("address for %s: %w", link, err)
	}
	if err := node.Handle.AddrAdd(l, addr); err != nil {
		return fmt.Errorf("add address to %s: %w", link, err)
	}
	gw, _ := netlink.ParseAddr("192.0.2.1/32")
	if err := node.Handle.RouteAdd(&netlink.Route{LinkIndex: l.Attrs().Index, Gw: gw.IP}); err != nil {
		return fmt.Errorf("default route via %s: %w", link, err)
	}
	return nil
}

// InspectBridgePort checks that bridge has exactly one port besides uplink
// (the pod's veth) and that the pod's net1 has mtu.
func InspectBridgePort(node, pod *netnstest.Namespace, bridge, uplink string, mtu int) error {
	var errs []error
	if err := podMTU(pod, mtu); err != nil {
		errs = append(errs, err)
	}
	ports, err := BridgePorts(node, bridge, uplink)
	if err != nil {
		return err
	}
	if len(ports) != 1 {
		var names []string
		for _, p := range ports {
			names = append(names, p.Attrs().Name)
		}
		errs = append(errs, fmt.Errorf("ports of %s besides %s: %v, want the pod's veth", bridge, uplink, names))
	}
	return errors.Join(errs...)
}

// BridgePorts are the ports of bridge in the node other than uplink: the
// ones CNI ADD made.
func BridgePorts(node *netnstest.Namespace, bridge, uplink string) ([]netlink.Link, error) {
	br, err := node.Handle.LinkByName(bridge)
	if err != nil {
		return nil, fmt.Errorf("bridge %s: %w", bridge, err)
	}
	links, err := node.Handle.LinkList()
	if err != nil {
		return nil, fmt.Errorf("links of the node with bridge %s: %w", bridge, err)
	}
	var ports []netlink.Link
	for _, l := range links {
		if l.Attrs().MasterIndex == br.Attrs().Index && l.Attrs().Name != uplink {
			ports = append(ports, l)
		}
	}
	return ports, nil
}

// InspectMacvlan checks that the pod's net1 is a bridge-mode macvlan on
// master, with mac when one was asked for, and mtu.
func InspectMacvlan(node, pod *netnstest.Namespace, master, mac string, mtu int) error {
	link, err := pod.Handle.LinkByName("net1")
	if err != nil {
		return fmt.Errorf("pod interface net1: %w", err)
	}
	macvlan, ok := link.(*netlink.Macvlan)
	if !ok {
		return fmt.Errorf("net1 is a %s, want a macvlan", link.Type())
	}
	parent, err := node.Handle.LinkByName(master)
	if err != nil {
		return fmt.Errorf("macvlan master %s: %w", master, err)
	}
	var errs []error
	if err := podMTU(pod, mtu); err != nil {
		errs = append(errs, err)
	}
	if macvlan.ParentIndex != parent.Attrs().Index || macvlan.Mode != netlink.MACVLAN_MODE_BRIDGE {
		errs = append(errs, fmt.Errorf("net1: parent %d mode %v, want %s (%d) in bridge mode", macvlan.ParentIndex, macvlan.Mode, master, parent.Attrs().Index))
	}
	if mac != "" && macvlan.HardwareAddr.String() != mac {
		errs = append(errs, fmt.Errorf("net1 MAC %s, want the VM's %s", macvlan.HardwareAddr, mac))
	}
	return errors.Join(errs...)
}

func podMTU(pod *netnstest.Namespace, mtu int) error {
	link, err := pod.Handle.LinkByName("net1")
	if err != nil {
		return fmt.Errorf("pod interface net1: %w", err)
	}
	if got := link.Attrs().MTU; got != mtu {
		return fmt.Errorf("net1 MTU %d, want %d", got, mtu)
	}
	return nil
}
