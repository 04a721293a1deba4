//go:build tools

// Package tools pins the container runtime of the node stack
// (internal/testing/nodestack): containerd 2, its runc shim and ctr, which
// imports the image archives. Kubernetes after 1.35 needs containerd 2.
package tools

import (
	_ "github.com/containerd/containerd/v2/cmd/containerd"
	_ "github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2"
	_ "github.com/containerd/containerd/v2/cmd/ctr"
)
