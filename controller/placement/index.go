package placement

import (
	"slices"
	"strings"
	"sync"

	"k8s.io/apimachinery/pkg/types"

	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
)

// Index remembers what each profile needs from nodes, as its last
// reconcile resolved it, so that a capability or node label change wakes
// only the profiles it affects, and the node labeller knows which bridges,
// VLANs, OVS bridges and links some profile wants labelled. What a profile
// needs depends on the HostNetworks and attachments it resolved against,
// which a field index (a function of the profile alone) cannot see; every
// profile is reconciled at start, which fills the index. It is safe for
// concurrent use.
type Index struct {
	mu sync.RWMutex
	// byKey maps a node label key to the profiles that need it offered or
	// select nodes by it.
	byKey     map[string]map[types.NamespacedName]struct{}
	byProfile map[types.NamespacedName][]string
	// wanted counts the profiles wanting each label NodeLabels projects
	// only on demand (WantedLabels); wantedBy is each profile's share.
	wanted     map[string]int
	wantedNeed map[string]Requirement
	wantedBy   map[types.NamespacedName][]Requirement
	// wantedChanged receives a signal (never blocking) when the wanted labels change.
	wantedChanged chan struct{}
}

// NewIndex makes an empty index.
func NewIndex() *Index {
	return &Index{
		byKey:         map[string]map[types.NamespacedName]struct{}{},
		byProfile:     map[types.NamespacedName][]string{},
		wanted:        map[string]int{},
		wantedNeed:    map[string]Requirement{},
		wantedBy:      map[types.NamespacedName][]Requirement{},
		wantedChanged: make(chan struct{}, 1),
	}
}

// Set records what a profile needs: its requirements and the label keys
// its own node selector uses.
func (x *Index) Set(profile types.NamespacedName, needs []Requirement, selectorKeys []string) {
	var keys []string
	for _, need := range needs {
		if need.Kind == NeedNodeLabels {
			for key := range need.Selector {
				keys = append(keys, key)
			}
			continue
		}
		keys = append(keys, need.Label)
	}
	// Every VM requires a reporting agent: a Lease lapsing or coming back
	// changes every profile's placement.
	keys = append(keys, vmv1alpha1.LabelReporting)
	keys = append(keys, selectorKeys...)
	x.mu.Lock()
	defer x.mu.Unlock()
	x.removeKeys(profile)
	for _, key := range keys {
		if x.byKey[key] == nil {
			x.byKey[key] = map[types.NamespacedName]struct{}{}
		}
		x.byKey[key][profile] = struct{}{}
	}
	x.byProfile[profile] = keys
	// The new share is counted before the old one is dropped, so a label
	// the profile keeps wanting never drops to zero: a profile reconciled
	// again with the same needs signals nothing (each signal relabels
	// every node).
	changed := x.want(WantedLabels(needs))
	changed = x.unwant(x.wantedBy[profile]) || changed
	x.wantedBy[profile] = WantedLabels(needs)
	if changed {
		x.signal()
	}
}

// Delete forgets a profile.
func (x *Index) Delete(profile types.NamespacedName) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.removeKeys(profile)
	changed := x.unwant(x.wantedBy[profile])
	delete(x.wantedBy, profile)
	if changed {
		x.signal()
	}
}

// removeKeys drops a profile's label keys.
func (x *Index) removeKeys(profile types.NamespacedName) {
	for _, key := range x.byProfile[profile] {
		delete(x.byKey[key], profile)
		if len(x.byKey[key]) == 0 {
			delete(x.byKey, key)
		}
	}
	delete(x.byProfile, profile)
}

// want counts needs as wanted once more; it reports whether one was not wanted before.
func (x *Index) want(needs []Requirement) bool {
	added := false
	for _, need := range needs {
		if x.wanted[need.Label]++; x.wanted[need.Label] == 1 {
			x.wantedNeed[need.Label] = need
			added = true
		}
	}
	return added
}

// unwant counts needs as wanted once less; it reports whether one is no longer wanted.
func (x *Index) unwant(needs []Requirement) bool {
	dropped := false
	for _, need := range needs {
		if x.wanted[need.Label]--; x.wanted[need.Label] == 0 {
			delete(x.wanted, need.Label)
			delete(x.wantedNeed, need.Label)
			dropped = true
		}
	}
	return dropped
}

func (x *Index) signal() {
	select {
	case x.wantedChanged <- struct{}{}:
	default:
	}
}

// Profiles lists the profiles that need a label key offered or select by it.
func (x *Index) Profiles(key string) []types.NamespacedName {
	x.mu.RLock()
	defer x.mu.RUnlock()
	out := make([]types.NamespacedName, 0, len(x.byKey[key]))
	for profile := range x.byKey[key] {
		out = append(out, profile)
	}
	return out
}

// Wanted are the requirements of every profile that NodeLabels projects
// only on demand (WantedLabels), sorted by label.
func (x *Index) Wanted() []Requirement {
	x.mu.RLock()
	defer x.mu.RUnlock()
	out := make([]Requirement, 0, len(x.wantedNeed))
	for _, need := range x.wantedNeed {
		out = append(out, need)
	}
	slices.SortFunc(out, func(a, b Requirement) int { return strings.Compare(a.Label, b.Label) })
	return out
}

// WantedChanged signals when the set of wanted labels changed.
func (x *Index) WantedChanged() <-chan struct{} { return x.wantedChanged }
