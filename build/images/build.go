package main

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Component is one image: which command it holds and whom it runs as.
type Component struct {
	// Name is the binary and image name, e.g. vmop-controller.
	Name string
	// Package is the main package, e.g. ./cmd/vmop-controller.
	Package string
	// User is the image's default user. The controller needs no privilege
	// (65532, distroless' nonroot). The agent's probes need no root either,
	// but its eBPF counters keep CAP_BPF and CAP_NET_ADMIN across execve
	// only as uid 0 (Kubernetes sets no ambient capabilities), so uid 0 is
	// its default; the chart sets the user either way (65532 without the
	// counters).
	User        string
	Description string
}

// Components are the images make images builds.
func Components() []Component {
	return []Component{
		{Name: "vmop-controller", Package: "./cmd/vmop-controller", User: "65532:65532",
			Description: "vmoperator controller: VirtualMachineProfiles into KubeVirt VMs, disks, attachments and host-network policies"},
		{Name: "vmop-agent", Package: "./cmd/vmop-agent", User: "0:0",
			Description: "vmoperator node agent: probes KVM and host networking, publishes NodeCapability, verifies nmstate policies"},
	}
}

// NodeComponents are the images of the node stack's tests
// (internal/testing/nodestack), named under the same registry: the pod
// sandbox containerd starts first in every pod (nobody, as Kubernetes'
// pause runs) and a test server.
func NodeComponents() []Component {
	return []Component{
		{Name: "pause", Package: "./build/pause", User: "65535:65535",
			Description: "pod sandbox for the node stack's tests: holds a pod's namespaces, reaps orphans"},
		{Name: "nodestack-hello", Package: "./internal/testing/nodestack/hello", User: "65532:65532",
			Description: "test server of the node stack's tests: logs a line, answers HTTP on :8080"},
	}
}

// Platforms the images are built for.
func Platforms() []v1.Platform {
	return []v1.Platform{{OS: "linux", Architecture: "amd64"}, {OS: "linux", Architecture: "arm64"}}
}

// Options say what to build and where.
type Options struct {
	// Source is the module root the binaries are built from.
	Source string
	// Out receives <name>.tar, one OCI image-layout archive per component.
	Out string
	// Registry and Version make the reference the archives are named by,
	// <registry>/<name>:<version>; Version is stamped into the binaries.
	Registry string
	Version  string
	// Revision is the commit, for the image labels ("" when unknown).
	Revision string
	// Created is the images' creation time: the commit's time, so that the
	// same commit gives the same image bytes.
	Created time.Time
	// Components and Platforms default to all of them.
	Components []Component
	Platforms  []v1.Platform
}

// Result describes one archive written.
type Result struct {
	Component Component
	Archive   string
	Reference string
	Size      int64
	// Index is the digest of the multi-platform image index, the digest a
	// registry reports for the tag once pushed.
	Index v1.Hash
	// Manifests are the digests of each platform's image.
	Manifests map[string]v1.Hash
}

// Build builds each component for each platform and writes its archive.
func Build(ctx context.Context, o Options) ([]Result, error) {
	if len(o.Components) == 0 {
		o.Components = Components()
	}
	if len(o.Platforms) == 0 {
		o.Platforms = Platforms()
	}
	if err := os.MkdirAll(o.Out, 0o755); err != nil {
		return nil, err
	}
	var results []Result
	for _, c := range o.Components {
		r, err := buildComponent(ctx, o, c)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", c.Name, err)
		}
		results = append(results, r)
	}
	return results, nil
}

func buildComponent(ctx context.Context, o Options, c Component) (Result, error) {
	work, err := os.MkdirTemp("", "vmop-image-")
	if err != nil {
		return Result{}, err
	}
	defer os.RemoveAll(work)
	r := Result{Component: c, Reference: fmt.Sprintf("%s/%s:%s", o.Registry, c.Name, o.Version),
		Archive: filepath.Join(o.Out, c.Name+".tar"), Manifests: map[string]v1.Hash{}}
	index := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	for _, p := range o.Platforms {
		binary := filepath.Join(work, p.Architecture, c.Name)
		if err := goBuild(ctx, o, c, p, binary); err != nil {
			return r, err
		}
		img, err := image(o, c, p, binary)
		if err != nil {
			return r, err
		}
		if r.Manifests[p.String()], err = img.Digest(); err != nil {
			return r, fmt.Errorf("digest of image %s: %w", p.String(), err)
		}
		platform := p
		index = mutate.AppendManifests(index, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &platform}})
	}
	if r.Index, err = index.Digest(); err != nil {
		return r, fmt.Errorf("digest of index %s: %w", r.Reference, err)
	}
	dir := filepath.Join(work, "layout")
	path, err := layout.Write(dir, empty.Index)
	if err != nil {
		return r, fmt.Errorf("OCI layout %s: %w", dir, err)
	}
	// The names importers use: containerd (k3s' airgap images, ctr import)
	// reads io.containerd.image.name, skopeo and the OCI spec the tag.
	if err := path.AppendIndex(index, layout.WithAnnotations(map[string]string{
		"io.containerd.image.name":          r.Reference,
		"org.opencontainers.image.ref.name": o.Version,
	})); err != nil {
		return r, fmt.Errorf("append index %s to layout %s: %w", r.Reference, dir, err)
	}
	if err := tarDirectory(dir, r.Archive, o.Created); err != nil {
		return r, err
	}
	info, err := os.Stat(r.Archive)
	if err != nil {
		return r, err
	}
	r.Size = info.Size()
	return r, nil
}

