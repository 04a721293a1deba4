//go:build integration

package probe

import (
	"encoding/binary"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"

	"github.com/jianfenliu/vmoperator/internal/testing/netnstest"
)

// fakeSource answers from a real namespace, but lets a test rewrite the
// link messages or fail the dumps, as a kernel or a netlink library bug
// would; real kernels do not fail on demand.
type fakeSource struct {
	real LinkSource
	// rewrite changes the dumped messages; nil keeps them.
	rewrite func(t *testing.T, msgs [][]byte) [][]byte
	t       *testing.T
	// linkErrs and vlanErrs are returned by successive dumps before the
	// real answer; a nil entry means the real answer.
	linkErrs, vlanErrs []error
}

func (f *fakeSource) LinkMessages() ([][]byte, error) {
	msgs, err := f.real.LinkMessages()
	if len(f.linkErrs) > 0 {
		next := f.linkErrs[0]
		f.linkErrs = f.linkErrs[1:]
		if next != nil {
			return msgs, next // an interrupted dump still returns what it got
		}
	}
	if err == nil && f.rewrite != nil {
		msgs = f.rewrite(f.t, msgs)
	}
	return msgs, err
}

func (f *fakeSource) BridgeVlanList() (map[int32][]*nl.BridgeVlanInfo, error) {
	vlans, err := f.real.BridgeVlanList()
	if len(f.vlanErrs) > 0 {
		next := f.vlanErrs[0]
		f.vlanErrs = f.vlanErrs[1:]
		if next != nil {
			return vlans, next
		}
	}
	return vlans, err
}

func realSource(t *testing.T, ns *netnstest.Namespace) LinkSource {
	t.Helper()
	source, err := NewNetlink(ns.NS)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(source.Close)
	return source
}

// rewriteLink applies change to the message of the link named victim.
func rewriteLink(victim string, change func([]byte) []byte) func(*testing.T, [][]byte) [][]byte {
	return func(t *testing.T, msgs [][]byte) [][]byte {
		out := make([][]byte, 0, len(msgs))
		found := false
		for _, m := range msgs {
			if l, err := netlink.LinkDeserialize(nil, m); err == nil && l.Attrs().Name == victim {
				m, found = change(slices.Clone(m)), true
			}
			out = append(out, m)
		}
		if !found {
			t.Fatalf("no message for link %s", victim)
		}
		return out
	}
}

// replaceAttr rebuilds m with the value of its top-level attribute typ replaced.
func replaceAttr(typ uint16, value []byte) func([]byte) []byte {
	return func(m []byte) []byte {
		out := slices.Clone(m[:unix.SizeofIfInfomsg])
		for rest := m[unix.SizeofIfInfomsg:]; len(rest) >= unix.SizeofRtAttr; {
			length := int(binary.NativeEndian.Uint16(rest[0:2]))
			attr := rest[:length]
			if binary.NativeEndian.Uint16(rest[2:4])&^(unix.NLA_F_NESTED|unix.NLA_F_NET_BYTEORDER) == typ {
				attr = nl.NewRtAttr(int(typ), value).Serialize()
			}
			out = append(out, attr...)
			out = append(out, make([]byte, nlAlign(len(attr))-len(attr))...)
			rest = rest[min(nlAlign(length), len(rest)):]
		}
		return out
	}
}

func nlAlign(n int) int { return (n + unix.NLA_ALIGNTO - 1) &^ (unix.NLA_ALIGNTO - 1) }

// emptyKind is an IFLA_LINKINFO holding an IFLA_INFO_KIND with no value at
// all; netlink's decoder slices it to [:-1] and panics.
func emptyKind() []byte {
	return nl.NewRtAttr(nl.IFLA_INFO_KIND, nil).Serialize()
}

