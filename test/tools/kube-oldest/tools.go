//go:build tools

// Package tools pins the oldest Kubernetes control plane the chart claims to
// support: kube-apiserver for the CRD validation catalogue, and
// kube-controller-manager so the chart's trust-boundary test runs it with its
// own release (a controller-manager newer than its apiserver is outside
// Kubernetes' version skew policy).
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
)
