//go:build integration

package main

import (
	"archive/tar"
	"bytes"
	"context"
	"debug/elf"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/validate"
)

const testVersion = "0.0.0-imagetest"

// TestImagesAreCompleteStaticAndReproducible builds both images twice, as
// make images does, and opens the archives the way an importer would.
func TestImagesAreCompleteStaticAndReproducible(t *testing.T) {
	created := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	build := func(out string) []Result {
		t.Helper()
		started := time.Now()
		results, err := Build(context.Background(), Options{Source: "../..", Out: out, Registry: "registry.test/vmop",
			Version: testVersion, Revision: "0123456789abcdef", Created: created})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("built %d images in %v", len(results), time.Since(started).Round(100*time.Millisecond))
		return results
	}
	first := build(t.TempDir())
	for _, r := range first {
		t.Run(r.Component.Name, func(t *testing.T) {
			t.Logf("%s: %.1f MiB, index %s", r.Reference, float64(r.Size)/(1<<20), r.Index)
			checkArchive(t, r)
		})
	}
	second := build(t.TempDir())
	for i, r := range second {
		a, err := os.ReadFile(first[i].Archive)
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(r.Archive)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(a, b) || r.Index != first[i].Index {
			t.Errorf("%s: a second build differs (index %s, then %s): the build is not reproducible", r.Component.Name, first[i].Index, r.Index)
		}
	}
}

func checkArchive(t *testing.T, r Result) {
	dir := t.TempDir()
	untar(t, r.Archive, dir)
	path, err := layout.FromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	top, err := path.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	topManifest, err := top.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(topManifest.Manifests) != 1 {
		t.Fatalf("index.json lists %d entries, want the one multi-platform index", len(topManifest.Manifests))
	}
	entry := topManifest.Manifests[0]
	if got := entry.Annotations["io.containerd.image.name"]; got != r.Reference {
		t.Errorf("containerd image name %q, want %q", got, r.Reference)
	}
	if got := entry.Annotations["org.opencontainers.image.ref.name"]; got != testVersion {
		t.Errorf("OCI ref name %q, want %q", got, testVersion)
	}
	index, err := top.ImageIndex(entry.Digest)
	if err != nil {
		t.Fatal(err)
	}
	// validate re-reads every blob and checks digests, sizes, diff IDs and
	// media types against the manifests.
	if err := validate.Index(index); err != nil {
		t.Fatalf("the archive does not validate: %v", err)
	}
	manifest, err := index.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	var platforms []string
	for _, m := range manifest.Manifests {
		platforms = append(platforms, m.Platform.String())
		img, err := index.Image(m.Digest)
		if err != nil {
			t.Fatal(err)
		}
		checkImage(t, r.Component, *m.Platform, img)
	}
	if strings.Join(platforms, ",") != "linux/amd64,linux/arm64" {
		t.Errorf("platforms %v, want linux/amd64 and linux/arm64", platforms)
	}
}

func checkImage(t *testing.T, c Component, platform v1.Platform, img v1.Image) {
	config, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if config.OS != platform.OS || config.Architecture != platform.Architecture {
		t.Errorf("%s: config says %s/%s", platform, config.OS, config.Architecture)
	}
	if got := strings.Join(config.Config.Entrypoint, " "); got != "/"+c.Name {
		t.Errorf("%s: entrypoint %q", platform, got)
	}
	if config.Config.User != c.User {
		t.Errorf("%s: user %q, want %q", platform, config.Config.User, c.User)
	}
	if c.Name == "vmop-controller" && strings.HasPrefix(config.Config.User, "0") {
		t.Errorf("the controller image runs as root")
	}
	wantLabels := map[string]string{
		"org.opencontainers.image.title":    c.Name,
		"org.opencontainers.image.version":  testVersion,
		"org.opencontainers.image.revision": "0123456789abcdef",
		"org.opencontainers.image.created":  "2026-11-27T12:00:00Z",
		"org.opencontainers.image.source":   "https://github.com/jianfenliu/vmoperator",
	}
	for key, want := range wantLabels {
		if got := config.Config.Labels[key]; got != want {
			t.Errorf("%s: label %s = %q, want %q", platform, key, got, want)
		}
	}
	binary := onlyFile(t, img, c.Name)
	checkStatic(t, binary, platform)
	if platform.Architecture == "amd64" {
		checkVersion(t, binary, c.Name)
	}
}

// onlyFile extracts the image's filesystem, which must be exactly the
// executable /<name>, and returns the executable's path on disk.
func onlyFile(t *testing.T, img v1.Image, name string) string {
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	if len(layers) != 1 {
		t.Fatalf("%d layers, want 1", len(layers))
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	r := tar.NewReader(rc)
	header, err := r.Next()
	if err != nil {
		t.Fatal(err)
	}
	if header.Name != name || header.Mode != 0o755 || header.Uid != 0 {
		t.Errorf("layer holds %s mode %o uid %d, want %s 755 root", header.Name, header.Mode, header.Uid, name)
	}
	path := filepath.Join(t.TempDir(), name)
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(f, r); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if next, err := r.Next(); !errors.Is(err, io.EOF) {
		t.Errorf("the layer holds more than the binary: %v", next)
	}
	return path
}

// checkStatic: no program interpreter and no shared libraries, so the
// binary runs in an image without libc; built for the platform's machine.
func checkStatic(t *testing.T, path string, platform v1.Platform) {
	f, err := elf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	want := map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}[platform.Architecture]
	if f.Machine != want {
		t.Errorf("%s: ELF machine %v, want %v", platform, f.Machine, want)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Errorf("%s: the binary asks for a program interpreter: it is dynamically linked", platform)
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		t.Errorf("%s: the binary needs shared libraries %v", platform, libs)
	}
}

func checkVersion(t *testing.T, path, name string) {
	out, err := exec.Command(path, "--version").CombinedOutput()
	if err != nil {
		t.Fatalf("%s --version: %v\n%s", name, err, out)
	}
	if !strings.HasPrefix(string(out), name+" "+testVersion+" ") {
		t.Errorf("%s --version printed %q, want the stamped version %s", name, out, testVersion)
	}
	t.Logf("%s", strings.TrimSpace(string(out)))
}

func untar(t *testing.T, archive, dir string) {
	t.Helper()
	f, err := os.Open(archive)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r := tar.NewReader(f)
	for {
		header, err := r.Next()
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		target := filepath.Join(dir, filepath.FromSlash(header.Name))
		if header.Typeflag == tar.TypeDir {
			if err := os.MkdirAll(target, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		content, err := io.ReadAll(r)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(target, content, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
