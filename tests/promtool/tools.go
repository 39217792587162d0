//go:build tools

// Package tools pins promtool, built from Prometheus' Go module to test the
// chart's alerting rules (`promtool test rules`), no downloaded binary.
package tools

import _ "github.com/prometheus/prometheus/cmd/promtool"
