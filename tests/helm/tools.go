//go:build tools

// Package tools pins helm, built from its Go module for the chart tests
// (no downloaded binary).
package tools

import _ "helm.sh/helm/v3/cmd/helm"
