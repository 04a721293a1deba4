package nodestack

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"syscall"
)

// mountsUnder lists the mount points at or below dir, deepest first: the
// kubelet's volumes (projected tokens are tmpfs), containerd's rootfs bind
// mounts and /dev/shm of each sandbox, and the network namespaces containerd
// mounts under its state directory.
func mountsUnder(dir string) ([]string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var mounts []string
	scanner := bufio.NewScanner(f)
	for scanner.Scan() {
		fields := strings.Fields(scanner.Text())
		if len(fields) < 5 {
			continue
		}
		path := unescapeMountPath(fields[4])
		if path == dir || strings.HasPrefix(path, dir+"/") {
			mounts = append(mounts, path)
		}
	}
	if err := scanner.Err(); err != nil {
		return nil, fmt.Errorf("read /proc/self/mountinfo: %w", err)
	}
	sort.SliceStable(mounts, func(i, j int) bool { return len(mounts[i]) > len(mounts[j]) })
	return mounts, nil
}

// unmountAll detaches every mount below dir, repeating while some remain
// (a mount may be stacked on another at the same point).
func unmountAll(dir string) error {
	for range 10 {
		mounts, err := mountsUnder(dir)
		if err != nil {
			return err
		}
		if len(mounts) == 0 {
			return nil
		}
		var errs []error
		for _, mount := range mounts {
			if err := syscall.Unmount(mount, syscall.MNT_DETACH); err != nil && !errors.Is(err, syscall.EINVAL) && !errors.Is(err, syscall.ENOENT) {
				errs = append(errs, fmt.Errorf("unmount %s: %w", mount, err))
			}
		}
		if len(errs) > 0 {
			return errors.Join(errs...)
		}
	}
	mounts, _ := mountsUnder(dir)
	return fmt.Errorf("mounts left under %s: %v", dir, mounts)
}

// unescapeMountPath undoes mountinfo's octal escapes (\040 for a space).
func unescapeMountPath(path string) string {
	if !strings.Contains(path, `\`) {
		return path
	}
	var b strings.Builder
	for i := 0; i < len(path); i++ {
		if path[i] == '\\' && i+3 < len(path) {
			if v, err := strconv.ParseUint(path[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(path[i])
	}
	return b.String()
}
