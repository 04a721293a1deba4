package kubelet

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestRecursiveReadOnlyMount binds this host's /sys as a container mount
// with recursiveReadOnly: its submounts (cgroupfs, and bpffs where mounted)
// are there and read-only, as a runtime makes them. A plain read-only bind
// would leave out the submounts instead.
func TestRecursiveReadOnlyMount(t *testing.T) {
	target := t.TempDir()
	// Should the mount be writable after all, the probe's directory lands
	// in the host's cgroupfs: remove it.
	t.Cleanup(func() { _ = os.Remove("/sys/fs/cgroup/vmop-rro-probe") })
	probe := `n=$(findmnt -R -n -r -o TARGET "$1" | wc -l); rw=$(findmnt -R -n -r -o OPTIONS "$1" | grep -c '^rw' || true); ` +
		`echo "mounts=$n rw=$rw"; mkdir "$1/fs/cgroup/vmop-rro-probe" 2>&1 || true`
	argv := wrap([]string{"/bin/sh", "-c", probe, "sh", target}, []mount{{host: "/sys", path: target, readOnly: true, recursive: true}}, 0, 0, nil)
	out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %v\n%s", argv, err, out)
	}
	got := string(out)
	if strings.Contains(got, "mounts=1 ") || strings.Contains(got, "mounts=0 ") || !strings.Contains(got, " rw=0") || !strings.Contains(got, "Read-only file system") {
		t.Errorf("recursive read-only /sys: %s", got)
	}
	t.Log(strings.TrimSpace(got))
}
