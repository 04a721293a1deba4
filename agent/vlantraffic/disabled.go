package vlantraffic

// Disabled stands in for a Counter where none could be built: it counts
// nothing and says why at every Sync, so the agent runs on and reports it.
type Disabled struct {
	Reason error
}

// Sync returns the reason counting is off.
func (d Disabled) Sync([]Port, []int) error { return d.Reason }

// Samples is empty.
func (Disabled) Samples() []Sample { return nil }

// Hook is "none".
func (Disabled) Hook() string { return HookNone }
