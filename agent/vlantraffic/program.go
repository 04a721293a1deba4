package vlantraffic

import (
	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
)

// MaxVLANs is the size of the VLAN ID space, and of every map: index 0 holds
// untagged (and priority-tagged) frames, 1–4094 the VLANs.
const MaxVLANs = 4096

// Offsets of the counters in one map value: six little-endian uint64.
const (
	offRxPackets = 8 * iota
	offRxBytes
	offTxPackets
	offTxBytes
	offDisallowedPackets
	offDisallowedBytes
	valueSize
)

// allowedValueSize is one allowed-map value, a uint64 that is 1 where the
// port carries the VLAN. The kernel lays out an array's values 8-byte
// aligned, so a smaller value would not match the mapped memory's stride.
const allowedValueSize = 8

// Fields of struct __sk_buff (include/uapi/linux/bpf.h) the programs read.
const (
	skbLen         = 0
	skbVLANPresent = 20
	skbVLANTCI     = 24
	skbData        = 76
	skbDataEnd     = 80
)

// Values the programs compare and return.
const (
	// The 802.1Q and 802.1ad ethertypes as a little-endian half-word load
	// of network-order bytes sees them.
	ethertype8021QLoaded  = 0x0081
	ethertype8021ADLoaded = 0xa888
	vlanTagLen            = 4
	vidMask               = 0x0fff
	// tcActUnspec (TCX_NEXT, TC_ACT_UNSPEC) passes the frame on unchanged,
	// to the next program or the stack: counting never alters traffic.
	tcActUnspec = -1
)

// Map names, as the programs reference them.
const (
	countersMap = "counters"
	allowedMap  = "allowed"
)

type direction int

const (
	ingress direction = iota
	egress
)

// collectionSpec describes one port's maps and its two programs. The maps
// are mmapable arrays, so the agent reads and writes them without a system
// call per VLAN.
func collectionSpec() *ebpf.CollectionSpec {
	return &ebpf.CollectionSpec{
		Maps: map[string]*ebpf.MapSpec{
			countersMap: {Name: "vmop_vlan_cnt", Type: ebpf.Array, KeySize: 4, ValueSize: valueSize, MaxEntries: MaxVLANs, Flags: mmapable},
			allowedMap:  {Name: "vmop_vlan_allow", Type: ebpf.Array, KeySize: 4, ValueSize: allowedValueSize, MaxEntries: MaxVLANs, Flags: mmapable},
		},
		Programs: map[string]*ebpf.ProgramSpec{
			"ingress": {Name: "vmop_vlan_in", Type: ebpf.SchedCLS, License: "Apache-2.0", Instructions: instructions(ingress)},
			"egress":  {Name: "vmop_vlan_out", Type: ebpf.SchedCLS, License: "Apache-2.0", Instructions: instructions(egress)},
		},
	}
}

// mmapable is BPF_F_MMAPABLE (Linux 5.5).
const mmapable = 1 << 10

// instructions is the counting program for one direction. In C it would read:
//
//	vid = 0; len = skb->len;
//	if (skb->vlan_present) { vid = skb->vlan_tci & 0xfff; len += 4; }  // tag offloaded
//	else if (frame is long enough && ethertype is 802.1Q or 802.1ad) vid = tci & 0xfff;
//	c = counters[vid];
//	ingress: c->rx += 1, len; if (!allowed[vid]) c->disallowed += 1, len;
//	egress:  c->tx += 1, len;
//	return TC_ACT_UNSPEC;
//
// Bytes are the frame as on the wire without FCS: an offloaded tag is added
// back, so the count does not depend on where the kernel keeps the tag.
func instructions(dir direction) asm.Instructions {
	const (
		ctx = asm.R6
		vid = asm.R7
		cnt = asm.R8
		ln  = asm.R9
	)
	insns := asm.Instructions{
		asm.Mov.Reg(ctx, asm.R1),
		asm.Mov.Imm(vid, 0),
		asm.LoadMem(ln, ctx, skbLen, asm.Word),
		asm.LoadMem(asm.R2, ctx, skbVLANPresent, asm.Word),
		asm.JEq.Imm(asm.R2, 0, "in_data"),
		asm.LoadMem(vid, ctx, skbVLANTCI, asm.Word),
		asm.And.Imm(vid, vidMask),
		asm.Add.Imm(ln, vlanTagLen),
		asm.Ja.Label("lookup"),

		// The tag, if any, is still in the frame: bytes 12–13 the ethertype,
		// 14–15 the TCI.
		asm.LoadMem(asm.R2, ctx, skbData, asm.Word).WithSymbol("in_data"),
		asm.LoadMem(asm.R3, ctx, skbDataEnd, asm.Word),
		asm.Mov.Reg(asm.R4, asm.R2),
		asm.Add.Imm(asm.R4, 16),
		asm.JGT.Reg(asm.R4, asm.R3, "lookup"), // too short for a tag: untagged
		asm.LoadMem(asm.R5, asm.R2, 12, asm.Half),
		asm.JEq.Imm(asm.R5, ethertype8021QLoaded, "tagged"),
		asm.JEq.Imm(asm.R5, ethertype8021ADLoaded, "tagged"),
		asm.Ja.Label("lookup"),
		asm.LoadMem(vid, asm.R2, 14, asm.Byte).WithSymbol("tagged"),
		asm.And.Imm(vid, vidMask>>8),
		asm.LSh.Imm(vid, 8),
		asm.LoadMem(asm.R5, asm.R2, 15, asm.Byte),
		asm.Or.Reg(vid, asm.R5),

		asm.StoreMem(asm.RFP, -4, vid, asm.Word).WithSymbol("lookup"),
		asm.LoadMapPtr(asm.R1, 0).WithReference(countersMap),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, -4),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, "out"),
		asm.Mov.Reg(cnt, asm.R0),
		asm.Mov.Imm(asm.R1, 1),
	}
	if dir == egress {
		insns = append(insns,
			asm.AddAtomic.Mem(cnt, asm.R1, asm.DWord, offTxPackets),
			asm.AddAtomic.Mem(cnt, ln, asm.DWord, offTxBytes),
		)
	} else {
		insns = append(insns,
			asm.AddAtomic.Mem(cnt, asm.R1, asm.DWord, offRxPackets),
			asm.AddAtomic.Mem(cnt, ln, asm.DWord, offRxBytes),
			asm.LoadMapPtr(asm.R1, 0).WithReference(allowedMap),
			asm.Mov.Reg(asm.R2, asm.RFP),
			asm.Add.Imm(asm.R2, -4),
			asm.FnMapLookupElem.Call(),
			asm.JEq.Imm(asm.R0, 0, "out"),
			asm.LoadMem(asm.R1, asm.R0, 0, asm.DWord),
			asm.JNE.Imm(asm.R1, 0, "out"),
			asm.Mov.Imm(asm.R1, 1),
			asm.AddAtomic.Mem(cnt, asm.R1, asm.DWord, offDisallowedPackets),
			asm.AddAtomic.Mem(cnt, ln, asm.DWord, offDisallowedBytes),
		)
	}
	return append(insns,
		asm.Mov.Imm(asm.R0, tcActUnspec).WithSymbol("out"),
		asm.Return(),
	)
}
