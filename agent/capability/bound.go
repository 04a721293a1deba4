package capability

import (
	"encoding/json"
	"fmt"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
)

// MaxObjectBytes bounds a NodeCapability as the apiserver stores it (its
// JSON, metadata and managedFields included): 1 MiB, a third below etcd's
// 1.5 MiB request limit. A node with a bridge for each of the 4,094 VLANs
// and a trunk of all of them stays well within it (TestVLANNodeFitsTheBound).
const MaxObjectBytes = 1 << 20

// MaxStatusBytes is what Build lets the status's JSON take. The remaining
// 64 KiB of MaxObjectBytes hold the metadata, the managedFields (a few
// hundred bytes: the status lists are atomic, so they are not tracked per
// entry) and the transition times the publisher adds to the conditions.
const MaxStatusBytes = MaxObjectBytes - 64<<10

// truncatedReserve is room kept for the Truncated condition when deciding
// how much to cut; fit checks the result and cuts more if it was not enough.
const truncatedReserve = 1 << 10

// inventoryList is one cuttable list of the status: its entries' names
// and JSON sizes (separating comma included), and how many are kept.
type inventoryList struct {
	noun  string
	names []string
	sizes []int
	keep  int
	bytes int // of the kept entries
	cut   func(keep int)
}

func measure[T any](noun string, list *[]T, name func(T) string) *inventoryList {
	l := &inventoryList{noun: noun, keep: len(*list)}
	for _, item := range *list {
		raw, err := json.Marshal(item)
		if err != nil {
			panic(fmt.Sprintf("marshalling a status entry: %v", err)) // plain structs always marshal
		}
		l.names = append(l.names, name(item))
		l.sizes = append(l.sizes, len(raw)+1)
		l.bytes += len(raw) + 1
	}
	l.cut = func(keep int) {
		if keep == 0 {
			*list = nil
			return
		}
		*list = (*list)[:keep:keep]
	}
	return l
}

// fit keeps the status within MaxStatusBytes. When it is over, it leaves
// out entries from the end of the inventory lists (sorted by name, as
// probed), always from the list that takes the most bytes, and adds the
// Truncated condition naming what is missing, so that placement can say a
// requirement may be among it rather than simply absent. Conditions and
// KVM are never cut. The same input always cuts the same entries.
func fit(s vmv1alpha1.NodeCapabilityStatus) vmv1alpha1.NodeCapabilityStatus {
	size := jsonSize(s)
	if size <= MaxStatusBytes {
		return s
	}
	lists := []*inventoryList{
		measure("bridges", &s.Bridges, func(b vmv1alpha1.BridgeStatus) string { return b.Name }),
		measure("VLAN interfaces", &s.VLANs, func(v vmv1alpha1.VLANInterface) string { return v.Name }),
		measure("bonds", &s.Bonds, func(b vmv1alpha1.BondStatus) string { return b.Name }),
		measure("OVS bridges", &s.OVSBridges, func(b vmv1alpha1.OVSBridgeStatus) string { return b.Name }),
		measure("uplinks", &s.Uplinks, func(u vmv1alpha1.UplinkStatus) string { return u.Name }),
		measure("SR-IOV PFs", &s.SRIOV, func(pf vmv1alpha1.SRIOVPF) string { return pf.Name }),
		measure("policies", &s.Policies, func(p vmv1alpha1.PolicyVerification) string { return p.Name }),
	}
	conditions := s.Conditions
	for size > MaxStatusBytes {
		excess := size - MaxStatusBytes + truncatedReserve
		for excess > 0 {
			largest := lists[0]
			for _, l := range lists[1:] {
				if l.bytes > largest.bytes {
					largest = l
				}
			}
			if largest.keep == 0 {
				break // nothing left to cut; the conditions alone are over the bound
			}
			largest.keep--
			largest.bytes -= largest.sizes[largest.keep]
			excess -= largest.sizes[largest.keep]
		}
		for _, l := range lists {
			l.cut(l.keep)
		}
		s.Conditions = append(conditions[:len(conditions):len(conditions)], truncatedCondition(lists))
		previous := size
		if size = jsonSize(s); size >= previous {
			break
		}
	}
	return s
}

// truncatedCondition names, for each list that was cut, how many entries
// are missing and the first and last of them.
func truncatedCondition(lists []*inventoryList) metav1.Condition {
	var parts []string
	for _, l := range lists {
		missing := len(l.names) - l.keep
		switch missing {
		case 0:
			continue
		case 1:
			parts = append(parts, fmt.Sprintf("the last of %d %s (%s)", len(l.names), l.noun, l.names[l.keep]))
		default:
			parts = append(parts, fmt.Sprintf("the last %d of %d %s (%s to %s)", missing, len(l.names), l.noun, l.names[l.keep], l.names[len(l.names)-1]))
		}
	}
	return condition(vmv1alpha1.ConditionTruncated, true, vmv1alpha1.ReasonSizeBoundExceeded,
		fmt.Sprintf("left out to keep this status within %d bytes: %s", MaxStatusBytes, strings.Join(parts, "; ")))
}

func jsonSize(s vmv1alpha1.NodeCapabilityStatus) int {
	raw, err := json.Marshal(s)
	if err != nil {
		panic(fmt.Sprintf("marshalling a NodeCapabilityStatus: %v", err))
	}
	return len(raw)
}
