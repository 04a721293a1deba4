package nodestack

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// ownerFile names the process that owns a stack's directory: the test
// binary. A stack whose owner is gone was never stopped (go test -timeout
// panics without running cleanups; a SIGKILL runs nothing), and the next
// Start sweeps it.
const ownerFile = "owner.pid"

// sysctlsFile keeps the sysctls read before the kubelet started, so a
// sweep can restore them too.
const sysctlsFile = "sysctls.json"

func writeOwner(dir string) error {
	return os.WriteFile(filepath.Join(dir, ownerFile), []byte(strconv.Itoa(os.Getpid())), 0o644)
}

func ownerAlive(dir string) bool {
	raw, err := os.ReadFile(filepath.Join(dir, ownerFile))
	if err != nil {
		return false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(raw)))
	if err != nil {
		return false
	}
	return syscall.Kill(pid, 0) == nil
}

// sweepStale removes what stacks of dead test binaries left: their
// processes, mounts, bridges, cgroups and directories, their sysctls, and
// kube-proxy's and portmap's nftables tables when no stack is alive.
func sweepStale() error {
	dirs, err := filepath.Glob(filepath.Join(os.TempDir(), "nodestack-*"))
	if err != nil {
		return fmt.Errorf("stale node stacks: %w", err)
	}
	mounts, err := cgroupMounts()
	if err != nil {
		return err
	}
	var errs []error
	alive := 0
	for _, dir := range dirs {
		// Only the stacks' own directories: each names its owner.
		if _, err := os.Stat(filepath.Join(dir, ownerFile)); err != nil {
			continue
		}
		if ownerAlive(dir) {
			alive++
			continue
		}
		errs = append(errs, sweepDir(dir, mounts))
	}
	if alive == 0 {
		errs = append(errs, deleteNewNftTables(map[string]bool{}))
	}
	return errors.Join(errs...)
}

func sweepDir(dir string, mounts []string) error {
	id := strings.TrimPrefix(filepath.Base(dir), "nodestack-")
	root := "/nodestack-" + id
	errs := []error{killCgroupTree(mounts, root), unmountAll(dir), deleteLink("ns" + shorten(id, 10)), removeCgroupTree(mounts, root)}
	if raw, err := os.ReadFile(filepath.Join(dir, sysctlsFile)); err == nil {
		values := map[string]string{}
		if err := json.Unmarshal(raw, &values); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", filepath.Join(dir, sysctlsFile), err))
		} else {
			errs = append(errs, restoreSysctls(values))
		}
	}
	if os.Getenv("NODESTACK_KEEP") == "" {
		errs = append(errs, os.RemoveAll(dir))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("sweep stale node stack %s: %w", dir, err)
	}
	return nil
}

func writeSysctls(dir string, values map[string]string) error {
	raw, err := json.Marshal(values)
	if err != nil {
		return fmt.Errorf("sysctls of %s: %w", dir, err)
	}
	return os.WriteFile(filepath.Join(dir, sysctlsFile), raw, 0o644)
}
