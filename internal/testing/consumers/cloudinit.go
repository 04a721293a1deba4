package consumers

import (
	"bufio"
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Guest is a distribution family as cloud-init renders network config for it.
type Guest struct {
	Name     string // for messages
	Distro   string // cloud-init's -D
	Renderer string // cloud-init's -O
}

// Guests are the two families every network-data must configure.
var Guests = []Guest{
	{Name: "Debian (systemd-networkd)", Distro: "debian", Renderer: "networkd"},
	{Name: "RHEL-family (sysconfig)", Distro: "rhel", Renderer: "sysconfig"},
}

// GuestInterface is what a rendered configuration does to one NIC: the
// comparable facts, whatever the file format.
type GuestInterface struct {
	Name string
	MAC  string
	DHCP bool
	// Addresses in CIDR form, Gateways the default routes' next hops, DNS
	// the name servers, each sorted.
	Addresses []string
	Gateways  []string
	DNS       []string
	MTU       int
	// Routes that are not default routes, as "destination via gateway":
	// the operator never writes any, so one here is a misreading.
	OtherRoutes []string
}

func (g GuestInterface) String() string {
	return fmt.Sprintf("%s mac=%s dhcp=%v addresses=%v gateways=%v dns=%v mtu=%d other-routes=%v",
		g.Name, g.MAC, g.DHCP, g.Addresses, g.Gateways, g.DNS, g.MTU, g.OtherRoutes)
}

// CloudInitVersion is the version of the cloud-init that renders, as it
// reports itself ("/usr/bin/cloud-init 22.4.2").
func CloudInitVersion() (string, error) {
	out, err := exec.Command("cloud-init", "--version").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("cloud-init --version: %w: %s (make test installs Debian's cloud-init)", err, out)
	}
	return strings.TrimSpace(string(out)), nil
}

// Rendering is what cloud-init wrote for one guest family.
type Rendering struct {
	// Interfaces by NIC name.
	Interfaces map[string]GuestInterface
	// GlobalDNS are name servers configured for the whole guest
	// (/etc/resolv.conf), where a renderer puts some interfaces' servers:
	// sysconfig does for DHCP interfaces.
	GlobalDNS []string
}

// Render runs `cloud-init devel net-convert` on a netplan v2 network-data
// for guest, and reads back what the rendered files configure.
func Render(networkData string, guest Guest) (Rendering, error) {
	dir, err := os.MkdirTemp("", "vmop-cloudinit-")
	if err != nil {
		return Rendering{}, err
	}
	defer os.RemoveAll(dir)
	input := filepath.Join(dir, "network-data.yaml")
	if err := os.WriteFile(input, []byte(networkData), 0o600); err != nil {
		return Rendering{}, err
	}
	out := filepath.Join(dir, "out")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "cloud-init", "devel", "net-convert", "-p", input, "-k", "yaml",
		"-d", out, "-D", guest.Distro, "-O", guest.Renderer)
	if output, err := cmd.CombinedOutput(); err != nil {
		return Rendering{}, fmt.Errorf("cloud-init net-convert for %s rejected the network-data: %w\n%s", guest.Name, err, output)
	}
	var r Rendering
	switch guest.Renderer {
	case "networkd":
		r.Interfaces, err = readNetworkd(filepath.Join(out, "etc", "systemd", "network"))
	case "sysconfig":
		r.Interfaces, err = readSysconfig(filepath.Join(out, "etc", "sysconfig", "network-scripts"))
	default:
		return r, fmt.Errorf("no reader for renderer %q", guest.Renderer)
	}
	if err != nil {
		return r, err
	}
	r.GlobalDNS, err = readResolvConf(filepath.Join(out, "etc", "resolv.conf"))
	return r, err
}

// readResolvConf lists the nameserver lines of a rendered resolv.conf, if any.
func readResolvConf(path string) ([]string, error) {
	raw, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var servers []string
	for _, line := range strings.Split(string(raw), "\n") {
		if fields := strings.Fields(line); len(fields) == 2 && fields[0] == "nameserver" {
			servers = append(servers, fields[1])
		}
	}
	slices.Sort(servers)
	return slices.Compact(servers), nil
}

// iniSections reads a systemd unit-style file into its sections' key/value
// pairs, in order (a section may repeat, as [Route] and [Address] do).
type iniSection struct {
	name   string
	values map[string][]string
}

func readINI(path string) ([]iniSection, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var sections []iniSection
	scanner := bufio.NewScanner(f)
	for scanner.Scan() {
		line := strings.TrimSpace(scanner.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			sections = append(sections, iniSection{name: line[1 : len(line)-1], values: map[string][]string{}})
		case len(sections) > 0:
			key, value, _ := strings.Cut(line, "=")
			sections[len(sections)-1].values[key] = append(sections[len(sections)-1].values[key], value)
		}
	}
	if err := scanner.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return sections, nil
}

