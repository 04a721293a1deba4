package chart

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/jianfenliu/vmoperator/internal/testing/controlplane"
	"github.com/jianfenliu/vmoperator/test/observe"
)

// TestFailedCleanupHookLeavesNoRBAC: the cleanup hook's service account
// may patch every Node. When the hook fails, whether its Job fails or Helm
// gives up waiting for it, none of its RBAC may stay behind: helm uninstall
// (the pinned Helm, through its Go SDK, on a real apiserver) must report
// the failure and leave no ServiceAccount, Role, RoleBinding, ClusterRole
// or ClusterRoleBinding of the hook. The failed Job itself stays, for its
// log; it holds no rights once its ServiceAccount is gone.
func TestFailedCleanupHookLeavesNoRBAC(t *testing.T) {
	cp, err := controlplane.Start(controlplane.WithoutOwnCRDs())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cp.Stop() })
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	if err := cp.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace,
		Labels: map[string]string{"pod-security.kubernetes.io/enforce": "privileged"}}}); err != nil {
		t.Fatal(err)
	}
	helmConfig := helmConfiguration(t, cp)
	chart := loadChart(t, filepath.Join(controlplane.RepoRoot(), "deploy", "chart"))
	// No kubelet and no Job controller run here: the CRDs come from crds/
	// (first install), and the cleanup Job runs only as this test says.
	values := map[string]any{"crds": map[string]any{"applyWithHook": false}}

	for _, c := range []struct {
		name, says string
		// fail: mark the cleanup Job failed; else leave it (Helm then times
		// out waiting for it).
		fail bool
	}{
		{"the Job fails", "job vmop-cleanup failed", true},
		{"Helm times out", "timed out", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			install(t, helmConfig, chart, values)
			failed := make(chan error, 1)
			jobCtx, stop := context.WithCancel(ctx)
			defer stop()
			go func() { failed <- whileHookRuns(jobCtx, t, cp, c.fail) }()

			uninstall := action.NewUninstall(helmConfig)
			uninstall.Timeout = 10 * time.Second
			_, err := uninstall.Run(releaseName)
			if err == nil || !strings.Contains(err.Error(), c.says) {
				t.Fatalf("helm uninstall: %v; want the cleanup hook's failure (%q)", err, c.says)
			}
			t.Logf("helm uninstall said: %v", err)
			stop()
			if err := <-failed; err != nil {
				t.Fatal(err)
			}
			if left := hookRBAC(t, cp, "cleanup"); len(left) > 0 {
				t.Errorf("a failed cleanup hook left %v", left)
			}
			// The next case installs again; the failed Job goes first.
			job := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: releaseName + "-cleanup", Namespace: namespace}}
			if err := cp.Client.Delete(ctx, job, client.PropagationPolicy(metav1.DeletePropagationBackground)); client.IgnoreNotFound(err) != nil {
				t.Fatal(err)
			}
			observe.Eventually(t, 30*time.Second, "the failed cleanup Job is gone", func() (bool, string) {
				err := cp.Client.Get(ctx, client.ObjectKeyFromObject(job), job)
				return apierrors.IsNotFound(err), fmt.Sprint(err)
			})
		})
	}
}

