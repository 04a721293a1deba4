// Package apply holds what every vmop-controller reconciler needs to write
// objects it owns: server-side apply under one field manager, skipped when
// the object already holds every field we want (so a converged object costs
// no request, and a hand edit of one of our fields is repaired on the next
// reconcile while fields others set are kept), and the classification of
// the apiserver's refusals into condition reasons.
package apply
