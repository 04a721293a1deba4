package v1alpha1

import "unicode/utf8"

// Bounds on the strings of a NodeCapability and of what a profile's status
// copies from one. The CRDs' maxLength markers carry the same numbers
// (markers take literals only; TestCRDMaxLengthsMatchBounds checks them),
// the agent cuts what it writes to them (agent/capability), and the
// controller cuts what it copies into a profile's status.
//
// Without them one agent could write a megabyte into kvm.reason, which the
// controller copied into the status of every profile listing the node,
// and every such status write then failed.
const (
	// MaxInterfaceNameLength is the kernel's limit on a network interface
	// name (IFNAMSIZ less its terminating NUL).
	MaxInterfaceNameLength = 15
	// MaxVLANListLength bounds a port's VLAN list as FormatVLANs writes it.
	// The longest list of VLAN ids 0 to 4095 is 12,913 characters (runs of
	// two with a gap of one: "0-1,3-4,..."; TestLongestVLANListFits).
	MaxVLANListLength = 16384
	// MaxAgentMessageLength bounds a free-text explanation from the agent:
	// kvm.reason, a policy's kernel summary and mismatch message.
	MaxAgentMessageLength = 1024
	// MaxExclusionReasonLength bounds a node's reason in a profile's
	// status.placement.excluded: at most ten are listed, and the Scheduled
	// condition repeats them, so ten at this length stay far below the
	// condition message's 32,768.
	MaxExclusionReasonLength = 256
)

// Ellipsis marks a string cut to its bound.
const Ellipsis = "…"

// Truncate cuts s to at most limit characters (runes, as the apiserver's
// maxLength counts them), ending a cut string with Ellipsis. It never
// splits a multi-byte character; invalid UTF-8 bytes count as one
// character each, as utf8.RuneCountInString counts them.
func Truncate(s string, limit int) string {
	if limit <= 0 {
		return ""
	}
	if utf8.RuneCountInString(s) <= limit {
		return s
	}
	if limit == 1 {
		return Ellipsis
	}
	kept, end := 0, 0
	for end < len(s) && kept < limit-1 {
		_, size := utf8.DecodeRuneInString(s[end:])
		end += size
		kept++
	}
	return s[:end] + Ellipsis
}