// whileHookRuns waits for the cleanup Job, checks that the hook's RBAC
// exists while it runs (else the test would prove nothing), and marks
// the Job failed if fail, as the Job controller does once its Pods have
// failed backoffLimit+1 times.
func whileHookRuns(ctx context.Context, t *testing.T, cp *controlplane.ControlPlane, fail bool) error {
	job := &batchv1.Job{}
	key := client.ObjectKey{Namespace: namespace, Name: releaseName + "-cleanup"}
	for {
		err := cp.Client.Get(ctx, key, job)
		if err == nil {
			break
		}
		if !apierrors.IsNotFound(err) {
			return fmt.Errorf("Job %s: %w", key, err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("Job %s never created", key)
		case <-time.After(100 * time.Millisecond):
		}
	}
	if present := hookRBAC(t, cp, "cleanup"); len(present) != 5 {
		return fmt.Errorf("while the cleanup Job exists, the hook's RBAC is %v; want all five objects", present)
	}
	if !fail {
		return nil
	}
	now := metav1.Now()
	job.Status.StartTime = &now
	job.Status.Failed = 3
	for _, condition := range []batchv1.JobConditionType{batchv1.JobFailureTarget, batchv1.JobFailed} {
		job.Status.Conditions = append(job.Status.Conditions, batchv1.JobCondition{Type: condition, Status: corev1.ConditionTrue,
			Reason: batchv1.JobReasonBackoffLimitExceeded, Message: "Job has reached the specified backoff limit", LastProbeTime: now, LastTransitionTime: now})
	}
	if err := cp.Client.Status().Update(ctx, job); err != nil {
		return fmt.Errorf("mark Job %s failed: %w", key, err)
	}
	return nil
}

// hookRBAC lists the hook's ServiceAccount, Role, RoleBinding, ClusterRole
// and ClusterRoleBinding that exist (vmop-<hook>-hook).
func hookRBAC(t *testing.T, cp *controlplane.ControlPlane, hook string) []string {
	t.Helper()
	name := fmt.Sprintf("%s-%s-hook", releaseName, hook)
	var left []string
	for kind, obj := range map[string]client.Object{
		"ServiceAccount":     &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace}},
		"Role":               &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace}},
		"RoleBinding":        &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace}},
		"ClusterRole":        &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: name}},
		"ClusterRoleBinding": &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: name}},
	} {
		err := cp.Client.Get(context.Background(), client.ObjectKeyFromObject(obj), obj)
		switch {
		case err == nil && obj.GetDeletionTimestamp() == nil:
			left = append(left, kind+" "+name)
		case err != nil && !apierrors.IsNotFound(err):
			t.Fatalf("%s %s: %v", kind, name, err)
		}
	}
	return left
}

// TestCleanupHookNeedsAHelmThatDeletesItsRBACOnFailure: a Helm older than
// 3.18 keeps the RBAC of a failed hook, so the chart refuses to render the
// cleanup hook for it, naming the way out; with the pinned Helm, or with
// the hook disabled, it renders.
func TestCleanupHookNeedsAHelmThatDeletesItsRBACOnFailure(t *testing.T) {
	chart := loadChart(t, filepath.Join(controlplane.RepoRoot(), "deploy", "chart"))
	renderWith := func(helmVersion string, values map[string]any) error {
		caps := chartutil.DefaultCapabilities.Copy()
		caps.HelmVersion.Version = helmVersion
		caps.KubeVersion = chartutil.KubeVersion{Version: "v1.37.2", Major: "1", Minor: "37"}
		vals, err := chartutil.ToRenderValues(chart, values, chartutil.ReleaseOptions{Name: releaseName, Namespace: namespace, IsInstall: true}, caps)
		if err != nil {
			return err
		}
		_, err = engine.Render(chart, vals)
		return err
	}
	err := renderWith("v3.17.3", map[string]any{})
	if err == nil || !strings.Contains(err.Error(), "needs Helm 3.18 or newer") || !strings.Contains(err.Error(), "cleanupOnUninstall.enabled=false") {
		t.Errorf("rendering with Helm 3.17.3: %v; want a refusal naming Helm 3.18 and the way out", err)
	}
	for _, c := range []struct {
		helm   string
		values map[string]any
	}{
		{chartutil.DefaultCapabilities.HelmVersion.Version, map[string]any{}},
		{"v3.18.0", map[string]any{}},
		{"v3.17.3", map[string]any{"cleanupOnUninstall": map[string]any{"enabled": false}}},
	} {
		if err := renderWith(c.helm, c.values); err != nil {
			t.Errorf("rendering with Helm %s and %v: %v", c.helm, c.values, err)
		}
	}
}
