package placement

import (
	"sync"

	"k8s.io/apimachinery/pkg/types"
)

// Index remembers what each profile needs from nodes, as its last
// reconcile resolved it, so that a capability or node label change wakes
// only the profiles it affects, and the node labeller knows which VLANs
// some profile wants. What a profile needs depends on the HostNetworks and
// attachments it resolved against, which a field index (a function of the
// profile alone) cannot see; every profile is reconciled at start, which
// fills the index. It is safe for concurrent use.
type Index struct {
	mu sync.RWMutex
	// byKey maps a node label key to the profiles that need it offered or
	// select nodes by it.
	byKey     map[string]map[types.NamespacedName]struct{}
	byProfile map[types.NamespacedName][]string
	// vlans counts the profiles wanting each VLAN label.
	vlans    map[string]int
	vlanNeed map[string]Requirement
	// vlansChanged receives a signal (never blocking) when the wanted VLANs change.
	vlansChanged chan struct{}
}

// NewIndex makes an empty index.
func NewIndex() *Index {
	return &Index{
		byKey:        map[string]map[types.NamespacedName]struct{}{},
		byProfile:    map[types.NamespacedName][]string{},
		vlans:        map[string]int{},
		vlanNeed:     map[string]Requirement{},
		vlansChanged: make(chan struct{}, 1),
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
	keys = append(keys, LabelReporting)
	keys = append(keys, selectorKeys...)
	x.mu.Lock()
	defer x.mu.Unlock()
	changed := x.remove(profile)
	for _, key := range keys {
		if x.byKey[key] == nil {
			x.byKey[key] = map[types.NamespacedName]struct{}{}
		}
		x.byKey[key][profile] = struct{}{}
	}
	x.byProfile[profile] = keys
	for _, need := range WantedVLANs(needs) {
		if x.vlans[need.Label]++; x.vlans[need.Label] == 1 {
			x.vlanNeed[need.Label] = need
			changed = true
		}
	}
	if changed {
		x.signal()
	}
}

// Delete forgets a profile.
func (x *Index) Delete(profile types.NamespacedName) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.remove(profile) {
		x.signal()
	}
}

// remove drops a profile's entries; it reports whether a VLAN stopped being wanted.
func (x *Index) remove(profile types.NamespacedName) bool {
	changed := false
	for _, key := range x.byProfile[profile] {
		delete(x.byKey[key], profile)
		if len(x.byKey[key]) == 0 {
			delete(x.byKey, key)
		}
		if _, wanted := x.vlans[key]; wanted {
			if x.vlans[key]--; x.vlans[key] == 0 {
				delete(x.vlans, key)
				delete(x.vlanNeed, key)
				changed = true
			}
		}
	}
	delete(x.byProfile, profile)
	return changed
}

func (x *Index) signal() {
	select {
	case x.vlansChanged <- struct{}{}:
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

// WantedVLANs are the VLAN requirements of every profile.
func (x *Index) WantedVLANs() []Requirement {
	x.mu.RLock()
	defer x.mu.RUnlock()
	out := make([]Requirement, 0, len(x.vlanNeed))
	for _, need := range x.vlanNeed {
		out = append(out, need)
	}
	return out
}

// VLANsChanged signals when the set of wanted VLANs changed.
func (x *Index) VLANsChanged() <-chan struct{} { return x.vlansChanged }
