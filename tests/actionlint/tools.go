//go:build tools

// Package tools pins actionlint, built from its Go module to check the
// workflows in .github/workflows (no downloaded binary).
package tools

import _ "github.com/rhysd/actionlint/cmd/actionlint"
