package vlantraffic

import (
	"errors"
	"fmt"
)

// ErrUnavailable marks Sync errors that mean nothing can be counted on this
// node, as opposed to some ports failing to attach.
var ErrUnavailable = errors.New("per-VLAN counting is unavailable")

// Disabled stands in for a Counter where none could be built: it counts
// nothing and says why at every Sync, so the agent runs on and reports it.
type Disabled struct {
	Reason error
}

// Sync returns the reason counting is off, marked ErrUnavailable.
func (d Disabled) Sync([]Port, []int) error { return fmt.Errorf("%w: %w", ErrUnavailable, d.Reason) }

// Samples is empty.
func (Disabled) Samples() []Sample { return nil }

// Hook is "none".
func (Disabled) Hook() string { return HookNone }
