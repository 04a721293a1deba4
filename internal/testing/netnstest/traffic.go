package netnstest

import (
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"sync"
	"testing"
	"time"

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

// Capture counts, by source MAC, the test frames (experimentalEthertype,
// tagged or not) a link receives. Counting only test frames from one
// source keeps a count exact on a loaded machine, where a link's packet
// counter also sees late frames of an earlier burst.
type Capture struct {
	fd       int
	mu       sync.Mutex
	bySource map[string]int
	stopped  chan struct{}
}

// Capture starts counting on link until the test ends.
func (n *Namespace) Capture(t testing.TB, link string) *Capture {
	t.Helper()
	c := &Capture{fd: -1, bySource: map[string]int{}, stopped: make(chan struct{})}
	all := int(htons(unix.ETH_P_ALL))
	n.must(t, "capture on "+link, n.Do(func() error {
		l, err := n.Handle.LinkByName(link)
		if err != nil {
			return fmt.Errorf("link %s: %w", link, err)
		}
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, all)
		if err != nil {
			return fmt.Errorf("AF_PACKET socket on %s: %w", link, err)
		}
		c.fd = fd
		if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: l.Attrs().Index}); err != nil {
			return fmt.Errorf("bind to %s: %w", link, err)
		}
		// A read returns at least every 100 ms, so that Close is noticed.
		return unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Usec: 100_000})
	}))
	done := make(chan struct{})
	go c.read(done)
	t.Cleanup(func() {
		close(c.stopped)
		<-done
		unix.Close(c.fd)
	})
	return c
}

func (c *Capture) read(done chan<- struct{}) {
	defer close(done)
	buf := make([]byte, 2048)
	for {
		select {
		case <-c.stopped:
			return
		default:
		}
		size, from, err := unix.Recvfrom(c.fd, buf, 0)
		if err != nil {
			continue // the timeout, or an interrupted read: look at stopped again
		}
		if ll, ok := from.(*unix.SockaddrLinklayer); ok && ll.Pkttype == unix.PACKET_OUTGOING {
			continue
		}
		if size < 14 {
			continue
		}
		typeAt := 12
		if binary.BigEndian.Uint16(buf[12:]) == unix.ETH_P_8021Q && size >= 18 {
			typeAt = 16
		}
		if binary.BigEndian.Uint16(buf[typeAt:]) != experimentalEthertype {
			continue
		}
		c.mu.Lock()
		c.bySource[net.HardwareAddr(buf[6:12]).String()]++
		c.mu.Unlock()
	}
}

// From is how many test frames from src arrived, once no new one has for
// settle (at most 5 s of waiting).
func (c *Capture) From(src string, settle time.Duration) int {
	count := func() int {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.bySource[src]
	}
	last := count()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); {
		time.Sleep(settle)
		now := count()
		if now == last {
			return now
		}
		last = now
	}
	return last
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }
