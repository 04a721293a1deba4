//go:build integration

package vlantraffic_test

import (
	"testing"

	"github.com/jianfenliu/vmoperator/agent/vlantraffic"
	"github.com/jianfenliu/vmoperator/internal/testing/netnstest"
)

// BenchmarkVethFrames measures the programs' overhead as frames per second
// through a veth pair, without them and with them on both ends (each frame
// passes one egress and one ingress program), 64-byte frames on VLAN 100.
// make bench prints it.
func BenchmarkVethFrames(b *testing.B) {
	for _, hook := range []string{"without", vlantraffic.HookTCX, vlantraffic.HookClsact} {
		b.Run(hook, func(b *testing.B) {
			ns := netnstest.New(b)
			ns.NoIPv6(b)
			ns.VethPair(b, "port0", "wire0", "")
			if hook != "without" {
				c, err := vlantraffic.New(ns.NS, vlantraffic.WithHook(hook))
				if err != nil {
					b.Fatal(err)
				}
				b.Cleanup(c.Close)
				var ports []vlantraffic.Port
				for _, name := range []string{"port0", "wire0"} {
					ports = append(ports, vlantraffic.Port{Name: name, Index: ns.Link(b, name).Attrs().Index, Allowed: []int{100}, Untagged: true})
				}
				if err := c.Sync(ports, []int{100}); err != nil {
					b.Fatal(err)
				}
			}
			socket := ns.OpenSendSocket(b, "wire0")
			frame := netnstest.Frame(100, 64)
			b.ResetTimer()
			for range b.N {
				if err := socket.Send(frame); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "frames/s")
		})
	}
}
