package netnstest

import (
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

// NoIPv6 turns IPv6 off for links created afterwards, so that no router
// solicitation or MLD report adds frames to a test that counts them.
func (n *Namespace) NoIPv6(t testing.TB) {
	t.Helper()
	n.must(t, "disable IPv6", n.Do(func() error {
		for _, scope := range []string{"all", "default"} {
			if err := os.WriteFile("/proc/sys/net/ipv6/conf/"+scope+"/disable_ipv6", []byte("1"), 0); err != nil {
				return err
			}
		}
		return nil
	}))
}

// experimentalEthertype (IEEE 802 local experimental) marks test payloads;
// no protocol in the namespace answers it.
const experimentalEthertype = 0x88b5

// Frame builds a broadcast Ethernet frame of exactly size bytes (FCS not
// included) from src, tagged with 802.1Q VLAN vid, or untagged for vid 0.
func Frame(vid, size int) []byte {
	frame := make([]byte, size)
	for i := range 6 {
		frame[i] = 0xff
	}
	copy(frame[6:], []byte{0x02, 0x00, 0x00, 0x00, 0x00, 0x01})
	typeAt := 12
	if vid != 0 {
		binary.BigEndian.PutUint16(frame[12:], unix.ETH_P_8021Q)
		binary.BigEndian.PutUint16(frame[14:], uint16(vid&0x0fff))
		typeAt = 16
	}
	binary.BigEndian.PutUint16(frame[typeAt:], experimentalEthertype)
	return frame
}

// FrameFrom is Frame with src as its source MAC, for a link that drops
// frames not from its own address (a MAC spoof check).
func FrameFrom(src net.HardwareAddr, vid, size int) []byte {
	frame := Frame(vid, size)
	copy(frame[6:12], src)
	return frame
}

// Send writes frame count times, as it is, on link through an AF_PACKET
// socket opened inside the namespace.
func (n *Namespace) Send(t testing.TB, link string, count int, frame []byte) {
	t.Helper()
	socket := n.OpenSendSocket(t, link)
	for i := range count {
		if err := socket.Send(frame); err != nil {
			t.Fatalf("send frame %d of %d on %s: %v", i+1, count, link, err)
		}
	}
}

// SendSocket is an AF_PACKET socket bound for sending on one link.
type SendSocket struct {
	fd int
	to *unix.SockaddrLinklayer
}

// OpenSendSocket opens a SendSocket on link; it closes in t.Cleanup.
func (n *Namespace) OpenSendSocket(t testing.TB, link string) *SendSocket {
	t.Helper()
	var s *SendSocket
	n.must(t, "open AF_PACKET socket", n.Do(func() error {
		var err error
		s, err = OpenSendSocket(n.Link(t, link).Attrs().Index)
		return err
	}))
	t.Cleanup(s.Close)
	return s
}

// OpenSendSocket opens a SendSocket on the link with ifindex in the calling
// thread's namespace (the host's, outside Namespace.Do). Close it when done.
func OpenSendSocket(ifindex int) (*SendSocket, error) {
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, 0) // protocol 0: send only
	if err != nil {
		return nil, fmt.Errorf("AF_PACKET socket: %w", err)
	}
	return &SendSocket{fd: fd, to: &unix.SockaddrLinklayer{Ifindex: ifindex, Halen: 6}}, nil
}

// Send writes one frame to its own destination MAC.
func (s *SendSocket) Send(frame []byte) error {
	copy(s.to.Addr[:], frame[:6])
	if err := unix.Sendto(s.fd, frame, 0, s.to); err != nil {
		return fmt.Errorf("send: %w", err)
	}
	return nil
}

// Close closes the socket.
func (s *SendSocket) Close() { unix.Close(s.fd) }
