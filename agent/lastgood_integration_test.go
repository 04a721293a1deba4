//go:build integration

package agent

import (
	"context"
	"errors"
	"testing"

	"github.com/go-logr/logr/testr"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/jianfenliu/vmoperator/agent/probe"
	"github.com/jianfenliu/vmoperator/agent/publish"
	"github.com/jianfenliu/vmoperator/agent/watch"
	vmv1alpha1 "github.com/jianfenliu/vmoperator/api/v1alpha1"
	"github.com/jianfenliu/vmoperator/metrics/agentmetrics"
)

// TestUnchangedFailureWritesNothing: a probe failing the same way round
// after round must not rewrite the capability; its conditions carry no
// time or count that would change.
func TestUnchangedFailureWritesNothing(t *testing.T) {
	const node = "node-steady-failure"
	createNode(t, node)
	p := &scriptedProbes{}
	p.healthy()
	m := agentmetrics.NewNode("test")
	a := New(p, p, p, publish.NewPublisher(cp.Client, node, m.CapabilityWrites), m, testr.New(t))
	steps := []struct {
		name      string
		round     watch.Round
		set       func()
		wantWrote bool
	}{
		{name: "healthy", round: watch.RoundFull, set: func() {}, wantWrote: true},
		{name: "link dump starts failing", round: watch.RoundEvents, set: func() { p.linksErr = errors.New("listing links: interrupted 3 times in a row") }, wantWrote: true},
		{name: "same failure, event round", round: watch.RoundEvents, set: func() {}},
		{name: "same failure, full round", round: watch.RoundFull, set: func() {}},
		{name: "one PF starts failing", round: watch.RoundFull, set: func() { p.sriov.Skipped = []probe.Skipped{{Name: "ens2", Reason: "unreadable"}} }, wantWrote: true},
		{name: "same failures, full round", round: watch.RoundFull, set: func() {}},
		{name: "same failures, event round", round: watch.RoundEvents, set: func() {}},
	}
	for _, step := range steps {
		step.set()
		before := testutil.ToFloat64(m.CapabilityWrites)
		rvBefore := ""
		if nc := stored(t, node); nc != nil {
			rvBefore = nc.ResourceVersion
		}
		wrote, err := a.Round(context.Background(), step.round)
		if err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
		writes := testutil.ToFloat64(m.CapabilityWrites) - before
		if wrote != step.wantWrote || (writes > 0) != step.wantWrote {
			t.Errorf("%s: wrote=%v (%v writes), want wrote=%v", step.name, wrote, writes, step.wantWrote)
		}
		if !step.wantWrote && stored(t, node).ResourceVersion != rvBefore {
			t.Errorf("%s: resourceVersion %s → %s without a change", step.name, rvBefore, stored(t, node).ResourceVersion)
		}
	}
	nc := stored(t, node)
	for _, typ := range []string{vmv1alpha1.ConditionLinksProbed, vmv1alpha1.ConditionSRIOVProbed} {
		if c := meta.FindStatusCondition(nc.Status.Conditions, typ); c == nil || c.Status != metav1.ConditionFalse {
			t.Errorf("stored %s = %+v, want False", typ, c)
		}
	}
	if len(nc.Status.Bridges) != 1 {
		t.Errorf("stored bridges = %+v, want br0 kept", nc.Status.Bridges)
	}
}