func readNetworkd(dir string) (map[string]GuestInterface, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.network"))
	if err != nil {
		return nil, fmt.Errorf("networkd files in %s: %w", dir, err)
	}
	out := map[string]GuestInterface{}
	for _, file := range files {
		sections, err := readINI(file)
		if err != nil {
			return nil, err
		}
		var g GuestInterface
		for _, s := range sections {
			switch s.name {
			case "Match":
				g.Name, g.MAC = first(s.values["Name"]), first(s.values["MACAddress"])
			case "Link":
				g.MTU, _ = strconv.Atoi(first(s.values["MTUBytes"]))
			case "Network":
				g.DHCP = slices.Contains([]string{"yes", "ipv4", "ipv6"}, first(s.values["DHCP"]))
				g.Addresses = append(g.Addresses, s.values["Address"]...)
				for _, dns := range s.values["DNS"] {
					g.DNS = append(g.DNS, strings.Fields(dns)...)
				}
				g.Gateways = append(g.Gateways, s.values["Gateway"]...)
			case "Address":
				g.Addresses = append(g.Addresses, s.values["Address"]...)
			case "Route":
				addRoute(&g, first(s.values["Destination"]), first(s.values["Gateway"]))
			}
		}
		out[g.Name] = normalized(g)
	}
	return out, nil
}

// addRoute files a route as a default route (no destination, or a /0) or
// as another route.
func addRoute(g *GuestInterface, destination, gateway string) {
	if destination == "" || destination == "0.0.0.0/0" || destination == "::/0" {
		g.Gateways = append(g.Gateways, gateway)
		return
	}
	g.OtherRoutes = append(g.OtherRoutes, destination+" via "+gateway)
}

func readSysconfig(dir string) (map[string]GuestInterface, error) {
	files, err := filepath.Glob(filepath.Join(dir, "ifcfg-*"))
	if err != nil {
		return nil, fmt.Errorf("ifcfg files in %s: %w", dir, err)
	}
	out := map[string]GuestInterface{}
	for _, file := range files {
		values, err := readShellVars(file)
		if err != nil {
			return nil, err
		}
		g := GuestInterface{Name: values["DEVICE"], MAC: values["HWADDR"], DHCP: values["BOOTPROTO"] == "dhcp" || values["DHCPV6C"] == "yes"}
		g.MTU, _ = strconv.Atoi(values["MTU"])
		for _, suffix := range []string{"", "0", "1", "2", "3"} {
			if ip := values["IPADDR"+suffix]; ip != "" {
				prefix := values["PREFIX"+suffix]
				if mask := values["NETMASK"+suffix]; mask != "" {
					prefix = strconv.Itoa(maskBits(mask))
				}
				g.Addresses = append(g.Addresses, ip+"/"+prefix)
			}
		}
		if v6 := values["IPV6ADDR"]; v6 != "" {
			g.Addresses = append(g.Addresses, v6)
		}
		g.Addresses = append(g.Addresses, strings.Fields(values["IPV6ADDR_SECONDARIES"])...)
		for _, key := range []string{"GATEWAY", "IPV6_DEFAULTGW"} {
			if gw := values[key]; gw != "" {
				g.Gateways = append(g.Gateways, strings.Split(gw, "%")[0])
			}
		}
		for i := 1; i <= 3; i++ {
			if dns := values["DNS"+strconv.Itoa(i)]; dns != "" {
				g.DNS = append(g.DNS, dns)
			}
		}
		for _, routes := range []string{"route-", "route6-"} {
			if err := readRouteFile(filepath.Join(dir, routes+g.Name), &g); err != nil {
				return nil, err
			}
		}
		out[g.Name] = normalized(g)
	}
	return out, nil
}

// readRouteFile reads a route-IFACE or route6-IFACE file: either
// "DEST via GW dev IFACE" lines or ADDRESSn/NETMASKn/GATEWAYn variables.
func readRouteFile(path string, g *GuestInterface) error {
	raw, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return err
	}
	vars := map[string]string{}
	for _, line := range strings.Split(string(raw), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if key, value, ok := strings.Cut(line, "="); ok && !strings.Contains(key, " ") {
			vars[key] = strings.Trim(value, `"'`)
			continue
		}
		fields := strings.Fields(line)
		if len(fields) >= 3 && fields[1] == "via" {
			addRoute(g, fields[0], fields[2])
		}
	}
	for i := 0; vars["ADDRESS"+strconv.Itoa(i)] != ""; i++ {
		n := strconv.Itoa(i)
		addRoute(g, vars["ADDRESS"+n]+"/"+strconv.Itoa(maskBits(vars["NETMASK"+n])), vars["GATEWAY"+n])
	}
	return nil
}

func readShellVars(path string) (map[string]string, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	values := map[string]string{}
	for _, line := range strings.Split(string(raw), "\n") {
		line = strings.TrimSpace(line)
		if key, value, ok := strings.Cut(line, "="); ok && !strings.HasPrefix(line, "#") {
			values[key] = strings.Trim(value, `"'`)
		}
	}
	return values, nil
}

func maskBits(mask string) int {
	addr, err := netip.ParseAddr(mask)
	if err != nil {
		return -1
	}
	bits := 0
	for _, b := range addr.AsSlice() {
		for ; b != 0; b <<= 1 {
			bits++
		}
	}
	return bits
}

func first(values []string) string {
	if len(values) == 0 {
		return ""
	}
	return values[0]
}

// normalized sorts the lists and lower-cases the MAC, so that two renderings
// of the same intent compare equal.
func normalized(g GuestInterface) GuestInterface {
	g.MAC = strings.ToLower(g.MAC)
	for _, list := range []*[]string{&g.Addresses, &g.Gateways, &g.DNS, &g.OtherRoutes} {
		slices.Sort(*list)
		if len(*list) == 0 {
			*list = nil
		}
	}
	return g
}
