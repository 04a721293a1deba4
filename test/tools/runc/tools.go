//go:build tools

// Package tools pins runc, the OCI runtime containerd's shim runs
// (internal/testing/nodestack). Debian's runc is older than containerd 2
// wants.
package tools

import (
	_ "github.com/opencontainers/runc"
)
