//go:build tools

// Package tools pins the Kubernetes commands this module builds, so `go mod tidy` keeps every
// module they need in go.sum. build.sh runs `go build` on each of them.
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
