package probe

import (
	"net"

	"golang.org/x/sys/unix"
)

const (
	netFlagUp      = net.FlagUp
	rawFlagRunning = unix.IFF_RUNNING
)
