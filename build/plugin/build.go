package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

// Platform is one os/arch Krew installs the plugin on. Windows is not
// among them: console, vnc and ssh replace the process (syscall.Exec).
type Platform struct{ OS, Arch string }

// Platforms are those the manifest lists and the release builds.
func Platforms() []Platform {
	return []Platform{{"linux", "amd64"}, {"linux", "arm64"}, {"darwin", "amd64"}, {"darwin", "arm64"}}
}

// Key is how the manifest's placeholder names the platform: SHA256_<Key>.
func (p Platform) Key() string { return p.OS + "_" + p.Arch }

// Archive is the release file of the platform.
func (p Platform) Archive() string { return "kubectl-vmprofile_" + p.Key() + ".tar.gz" }

// BuildArchive cross-compiles kubectl-vmprofile for p, stamped with
// version, packs it with the license into archive and returns its SHA-256.
func BuildArchive(ctx context.Context, p Platform, version, license, archive string) (string, error) {
	dir, err := os.MkdirTemp("", "kubectl-vmprofile-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(dir)
	binary := filepath.Join(dir, "kubectl-vmprofile")
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags",
		"-s -w -X github.com/jianfenliu/vmoperator/version.Version="+version, "-o", binary, "./cmd/kubectl-vmprofile")
	cmd.Env = append(os.Environ(), "GOOS="+p.OS, "GOARCH="+p.Arch, "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build kubectl-vmprofile for %s: %w\n%s", p.Key(), err, out)
	}
	files := map[string][]byte{}
	for name, path := range map[string]string{"kubectl-vmprofile": binary, "LICENSE": license} {
		if files[name], err = os.ReadFile(path); err != nil {
			return "", err
		}
	}
	packed, err := Pack(files)
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(archive, packed, 0o644); err != nil {
		return "", err
	}
	sum := sha256.Sum256(packed)
	return hex.EncodeToString(sum[:]), nil
}

// Pack makes a gzipped tar of the files at its root, the binary
// executable, with fixed times and owners, so the same input gives the
// same archive (and SHA-256).
func Pack(files map[string][]byte) ([]byte, error) {
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for _, name := range []string{"kubectl-vmprofile", "LICENSE"} {
		content, ok := files[name]
		if !ok {
			return nil, fmt.Errorf("archive: %s missing", name)
		}
		mode := int64(0o644)
		if name == "kubectl-vmprofile" {
			mode = 0o755
		}
		header := &tar.Header{Name: name, Mode: mode, Size: int64(len(content)), ModTime: time.Unix(0, 0), Format: tar.FormatPAX}
		if err := tw.WriteHeader(header); err != nil {
			return nil, fmt.Errorf("archive: header of %s: %w", name, err)
		}
		if _, err := tw.Write(content); err != nil {
			return nil, fmt.Errorf("archive: %s: %w", name, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("archive: close tar: %w", err)
	}
	if err := gz.Close(); err != nil {
		return nil, fmt.Errorf("archive: close gzip: %w", err)
	}
	return buf.Bytes(), nil
}

// Render fills the manifest template: vVERSION becomes v<version> and each
// SHA256_<os>_<arch> its archive's sum. A placeholder left over is an error.
func Render(template []byte, version string, sums map[string]string) ([]byte, error) {
	out := strings.ReplaceAll(string(template), "vVERSION", "v"+version)
	for key, sum := range sums {
		out = strings.ReplaceAll(out, "SHA256_"+key, sum)
	}
	if left := regexp.MustCompile(`SHA256_\w+|vVERSION`).FindString(out); left != "" {
		return nil, fmt.Errorf("krew manifest: %s not filled", left)
	}
	return []byte(out), nil
}
