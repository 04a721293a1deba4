package nodestack

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/vishvananda/netlink"
	"k8s.io/client-go/kubernetes"
)

// readTarFile reads one file from a tar archive.
func readTarFile(archive, name string) ([]byte, error) {
	f, err := os.Open(archive)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r := tar.NewReader(f)
	for {
		header, err := r.Next()
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%s has no %s", archive, name)
		}
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", archive, err)
		}
		if strings.TrimPrefix(header.Name, "./") == name {
			raw, err := io.ReadAll(r)
			if err != nil {
				return nil, fmt.Errorf("read %s in %s: %w", name, archive, err)
			}
			return raw, nil
		}
	}
}

// deleteLink removes the stack's bridge, if it exists (the bridge plugin
// creates it with the first pod and never deletes it).
func deleteLink(name string) error {
	link, err := netlink.LinkByName(name)
	if err != nil {
		var notFound netlink.LinkNotFoundError
		if errors.As(err, &notFound) {
			return nil
		}
		return fmt.Errorf("link %s: %w", name, err)
	}
	if err := netlink.LinkDel(link); err != nil {
		return fmt.Errorf("delete link %s: %w", name, err)
	}
	return nil
}

// nftTables are the host's nftables tables, as "family name".
func nftTables() (map[string]bool, error) {
	out, err := exec.Command("nft", "list", "tables").CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("nft list tables: %w: %s", err, out)
	}
	tables := map[string]bool{}
	for _, line := range strings.Split(string(out), "\n") {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(line), "table "); ok {
			tables[rest] = true
		}
	}
	return tables, nil
}

// stackNftTables are the tables kube-proxy (nftables mode) and the portmap
// plugin (nftables backend) create.
var stackNftTables = []string{"ip kube-proxy", "ip6 kube-proxy", "ip cni_hostport", "ip6 cni_hostport"}

// deleteNewNftTables deletes the stack's tables that were not there before
// it started: what kube-proxy --cleanup and the plugins' DEL left.
func deleteNewNftTables(before map[string]bool) error {
	now, err := nftTables()
	if err != nil {
		return err
	}
	var errs []error
	for _, table := range stackNftTables {
		if now[table] && !before[table] {
			if out, err := exec.Command("nft", "delete", "table", table).CombinedOutput(); err != nil {
				errs = append(errs, fmt.Errorf("nft delete table %s: %w: %s", table, err, out))
			}
		}
	}
	return errors.Join(errs...)
}

// leftNftTables are the stack's nftables tables present now that were not
// before it started: empty after a clean Stop.
func leftNftTables(before map[string]bool) ([]string, error) {
	now, err := nftTables()
	if err != nil {
		return nil, err
	}
	var left []string
	for _, table := range stackNftTables {
		if now[table] && !before[table] {
			left = append(left, table)
		}
	}
	return left, nil
}

func readSysctls(names []string) map[string]string {
	values := map[string]string{}
	for _, name := range names {
		if raw, err := os.ReadFile(filepath.Join("/proc/sys", name)); err == nil {
			values[name] = strings.TrimSpace(string(raw))
		}
	}
	return values
}

// restoreSysctls writes back the values read before the kubelet started.
func restoreSysctls(values map[string]string) error {
	var errs []error
	for name, value := range values {
		path := filepath.Join("/proc/sys", name)
		current, err := os.ReadFile(path)
		if err == nil && strings.TrimSpace(string(current)) == value {
			continue
		}
		if err := os.WriteFile(path, []byte(value), 0o644); err != nil {
			errs = append(errs, fmt.Errorf("restore sysctl %s=%s: %w", name, value, err))
		}
	}
	return errors.Join(errs...)
}

func (s *Stack) clientset() (*kubernetes.Clientset, error) {
	clientset, err := kubernetes.NewForConfig(s.ControlPlane.Config)
	if err != nil {
		return nil, fmt.Errorf("clientset for %s: %w", s.ControlPlane.Config.Host, err)
	}
	return clientset, nil
}
