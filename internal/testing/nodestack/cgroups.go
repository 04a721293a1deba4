package nodestack

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// cgroupMounts are the mount points of every cgroup hierarchy, v1 and v2:
// on these hosts one per v1 controller under /sys/fs/cgroup, plus the
// cgroup2 hierarchy at /sys/fs/cgroup/unified.
func cgroupMounts() ([]string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var mounts []string
	scanner := bufio.NewScanner(f)
	for scanner.Scan() {
		// 36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw
		fields := strings.Fields(scanner.Text())
		sep := indexOf(fields, "-")
		if sep < 0 || sep+1 >= len(fields) || len(fields) < 5 {
			continue
		}
		if fs := fields[sep+1]; fs == "cgroup" || fs == "cgroup2" {
			mounts = append(mounts, unescapeMountPath(fields[4]))
		}
	}
	if err := scanner.Err(); err != nil {
		return nil, fmt.Errorf("read /proc/self/mountinfo: %w", err)
	}
	return mounts, nil
}

func indexOf(fields []string, want string) int {
	for i, field := range fields {
		if field == want {
			return i
		}
	}
	return -1
}

// createCgroup makes the cgroup name (a path like /nodestack-1/runtime) in
// every hierarchy. A v1 cpuset cgroup admits no task until it has CPUs and
// memory nodes, so those are copied from its parent, as the kernel's
// cgroup.clone_children would.
func createCgroup(mounts []string, name string) error {
	for _, mount := range mounts {
		dir := filepath.Join(mount, name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("cgroup %s: %w", dir, err)
		}
		if filepath.Base(mount) != "cpuset" {
			continue
		}
		for _, part := range strings.Split(strings.Trim(name, "/"), "/") {
			mount = filepath.Join(mount, part)
			for _, file := range []string{"cpuset.cpus", "cpuset.mems"} {
				if err := copyCgroupFile(filepath.Dir(mount), mount, file); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func copyCgroupFile(parent, child, file string) error {
	current, err := os.ReadFile(filepath.Join(child, file))
	if err != nil {
		return err
	}
	if strings.TrimSpace(string(current)) != "" {
		return nil
	}
	value, err := os.ReadFile(filepath.Join(parent, file))
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(child, file), value, 0o644); err != nil {
		return fmt.Errorf("cgroup %s: %w", filepath.Join(child, file), err)
	}
	return nil
}

// joinCgroup moves pid into the cgroup name of every hierarchy.
func joinCgroup(mounts []string, name string, pid int) error {
	for _, mount := range mounts {
		procs := filepath.Join(mount, name, "cgroup.procs")
		if err := os.WriteFile(procs, []byte(strconv.Itoa(pid)), 0o644); err != nil {
			return fmt.Errorf("move %d into %s: %w", pid, procs, err)
		}
	}
	return nil
}

// cgroupDirs are the directories of the cgroup tree root in one hierarchy,
// deepest first.
func cgroupDirs(mount, root string) []string {
	var dirs []string
	_ = filepath.WalkDir(filepath.Join(mount, root), func(path string, entry os.DirEntry, err error) error {
		if err == nil && entry.IsDir() {
			dirs = append(dirs, path)
		}
		return nil
	})
	sort.Slice(dirs, func(i, j int) bool { return len(dirs[i]) > len(dirs[j]) })
	return dirs
}

// killCgroupTree kills every process in the cgroup tree root, until none is
// left: the containers, their shims and containerd, which the shims
// outlive when only containerd is stopped.
func killCgroupTree(mounts []string, root string) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		pids := cgroupTreePids(mounts, root)
		if len(pids) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("processes %v still in cgroup %s after SIGKILL", pids, root)
		}
		for _, pid := range pids {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func cgroupTreePids(mounts []string, root string) []int {
	seen := map[int]bool{}
	var pids []int
	for _, mount := range mounts {
		for _, dir := range cgroupDirs(mount, root) {
			raw, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
			if err != nil {
				continue
			}
			for _, field := range strings.Fields(string(raw)) {
				if pid, err := strconv.Atoi(field); err == nil && !seen[pid] {
					seen[pid] = true
					pids = append(pids, pid)
				}
			}
		}
	}
	return pids
}

// removeCgroupTree removes the cgroup tree root from every hierarchy. A
// cgroup whose last process just died may refuse removal (EBUSY) for a
// moment, so removal is retried.
func removeCgroupTree(mounts []string, root string) error {
	var errs []error
	for _, mount := range mounts {
		for _, dir := range cgroupDirs(mount, root) {
			if err := removeCgroup(dir); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

func removeCgroup(dir string) error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := syscall.Rmdir(dir)
		if err == nil || errors.Is(err, syscall.ENOENT) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("remove cgroup %s: %w", dir, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
