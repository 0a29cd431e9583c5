//go:build tools

// Package tools pins kube-router, built by hack/tools.sh for the real node's
// NetworkPolicy enforcement (firewall only: no routing, no service proxy).
package tools

import _ "github.com/cloudnativelabs/kube-router/v2/cmd/kube-router"
