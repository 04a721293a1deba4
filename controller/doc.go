// Package controller holds vmop-controller: desired (pure builders of every
// child object), status (pure status rules), profile (the reconcilers) and
// manager (the wiring cmd/vmop-controller runs). Placement from node
// capabilities is still to come (issue #5): desired.Placement is its hook.
package controller
