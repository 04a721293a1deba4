//go:build tools

// Package tools pins the Kubernetes commands built into bin/: the control
// plane's kube-apiserver and kube-controller-manager, and the node stack's
// kube-scheduler, kubelet and kube-proxy (internal/testing/nodestack).
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-proxy"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubelet"
)
