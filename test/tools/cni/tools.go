//go:build tools

// Package tools pins the reference CNI plugins that internal/testing/consumers runs on
// every NetworkAttachmentDefinition the operator writes, as Multus would, and
// those of the node stack's pod network (internal/testing/nodestack): bridge,
// host-local, loopback and portmap.
package tools

import (
	_ "github.com/containernetworking/plugins/plugins/ipam/host-local"
	_ "github.com/containernetworking/plugins/plugins/main/bridge"
	_ "github.com/containernetworking/plugins/plugins/main/loopback"
	_ "github.com/containernetworking/plugins/plugins/main/macvlan"
	_ "github.com/containernetworking/plugins/plugins/meta/portmap"
)