// TestLinksSkipsUndecodableLinks: one link whose message netlink cannot
// decode, or whose decoding panics, is left out and named; the others are
// still reported, and its ports still name it as their master.
func TestLinksSkipsUndecodableLinks(t *testing.T) {
	cases := []struct {
		name        string
		change      func([]byte) []byte
		wantSkipped string // the name it is reported under
		wantReason  string
		// wantMaster is what br-bad's port names as its master: the bridge's
		// name while its message still says it.
		wantMaster string
	}{
		{
			name:        "malformed nested attribute",
			change:      replaceAttr(unix.IFLA_LINKINFO, []byte{2, 0, 1, 0}), // a nested length of 2 < 4
			wantSkipped: "br-bad", wantReason: "decoding its message: invalid argument", wantMaster: "br-bad",
		},
		{
			name:        "decoder panics",
			change:      replaceAttr(unix.IFLA_LINKINFO, emptyKind()),
			wantSkipped: "br-bad", wantReason: "decoding its message panicked: runtime error: slice bounds out of range", wantMaster: "br-bad",
		},
		{
			name: "first top-level attribute longer than the message: named by ifindex",
			change: func(m []byte) []byte {
				binary.NativeEndian.PutUint16(m[unix.SizeofIfInfomsg:], 0xffff)
				return m
			},
			wantSkipped: "ifindex ", wantReason: "decoding its message: invalid argument",
		},
		{
			name:        "shorter than its header",
			change:      func(m []byte) []byte { return m[:8] },
			wantSkipped: "a truncated link message", wantReason: "message of 8 bytes is shorter than its header",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ns := netnstest.New(t)
			ns.Bridge(t, "br-bad")
			ns.VethPair(t, "bad-p0", "bad-q0", "br-bad")
			ns.Bridge(t, "br-good")
			ns.VethPair(t, "good-p0", "good-q0", "br-good")
			source := &fakeSource{real: realSource(t, ns), rewrite: rewriteLink("br-bad", tc.change), t: t}
			snap, err := NewLinks(source, "").ProbeLinks()
			if err != nil {
				t.Fatalf("one bad link failed the whole probe: %v", err)
			}
			if len(snap.Skipped) != 1 || !strings.HasPrefix(snap.Skipped[0].Name, tc.wantSkipped) || !strings.Contains(snap.Skipped[0].Reason, tc.wantReason) {
				t.Errorf("skipped = %+v, want one entry %q… with %q", snap.Skipped, tc.wantSkipped, tc.wantReason)
			}
			if snap.ByName("br-bad") != nil {
				t.Errorf("br-bad reported although its message was bad")
			}
			for _, name := range []string{"lo", "br-good", "good-p0", "good-q0", "bad-p0", "bad-q0"} {
				if snap.ByName(name) == nil {
					t.Errorf("%s missing: one bad link hid it", name)
				}
			}
			if p := snap.ByName("good-p0"); p == nil || p.Master != "br-good" {
				t.Errorf("good-p0 = %+v, want master br-good", p)
			}
			if p := snap.ByName("bad-p0"); p == nil || p.Master != tc.wantMaster {
				t.Errorf("bad-p0 = %+v, want master %q", p, tc.wantMaster)
			}
		})
	}
}

// TestLinksDumpFailures: a failed dump fails its probe and names it; a dump
// the kernel marks interrupted is repeated, up to three times in a row.
func TestLinksDumpFailures(t *testing.T) {
	interrupted := netlink.ErrDumpInterrupted
	refused := errors.New("netlink receive: no buffer space available")
	cases := []struct {
		name               string
		linkErrs, vlanErrs []error
		wantLinksErr       string
		wantVLANsErr       string
	}{
		{name: "clean"},
		{name: "link dump fails", linkErrs: []error{refused}, wantLinksErr: "listing links: netlink receive: no buffer space available"},
		{name: "link dump interrupted twice, then whole", linkErrs: []error{interrupted, interrupted}},
		{name: "link dump interrupted three times", linkErrs: []error{interrupted, interrupted, interrupted},
			wantLinksErr: "listing links: interrupted 3 times in a row: results may be incomplete or inconsistent"},
		{name: "bridge VLAN dump fails", vlanErrs: []error{refused}, wantVLANsErr: "listing bridge VLANs: netlink receive: no buffer space available"},
		{name: "bridge VLAN dump interrupted once", vlanErrs: []error{interrupted}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ns := netnstest.New(t)
			ns.Bridge(t, "br0")
			ns.VethPair(t, "p0", "q0", "br0")
			links := NewLinks(&fakeSource{real: realSource(t, ns), linkErrs: tc.linkErrs, vlanErrs: tc.vlanErrs, t: t}, "")
			snap, err := links.ProbeLinks()
			if !matches(err, tc.wantLinksErr) {
				t.Fatalf("ProbeLinks err = %v, want %q", err, tc.wantLinksErr)
			}
			if err != nil {
				if len(snap.Links) != 0 {
					t.Errorf("a failed dump returned links: %+v", snap.Links)
				}
				return
			}
			if snap.ByName("p0") == nil || snap.ByName("p0").Master != "br0" {
				t.Errorf("p0 = %+v, want a port of br0", snap.ByName("p0"))
			}
			vlans, err := links.ProbeBridgeVLANs(snap)
			if !matches(err, tc.wantVLANsErr) {
				t.Fatalf("ProbeBridgeVLANs err = %v, want %q", err, tc.wantVLANsErr)
			}
			if err == nil && vlans == nil {
				t.Error("a successful bridge VLAN dump returned a nil table")
			}
		})
	}
}

func matches(err error, want string) bool {
	if want == "" {
		return err == nil
	}
	return err != nil && err.Error() == want
}

func TestSnapshotWithVLANs(t *testing.T) {
	snap := Snapshot{Links: []Link{{Name: "br0"}, {Name: "p0", Master: "br0"}, {Name: "p1", Master: "br0", PortVLANs: []int{7}, PVID: 7}}}
	got := snap.WithVLANs(BridgeVLANs{"p0": {IDs: []int{1, 100}, PVID: 1}})
	if p := got.ByName("p0"); !slices.Equal(p.PortVLANs, []int{1, 100}) || p.PVID != 1 {
		t.Errorf("p0 = %+v, want VLANs 1,100 PVID 1", p)
	}
	if p := got.ByName("p1"); p.PortVLANs != nil || p.PVID != 0 {
		t.Errorf("p1 = %+v, want no VLANs: the table does not list it", p)
	}
	if p := snap.ByName("p1"); !slices.Equal(p.PortVLANs, []int{7}) {
		t.Errorf("WithVLANs changed its receiver: p1 = %+v", p)
	}
}