// goBuild builds a static binary with the version stamped in. -trimpath
// and the fixed flags make it depend only on the source and the toolchain.
func goBuild(ctx context.Context, o Options, c Component, p v1.Platform, out string) error {
	ldflags := "-s -w -X github.com/jianfenliu/vmoperator/version.Version=" + o.Version
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-buildvcs=auto", "-ldflags", ldflags, "-o", out, c.Package)
	cmd.Dir = o.Source
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+p.OS, "GOARCH="+p.Architecture)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go build %s for %s: %w\n%s", c.Package, p.String(), err, stderr.String())
	}
	return nil
}

// image is a single-layer image: the binary at /<name>, nothing else (no
// shell, no libc: the binaries are static).
func image(o Options, c Component, p v1.Platform, binary string) (v1.Image, error) {
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return binaryLayer(binary, "/"+c.Name, o.Created) },
		tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, fmt.Errorf("layer of %s: %w", binary, err)
	}
	base := mutate.MediaType(mutate.ConfigMediaType(empty.Image, types.OCIConfigJSON), types.OCIManifestSchema1)
	img, err := mutate.ConfigFile(base, &v1.ConfigFile{
		OS: p.OS, Architecture: p.Architecture,
		// Append fills in the diff IDs; the type must be set (importers
		// reject a config without it).
		RootFS: v1.RootFS{Type: "layers"},
		Config: v1.Config{
			Entrypoint: []string{"/" + c.Name},
			User:       c.User,
			WorkingDir: "/",
			Labels:     labels(o, c),
		},
	})
	if err != nil {
		return nil, fmt.Errorf("config of image %s for %s: %w", c.Name, p.String(), err)
	}
	img, err = mutate.Append(img, mutate.Addendum{Layer: layer, History: v1.History{
		Created: v1.Time{Time: o.Created}, CreatedBy: "make images: go build " + c.Package,
	}})
	if err != nil {
		return nil, fmt.Errorf("append layer of %s: %w", binary, err)
	}
	img, err = mutate.CreatedAt(img, v1.Time{Time: o.Created})
	if err != nil {
		return nil, fmt.Errorf("date image %s for %s: %w", c.Name, p.String(), err)
	}
	return img, nil
}

// labels are the OCI annotations every image carries in its config.
func labels(o Options, c Component) map[string]string {
	l := map[string]string{
		"org.opencontainers.image.title":       c.Name,
		"org.opencontainers.image.description": c.Description,
		"org.opencontainers.image.version":     o.Version,
		"org.opencontainers.image.source":      "https://github.com/jianfenliu/vmoperator",
		"org.opencontainers.image.created":     o.Created.UTC().Format(time.RFC3339),
	}
	if o.Revision != "" {
		l["org.opencontainers.image.revision"] = o.Revision
	}
	return l
}

// binaryLayer is a tar of one executable at name, owned by root, dated
// created.
func binaryLayer(binary, name string, created time.Time) (io.ReadCloser, error) {
	content, err := os.ReadFile(binary)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	w := tar.NewWriter(&buf)
	header := &tar.Header{Name: name[1:], Mode: 0o755, Size: int64(len(content)), ModTime: created, Typeflag: tar.TypeReg, Format: tar.FormatPAX}
	if err := w.WriteHeader(header); err != nil {
		return nil, fmt.Errorf("layer of %s: %w", binary, err)
	}
	if _, err := w.Write(content); err != nil {
		return nil, fmt.Errorf("layer of %s: %w", binary, err)
	}
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("layer of %s: %w", binary, err)
	}
	return io.NopCloser(&buf), nil
}

// tarDirectory archives an OCI layout directory with sorted names, fixed
// owners and times, so that equal layouts give equal archives.
func tarDirectory(dir, archive string, created time.Time) error {
	var names []string
	err := filepath.WalkDir(dir, func(path string, _ fs.DirEntry, err error) error {
		if err != nil || path == dir {
			return err
		}
		rel, err := filepath.Rel(dir, path)
		names = append(names, rel)
		if err != nil {
			return fmt.Errorf("path of %s in %s: %w", path, dir, err)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("walk %s: %w", dir, err)
	}
	sort.Strings(names)
	f, err := os.Create(archive)
	if err != nil {
		return err
	}
	w := tar.NewWriter(f)
	for _, name := range names {
		if err := addFile(w, dir, name, created); err != nil {
			f.Close()
			return err
		}
	}
	if err := w.Close(); err != nil {
		f.Close()
		return fmt.Errorf("archive %s: %w", archive, err)
	}
	return f.Close()
}

func addFile(w *tar.Writer, dir, name string, created time.Time) error {
	path := filepath.Join(dir, name)
	info, err := os.Stat(path)
	if err != nil {
		return err
	}
	header := &tar.Header{Name: filepath.ToSlash(name), ModTime: created, Format: tar.FormatPAX}
	if info.IsDir() {
		header.Typeflag, header.Name, header.Mode = tar.TypeDir, header.Name+"/", 0o755
		if err := w.WriteHeader(header); err != nil {
			return fmt.Errorf("archive %s: %w", name, err)
		}
		return nil
	}
	header.Typeflag, header.Mode, header.Size = tar.TypeReg, 0o644, info.Size()
	if err := w.WriteHeader(header); err != nil {
		return fmt.Errorf("archive %s: %w", name, err)
	}
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(w, f)
	if err != nil {
		return fmt.Errorf("archive %s: %w", name, err)
	}
	return nil
}
