//go:build tools

// Package tools pins the reference CNI plugins that internal/testing/consumers runs on
// every NetworkAttachmentDefinition the operator writes, as Multus would.
package tools

import (
	_ "github.com/containernetworking/plugins/plugins/main/bridge"
	_ "github.com/containernetworking/plugins/plugins/main/macvlan"
)
