package kubelet

import (
	"context"
	"fmt"
	"maps"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

const labelTemplateHash = "pod-template-hash"

func (n *Node) reconcileDeployment(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	var d appsv1.Deployment
	if err := n.client.Get(ctx, req.NamespacedName, &d); err != nil {
		return reconcile.Result{}, client.IgnoreNotFound(err) // the garbage collector deletes its Pods
	}
	want := 1
	if d.Spec.Replicas != nil && *d.Spec.Replicas == 0 {
		want = 0
	}
	return reconcile.Result{}, n.keepPods(ctx, &d, d.Spec.Selector, d.Spec.Template, d.Name, want)
}

func (n *Node) reconcileDaemonSet(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	var ds appsv1.DaemonSet
	if err := n.client.Get(ctx, req.NamespacedName, &ds); err != nil {
		return reconcile.Result{}, client.IgnoreNotFound(err)
	}
	var node corev1.Node
	if err := n.client.Get(ctx, client.ObjectKey{Name: n.Name}, &node); err != nil {
		return reconcile.Result{}, fmt.Errorf("get node %s: %w", n.Name, err)
	}
	want := 0
	if labels.SelectorFromSet(ds.Spec.Template.Spec.NodeSelector).Matches(labels.Set(node.Labels)) {
		want = 1
	}
	return reconcile.Result{}, n.keepPods(ctx, &ds, ds.Spec.Selector, ds.Spec.Template, ds.Name+"-"+n.Name, want)
}

// keepPods makes the owner's Pods exactly want Pods of its current
// template: Pods of an older template are deleted first (an upgrade).
func (n *Node) keepPods(ctx context.Context, owner client.Object, selector *metav1.LabelSelector, template corev1.PodTemplateSpec, prefix string, want int) error {
	hash := templateHash(template)
	pods, err := n.ownedPods(ctx, owner, selector)
	if err != nil {
		return err
	}
	current := 0
	for i := range pods {
		pod := &pods[i]
		if pod.Labels[labelTemplateHash] != hash || current >= want {
			if pod.DeletionTimestamp.IsZero() {
				if err := n.client.Delete(ctx, pod); client.IgnoreNotFound(err) != nil {
					return fmt.Errorf("delete pod %s/%s: %w", pod.Namespace, pod.Name, err)
				}
			}
			continue
		}
		current++
	}
	if current < want {
		return n.createPod(ctx, owner, template, prefix+"-"+hash, map[string]string{labelTemplateHash: hash})
	}
	return nil
}

func (n *Node) ownedPods(ctx context.Context, owner client.Object, selector *metav1.LabelSelector) ([]corev1.Pod, error) {
	s, err := metav1.LabelSelectorAsSelector(selector)
	if err != nil {
		return nil, fmt.Errorf("selector of %s/%s: %w", owner.GetNamespace(), owner.GetName(), err)
	}
	var list corev1.PodList
	if err := n.client.List(ctx, &list, client.InNamespace(owner.GetNamespace()), client.MatchingLabelsSelector{Selector: s}); err != nil {
		return nil, fmt.Errorf("list pods of %s/%s: %w", owner.GetNamespace(), owner.GetName(), err)
	}
	var owned []corev1.Pod
	for _, pod := range list.Items {
		if metav1.IsControlledBy(&pod, owner) {
			owned = append(owned, pod)
		}
	}
	return owned, nil
}

// createPod creates a Pod from the template, already bound to this node.
func (n *Node) createPod(ctx context.Context, owner client.Object, template corev1.PodTemplateSpec, name string, extra map[string]string) error {
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: owner.GetNamespace(), Labels: maps.Clone(template.Labels), Annotations: template.Annotations},
		Spec:       *template.Spec.DeepCopy(),
	}
	if pod.Labels == nil {
		pod.Labels = map[string]string{}
	}
	maps.Copy(pod.Labels, extra)
	pod.Spec.NodeName = n.Name
	if err := controllerutil.SetControllerReference(owner, pod, n.client.Scheme()); err != nil {
		return fmt.Errorf("owner of pod %s: %w", name, err)
	}
	err := n.client.Create(ctx, pod)
	if apierrors.IsAlreadyExists(err) {
		return nil
	}
	if err != nil {
		n.Logf("kubelet stand-in: Pod %s/%s refused: %v", pod.Namespace, pod.Name, err)
		return fmt.Errorf("create Pod %s: %w", name, err)
	}
	return nil
}

// reconcileJob runs a Job's one Pod and reports its end in the Job's
// status, which is what Helm waits on for hooks.
func (n *Node) reconcileJob(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	var job batchv1.Job
	if err := n.client.Get(ctx, req.NamespacedName, &job); err != nil {
		return reconcile.Result{}, client.IgnoreNotFound(err)
	}
	if finished(&job) || !job.DeletionTimestamp.IsZero() {
		return reconcile.Result{}, nil
	}
	pods, err := n.ownedPods(ctx, &job, job.Spec.Selector)
	if err != nil {
		return reconcile.Result{}, err
	}
	if len(pods) == 0 {
		return reconcile.Result{}, n.createPod(ctx, &job, job.Spec.Template, job.Name+"-"+string(job.UID)[:5], nil)
	}
	switch pods[0].Status.Phase {
	case corev1.PodSucceeded:
		return reconcile.Result{}, n.finishJob(ctx, &job, true, "the Pod succeeded")
	case corev1.PodFailed:
		return reconcile.Result{}, n.finishJob(ctx, &job, false, pods[0].Status.Message)
	}
	return reconcile.Result{}, nil
}

func finished(job *batchv1.Job) bool {
	for _, c := range job.Status.Conditions {
		if (c.Type == batchv1.JobComplete || c.Type == batchv1.JobFailed) && c.Status == corev1.ConditionTrue {
			return true
		}
	}
	return false
}

// finishJob writes the status the Job controller would: the terminal
// condition after the one that leads to it (the apiserver insists).
func (n *Node) finishJob(ctx context.Context, job *batchv1.Job, succeeded bool, message string) error {
	now := metav1.NewTime(time.Now())
	if job.Status.StartTime == nil {
		start := job.CreationTimestamp
		job.Status.StartTime = &start
	}
	condition := func(t batchv1.JobConditionType, reason string) batchv1.JobCondition {
		return batchv1.JobCondition{Type: t, Status: corev1.ConditionTrue, Reason: reason, Message: message, LastProbeTime: now, LastTransitionTime: now}
	}
	if succeeded {
		job.Status.Succeeded = 1
		job.Status.CompletionTime = &now
		job.Status.Conditions = append(job.Status.Conditions,
			condition(batchv1.JobSuccessCriteriaMet, batchv1.JobReasonCompletionsReached), condition(batchv1.JobComplete, batchv1.JobReasonCompletionsReached))
	} else {
		job.Status.Failed = 1
		job.Status.Conditions = append(job.Status.Conditions,
			condition(batchv1.JobFailureTarget, batchv1.JobReasonBackoffLimitExceeded), condition(batchv1.JobFailed, batchv1.JobReasonBackoffLimitExceeded))
	}
	job.Status.Ready = new(int32)
	job.Status.Terminating = new(int32)
	job.Status.UncountedTerminatedPods = &batchv1.UncountedTerminatedPods{}
	if err := n.client.Status().Update(ctx, job); err != nil {
		return fmt.Errorf("finish Job %s: %w", job.Name, err)
	}
	n.Logf("kubelet stand-in: Job %s/%s finished (succeeded %v): %s", job.Namespace, job.Name, succeeded, message)
	return nil
}
